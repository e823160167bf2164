/**
 * Copies a file through registered files and one reused buffer: the kernel skips the fd lookup
 * for every read and write, and no chunk allocates.
 *
 *   npx tsx examples/copy-file.ts <from> <to>
 */
import { Console, Effect } from "effect"
import { Uring } from "../src/index.js"

const CHUNK = 1 << 20

export const copyFile = (from: string, to: string) =>
  Effect.scoped(Effect.gen(function*() {
    const uring = yield* Uring
    const source = yield* uring.register(yield* uring.open(from))
    const target = yield* uring.register(yield* uring.open(to, { flag: "w", mode: 0o644 }))
    const buffer = new Uint8Array(CHUNK)
    let offset = 0
    while (true) {
      const n = yield* uring.readInto(source, offset, buffer)
      if (n === 0) break
      yield* uring.writeAll(target, offset, buffer.subarray(0, n))
      offset += n
    }
    yield* uring.fdatasync(target)
    return offset
  }))

if (import.meta.url === `file://${process.argv[1]}`) {
  const [from, to] = process.argv.slice(2)
  if (from === undefined || to === undefined) {
    console.error("usage: copy-file.ts <from> <to>")
    process.exit(2)
  }
  Effect.runPromise(
    copyFile(from, to).pipe(
      Effect.tap((bytes) => Console.log(`copied ${bytes} bytes`)),
      Effect.provide(Uring.layer())
    )
  ).catch((error) => {
    console.error(String(error))
    process.exitCode = 1
  })
}
