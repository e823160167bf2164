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

  const text = yield* Effect.scoped(Effect.gen(function*() {
    const file = yield* uring.open(first, { flag: "w+" })
    yield* uring.writeAll(file, 0, new TextEncoder().encode("hello from io_uring\n"))
    yield* uring.fdatasync(file)
    const bytes = yield* uring.read(file, 0, 64)
    const text = new TextDecoder().decode(bytes)
    yield* Console.log(`read back: ${JSON.stringify(text)}`)
    return text
  }))

  const meta = yield* uring.stat(first)
  yield* Console.log(`stat: ${meta.type}, ${meta.size} bytes, mode ${meta.permissions.toString(8)}, mtime ${meta.mtime.toISOString()}`)
  yield* uring.rename(first, second)
  yield* Console.log(`renamed to ${Path.basename(second)}`)
  yield* uring.unlink(second)
  yield* uring.rmdir(dir)
  // Gone: its stat fails with NotFound, and the demo fails if it does not.
  yield* uring.stat(dir).pipe(
    Effect.flatMap(() => Effect.dieMessage(`cleanup: ${dir} is still there`)),
    Effect.catchTag("NotFound", () => Console.log("cleanup: removed"))
  )
  return { meta, text, dir }
})

export const main = program.pipe(Effect.provide(Uring.layer()))

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(main).catch((error) => {
    console.error(String(error))
    process.exitCode = 1
  })
}
