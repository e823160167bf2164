/**
 * A read asked to stop that comes back short of a regular file fails with the cancel, not the
 * count: the kernel reports a read a cancel interrupted after part of its copy as that part's
 * count, which every caller takes for the end of the file. Staged with the FUSE daemon
 * (crates/uring-core/examples/fuse_hold.rs): a read of 8192 bytes of its 4096-byte file waits on
 * a kernel worker that no cancel wakes, and ends short once the daemon answers. Needs root
 * (mount), as CI has.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Option, Scope } from "effect"
import { make } from "../../src/index.js"
import { fuseDaemon, kernelWorkerWaiting } from "./fuseDaemon.js"
import { realSleep, waitUntil } from "./helpers.js"

/** What a read's fiber ended with: its count, or its error's tag. */
const outcome = (exit: Exit.Exit<number, { readonly _tag: string }>): string =>
  Exit.isSuccess(exit)
    ? `read ${exit.value} bytes`
    : Option.getOrElse(Option.map(Cause.failureOption(exit.cause), (error) => error._tag), () => Cause.pretty(exit.cause))

describe("a read asked to stop that comes back short", () => {
  it.live("fails Canceled when a close cancelled it", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemon
      const uring = yield* make()
      const file = yield* uring.open(daemon.file)
      const read = yield* Effect.fork(uring.readInto(file, 0, new Uint8Array(8192)))
      expect(yield* waitUntil(() => daemon.held() > 0, 5_000), "the read reached the daemon").toBe(true)
      // A cancel that found the read still queued for a worker would end it at once.
      expect(yield* waitUntil(kernelWorkerWaiting, 5_000), "a kernel worker waits on the held page").toBe(true)

      // The close cancels the read, which the kernel cannot stop, and waits for it.
      const close = yield* Effect.fork(uring.close(file))
      yield* realSleep(100)
      expect(close.unsafePoll(), "the close waits for the read").toBeNull()
      daemon.release()
      expect(Exit.isSuccess(yield* Fiber.await(close))).toBe(true)
      expect(outcome(yield* Fiber.await(read)), "4096 of 8192 is not taken for the end of the file").toBe("Canceled")

      // Not cancelled, the same read ends short at the end of the file, as asked.
      const again = yield* uring.open(daemon.file)
      expect(outcome(yield* Effect.exit(uring.readInto(again, 0, new Uint8Array(8192))))).toBe("read 4096 bytes")
    })))

  it.live("fails RingClosed when the ring's shutdown stopped it", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemon
      const ringScope = yield* Scope.make()
      const uring = yield* Scope.extend(make({ shutdownTimeoutMs: 200 }), ringScope)
      // In the test's scope, which outlives the ring: its fd is then closed without it.
      const file = yield* uring.open(daemon.file)
      // A daemon fiber: were it never resumed, interrupting it at the test's end would wait for
      // the kernel for ever, where this test should fail on the timeout below.
      const read = yield* Effect.forkDaemon(uring.readInto(file, 0, new Uint8Array(8192)))
      expect(yield* waitUntil(() => daemon.held() > 0, 5_000), "the read reached the daemon").toBe(true)
      expect(yield* waitUntil(kernelWorkerWaiting, 5_000), "a kernel worker waits on the held page").toBe(true)

      yield* Scope.close(ringScope, Exit.void)
      daemon.release()
      const exit = yield* Effect.timeout(Fiber.await(read), "10 seconds")
      expect(outcome(exit), "4096 of 8192 is not taken for the end of the file").toBe("RingClosed")
    })))
})
