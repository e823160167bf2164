/**
 * An ordinary Effect program that only knows `FileSystem.FileSystem` from `@effect/platform`, run twice: once with
 * Node's file system and once with the io_uring one. Nothing in the program changes; only the layer does.
 *
 *   npx tsx examples/filesystem-layer.ts
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import { Chunk, Console, Effect, Option, Stream } from "effect"
import * as Path from "node:path"
import { UringFileSystem } from "../src/index.js"

const encode = (text: string) => new TextEncoder().encode(text)
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** Notes, a log file used through its cursor, a stream, a backup copy: the usual chores of a small tool. */
export const program = Effect.scoped(Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "filesystem-layer-" })
  const p = (...parts: Array<string>) => Path.join(dir, ...parts)

  yield* fs.makeDirectory(p("notes", "2026"), { recursive: true })
  yield* fs.writeFileString(p("notes", "2026", "todo.txt"), "write the example\n")
  yield* fs.writeFileString(p("notes", "2026", "todo.txt"), "run it with both layers\n", { flag: "a" })

  // A file used through its cursor.
  const log = yield* fs.open(p("log.txt"), { flag: "w+" })
  yield* log.writeAll(encode("0123456789"))
  yield* log.seek(2, "start")
  const middle = yield* log.readAlloc(4)
  yield* log.truncate(5)
  yield* log.writeAll(encode("!"))
  yield* log.seek(0, "start")
  const afterTruncate = yield* log.readAlloc(64)

  // A sink and a stream from an offset, in small chunks.
  const alphabet = "abcdefghijklmnopqrstuvwxyz"
  yield* Stream.make(alphabet, alphabet.toUpperCase(), "0123456789").pipe(
    Stream.map(encode),
    Stream.run(fs.sink(p("letters.txt")))
  )
  const chunks = yield* fs.stream(p("letters.txt"), { offset: 20, bytesToRead: 20, chunkSize: 8 }).pipe(
    Stream.map(decode),
    Stream.runCollect
  )

  // A backup of the notes, renamed into place; then the original goes.
  yield* fs.copy(p("notes"), p("backup.tmp"))
  yield* fs.rename(p("backup.tmp"), p("backup"))
  yield* fs.remove(p("notes"), { recursive: true })

  const info = yield* fs.stat(p("backup", "2026", "todo.txt"))
  const missing = yield* fs.readFileString(p("notes", "2026", "todo.txt")).pipe(
    Effect.catchTag("SystemError", (error) => Effect.succeed(`${error.reason} (${error.method})`))
  )
  const exclusive = yield* fs.writeFileString(p("letters.txt"), "x", { flag: "wx" }).pipe(
    Effect.as("created"),
    Effect.catchTag("SystemError", (error) => Effect.succeed(error.reason))
  )

  return {
    todo: yield* fs.readFileString(p("backup", "2026", "todo.txt")),
    middle: Option.map(middle, decode),
    afterTruncate: Option.map(afterTruncate, decode),
    chunks: Chunk.toReadonlyArray(chunks),
    todoSize: Number(info.size),
    todoType: info.type,
    tree: (yield* fs.readDirectory(dir, { recursive: true })).sort(),
    missing,
    exclusive,
    notesExist: yield* fs.exists(p("notes"))
  }
}))

/** The program with Node's file system and with the io_uring one. */
export const runBoth = Effect.all({
  node: program.pipe(Effect.provide(NodeFileSystem.layer)),
  uring: program.pipe(Effect.provide(UringFileSystem.layerLive))
})

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(
    Effect.flatMap(runBoth, ({ node, uring }) =>
      Effect.all([
        Console.log("with NodeFileSystem.layer:     ", JSON.stringify(node)),
        Console.log("with UringFileSystem.layerLive:", JSON.stringify(uring)),
        Console.log(`same results: ${JSON.stringify(node) === JSON.stringify(uring)}`)
      ]))
  ).catch((error) => {
    console.error(String(error))
    process.exitCode = 1
  })
}
