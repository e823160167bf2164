/**
 * A close that overtakes an op on the same handle. The kernel looks a plain fd (or a slot) up
 * when it issues an op, and ops it runs on a kernel worker (statx, ftruncate, fallocate, fsync,
 * the `*at` calls, a large read sent there) are issued only when a worker takes them. A close
 * through the ring runs at once, so before the close waited, such an op still queued for a worker
 * ran on whatever file the number named by then: a long soak saw `fstat` report another file's
 * size, and an `ftruncate` in the same spot truncates the other file.
 *
 * Made deterministic by keeping the ring's kernel workers busy: a ring of 4 entries has 4 bounded
 * workers, and 4 write-only opens of FIFOs without a reader hold them until readers come. With
 * `inlineSubmit: false` every op is submitted by the ring's one submission thread, so all of them
 * queue on that thread's workers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { make } from "../../src/services/Uring.js"
import type { UringShape } from "../../src/services/Uring.js"
import { mkfifo, tempDir } from "../helpers/fixtures.js"
import { realSleep } from "./helpers.js"

const A_SIZE = 123
const B_SIZE = 4567

/** Files `a` and `b`, four FIFOs, and a ring whose workers the FIFOs' opens hold until `free()`. */
const setup = Effect.gen(function*() {
  const dir = yield* tempDir("effect-uring-close-race-")
  const a = Path.join(dir, "a")
  const b = Path.join(dir, "b")
  Fs.writeFileSync(a, Buffer.alloc(A_SIZE, 1))
  Fs.writeFileSync(b, Buffer.alloc(B_SIZE, 2))
  const fifos = Array.from({ length: 4 }, (_, i) => Path.join(dir, `fifo-${i}`))
  fifos.forEach(mkfifo)
  const uring: UringShape = yield* make({ ringSize: 4, inlineSubmit: false })
  const blockers = yield* Effect.forEach(fifos, (fifo) => Effect.fork(Effect.scoped(uring.open(fifo, { flag: "w" }))))
  // Long enough for the opens to reach the workers; if they have not, the race is not staged and
  // the test checks less, but it cannot fail for it.
  yield* realSleep(300)
  const readers: Array<number> = []
  yield* Effect.addFinalizer(() => Effect.sync(() => readers.forEach((fd) => Fs.closeSync(fd))))
  const free = Effect.gen(function*() {
    for (const fifo of fifos) readers.push(Fs.openSync(fifo, Fs.constants.O_RDONLY | Fs.constants.O_NONBLOCK))
    for (const blocker of blockers) yield* Fiber.join(blocker)
  })
  return { a, b, uring, free }
})

/** Opens `b` with the lowest free fd: the number `a`'s close freed, if that close has happened. */
const openOther = (b: string) =>
  Effect.acquireRelease(Effect.sync(() => Fs.openSync(b, "r+")), (fd) => Effect.sync(() => Fs.closeSync(fd)))

describe("a close racing an op on the same handle", () => {
  it.live("fstat queued for a kernel worker describes its own file, not the one that reused the number", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b, free, uring } = yield* setup
      const owned = yield* uring.open(a, { flag: "r" })
      const fstat = yield* Effect.fork(uring.fstat(owned))
      yield* realSleep(50)
      const close = yield* Effect.fork(uring.close(owned))
      yield* realSleep(200)
      yield* openOther(b)
      yield* free
      const meta = yield* Fiber.join(fstat)
      yield* Fiber.join(close)
      expect(meta.size).toBe(BigInt(A_SIZE))
      expect(owned.isClosed).toBe(true)
    })))

  it.live("ftruncate queued for a kernel worker truncates its own file, never the one that reused the number", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b, free, uring } = yield* setup
      const owned = yield* uring.open(a, { flag: "r+" })
      const truncate = yield* Effect.fork(uring.ftruncate(owned, 10))
      yield* realSleep(50)
      const close = yield* Effect.fork(uring.close(owned))
      yield* realSleep(200)
      yield* openOther(b)
      yield* free
      yield* Fiber.join(truncate)
      yield* Fiber.join(close)
      expect(Fs.statSync(b).size).toBe(B_SIZE)
      expect(Fs.statSync(a).size).toBe(10)
    })))

  it.live("a scope's close of a handle waits for the op another fiber has in flight on it", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b, free, uring } = yield* setup
      const scope = yield* Scope.make()
      const owned = yield* Scope.extend(uring.open(a, { flag: "r+" }), scope)
      const truncate = yield* Effect.fork(uring.ftruncate(owned, 10))
      yield* realSleep(50)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* realSleep(200)
      yield* openOther(b)
      yield* free
      yield* Fiber.join(truncate)
      yield* Fiber.join(closing)
      expect(Fs.statSync(b).size).toBe(B_SIZE)
      expect(Fs.statSync(a).size).toBe(10)
      expect(owned.isClosed).toBe(true)
    })))
})
