/**
 * The README's demo: write a file, read it back, stat it, rename it and remove it, all through
 * the `Uring` layer.
 */
import { Console, Effect } from "effect"
import * as Os from "node:os"
import * as Path from "node:path"
import { Uring } from "../src/index.js"

const program = Effect.gen(function*() {
  const uring = yield* Uring
  const dir = Path.join(Os.tmpdir(), `effect-uring-quickstart-${process.pid}`)
  yield* uring.mkdir(dir, 0o755)
  const first = Path.join(dir, "hello.txt")
  const second = Path.join(dir, "renamed.txt")

  yield* Effect.scoped(Effect.gen(function*() {
    const file = yield* uring.open(first, { flag: "w+" })
    yield* uring.writeAll(file, 0, new TextEncoder().encode("hello from io_uring\n"))
    yield* uring.fdatasync(file)
    const bytes = yield* uring.read(file, 0, 64)
    yield* Console.log(`read back: ${JSON.stringify(new TextDecoder().decode(bytes))}`)
  }))

  const meta = yield* uring.stat(first)
  yield* Console.log(`stat: ${meta.type}, ${meta.size} bytes, mode ${meta.permissions.toString(8)}, mtime ${meta.mtime.toISOString()}`)
  yield* uring.rename(first, second)
  yield* Console.log(`renamed to ${Path.basename(second)}`)
  yield* uring.unlink(second)
  yield* uring.rmdir(dir)
  const gone = yield* uring.stat(dir).pipe(Effect.catchTag("NotFound", () => Effect.succeed("removed")))
  yield* Console.log(`cleanup: ${typeof gone === "string" ? gone : "still there?"}`)
  return meta
})

export const main = program.pipe(Effect.provide(Uring.layer()))

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(main).catch((error) => {
    console.error(String(error))
    process.exitCode = 1
  })
}
