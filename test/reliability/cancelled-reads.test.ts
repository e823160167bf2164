/**
 * A read of a regular file that was asked to stop fails with the cancel, whatever count the
 * kernel gives: after a cancel that count is not the file's (a read cut short reports the part
 * copied, which every caller takes for the end of the file; crates/uring-core/tests/
 * cancelled_reads.rs has one reported whole with the wrong bytes). Staged with the FUSE daemon
 * (crates/uring-core/examples/fuse_hold.rs): reads of its 4096-byte file wait in threads (the
 * ring's off-ring threads, which copy FUSE files) that no cancel wakes, and end once the daemon answers, 8192 bytes short and 16 whole. Needs
 * root (mount), as CI has.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { make } from "../../src/index.js"
import { fuseDaemon, threadsWaitingOnDaemon } from "./fuseDaemon.js"
import { outcomeOf, realSleep, waitUntil } from "./helpers.js"

/** What a read's fiber ended with: its count, or its error's tag. */
const outcome = (exit: Exit.Exit<number, { readonly _tag: string }>): string =>
  outcomeOf(exit, (read) => `read ${read} bytes`)

describe("a read asked to stop", () => {
  it.live("fails Canceled when a close cancelled it", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemon
      const uring = yield* make()
      const file = yield* uring.open(daemon.file)
      const short = yield* Effect.fork(uring.readInto(file, 0, new Uint8Array(8192)))
      const whole = yield* Effect.fork(uring.readInto(file, 0, new Uint8Array(16)))
      expect(yield* waitUntil(() => daemon.held() > 0, 5_000), "the reads reached the daemon").toBe(true)
      // A cancel that found a read still queued would end it at once.
      expect(yield* waitUntil(() => threadsWaitingOnDaemon() >= 2, 5_000), "threads wait on the held page")
        .toBe(true)

      // The close cancels the reads, which the kernel cannot stop, and waits for them.
      const close = yield* Effect.fork(uring.close(file))
      yield* realSleep(100)
      expect(close.unsafePoll(), "the close waits for the read").toBeNull()
      daemon.release()
      expect(Exit.isSuccess(yield* Fiber.await(close))).toBe(true)
      expect(outcome(yield* Fiber.await(short)), "4096 of 8192 is not taken for the end of the file").toBe("Canceled")
      expect(outcome(yield* Fiber.await(whole)), "nor 16 of 16 for the file's bytes").toBe("Canceled")

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
      expect(yield* waitUntil(() => threadsWaitingOnDaemon() > 0, 5_000), "a thread waits on the held page")
        .toBe(true)

      yield* Scope.close(ringScope, Exit.void)
      daemon.release()
      const exit = yield* Effect.timeout(Fiber.await(read), "10 seconds")
      expect(outcome(exit), "4096 of 8192 is not taken for the end of the file").toBe("RingClosed")
    })))
})
