/**
 * Kernel failures are tagged errors: recover from the ones you expect by tag, let the rest fail.
 */
import { Console, Effect } from "effect"
import * as Os from "node:os"
import * as Path from "node:path"
import { Uring } from "../src/index.js"

export const main = Effect.gen(function*() {
  const uring = yield* Uring
  const dir = Path.join(Os.tmpdir(), `effect-uring-typed-errors-${process.pid}`)
  const outcomes: Array<string> = []

  // NotFound: a missing file gets a default.
  const size = yield* uring.stat(Path.join(dir, "missing.json")).pipe(
    Effect.map((meta) => meta.size),
    Effect.catchTag("NotFound", (error) => Effect.as(Console.log(`recovered: ${error.message}`), -1n))
  )
  outcomes.push(`missing size: ${size}`)

  // AlreadyExists: creating a directory twice.
  yield* uring.mkdir(dir)
  const again = yield* uring.mkdir(dir).pipe(
    Effect.as("created"),
    Effect.catchTag("AlreadyExists", (error) => Effect.succeed(`already there (${error.code})`))
  )
  outcomes.push(`mkdir again: ${again}`)

  // Several tags at once: an exclusive create of a path that exists (here a directory).
  const exclusive = yield* Effect.scoped(uring.open(dir, { flag: "wx" })).pipe(
    Effect.as("opened"),
    Effect.catchTags({
      AlreadyExists: () => Effect.succeed("exists"),
      IsADirectory: () => Effect.succeed("is a directory")
    })
  )
  outcomes.push(`exclusive open: ${exclusive}`)

  // Bad input never reaches the kernel.
  const refused = yield* uring.read(0, -1, 10).pipe(
    Effect.as("read"),
    Effect.catchTag("InvalidArgument", (error) => Effect.succeed(`refused: ${error.argument} ${error.reason}`))
  )
  outcomes.push(refused)

  yield* uring.rmdir(dir)
  for (const line of outcomes) yield* Console.log(line)
  return outcomes
}).pipe(Effect.provide(Uring.layer()))

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(main).catch((error) => {
    console.error(String(error))
    process.exitCode = 1
  })
}
