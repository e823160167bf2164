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
import type { UringError } from "../../src/errors/UringError.js"
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

/** `a` as the staged op left it: truncated by the op itself, or untouched where the close cancelled it. */
const expectOwnFileOnly = (exit: Exit.Exit<void, UringError>, a: string, b: string) => {
  expect(Fs.statSync(b).size).toBe(B_SIZE)
  if (Exit.isSuccess(exit)) expect(Fs.statSync(a).size).toBe(10)
  else {
    expect(exit).toStrictEqual(Exit.fail(expect.objectContaining({ _tag: "Canceled" })))
    expect(Fs.statSync(a).size).toBe(A_SIZE)
  }
}

describe("a close racing an op on the same handle", () => {
  it.live("fstat queued for a kernel worker is cancelled by the close, never describes the file that reused the number", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b, free, uring } = yield* setup
      const owned = yield* uring.open(a, { flag: "r" })
      const fstat = yield* Effect.fork(uring.fstat(owned))
      yield* realSleep(50)
      // Done while the workers are still held: the close cancels the queued stat, not waits for it.
      yield* uring.close(owned)
      yield* openOther(b)
      yield* free
      const exit = yield* Fiber.await(fstat)
      if (Exit.isSuccess(exit)) expect(exit.value.size).toBe(BigInt(A_SIZE))
      else expect(exit).toStrictEqual(Exit.fail(expect.objectContaining({ _tag: "Canceled" })))
      expect(owned.isClosed).toBe(true)
    })))

  it.live("ftruncate queued for a kernel worker truncates its own file or nothing, never the one that reused the number", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b, free, uring } = yield* setup
      const owned = yield* uring.open(a, { flag: "r+" })
      const truncate = yield* Effect.fork(uring.ftruncate(owned, 10))
      yield* realSleep(50)
      yield* uring.close(owned)
      yield* openOther(b)
      yield* free
      expectOwnFileOnly(yield* Fiber.await(truncate), a, b)
    })))

  it.live("a scope's close of a handle settles the op another fiber has in flight on it first", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b, free, uring } = yield* setup
      const scope = yield* Scope.make()
      const owned = yield* Scope.extend(uring.open(a, { flag: "r+" }), scope)
      const truncate = yield* Effect.fork(uring.ftruncate(owned, 10))
      yield* realSleep(50)
      yield* Scope.close(scope, Exit.void)
      yield* openOther(b)
      yield* free
      expectOwnFileOnly(yield* Fiber.await(truncate), a, b)
      expect(owned.isClosed).toBe(true)
    })))
})

describe("a close of a handle with a read that may never end", () => {
  /** A FIFO with a writer that never writes (held open here), so a read of it waits for good. */
  const silentFifo = Effect.gen(function*() {
    const dir = yield* tempDir("effect-uring-close-blocked-")
    const fifo = Path.join(dir, "fifo")
    mkfifo(fifo)
    yield* Effect.acquireRelease(
      Effect.sync(() => Fs.openSync(fifo, Fs.constants.O_RDWR)),
      (fd) => Effect.sync(() => Fs.closeSync(fd))
    )
    return fifo
  })

  it.scoped("an explicit close cancels the read another fiber has in flight on the handle", () =>
    Effect.gen(function*() {
      const fifo = yield* silentFifo
      const uring: UringShape = yield* make()
      const owned = yield* uring.open(fifo, { flags: Fs.constants.O_RDONLY })
      const read = yield* Effect.forkDaemon(uring.read(owned, 0, 16))
      yield* realSleep(50)
      yield* uring.close(owned)
      const exit = yield* Fiber.await(read)
      expect(exit).toStrictEqual(Exit.fail(expect.objectContaining({ _tag: "Canceled" })))
      expect(owned.isClosed).toBe(true)
    }))

  it.scoped("a scope ends while a fiber it forked still reads the handle: the close cancels the read", () =>
    Effect.gen(function*() {
      const fifo = yield* silentFifo
      const uring: UringShape = yield* make()
      // The child is interrupted only when its parent ends, after the scope's finalizers: the fd's
      // close must not wait for the child's read, or neither would ever end.
      const [read, owned] = yield* Effect.scoped(Effect.gen(function*() {
        const owned = yield* uring.open(fifo, { flags: Fs.constants.O_RDONLY })
        const read = yield* Effect.fork(uring.read(owned, 0, 16))
        yield* realSleep(50)
        return [read, owned] as const
      }))
      const exit = yield* Fiber.await(read)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(owned.isClosed).toBe(true)
    }))
})
