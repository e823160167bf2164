/**
 * A shutdown that gives up on an op the kernel cannot cancel: a read of a FUSE file whose daemon
 * (crates/uring-core/examples/fuse_hold.rs, a process of its own) holds the answer back, so the
 * thread reading it (the ring's off-ring thread, which copies FUSE files) waits on the page however
 * the ring cancels. The layer's close keeps to its deadline and says so in a warning; the read's
 * fiber resumes once the kernel is done with the read instead of waiting for ever. Needs root
 * (mount), as CI has.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Logger, LogLevel, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Worker } from "node:worker_threads"
import { make } from "../../src/index.js"
import { fuseDaemon, threadsWaitingOnDaemon } from "./fuseDaemon.js"
import { outcomeOf, realSleep, waitUntil } from "./helpers.js"

describe("a shutdown that gives up on an op the kernel cannot cancel", () => {
  it.live("closes by its deadline with a warning, and the read's fiber resumes when the kernel is done", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemon
      const warnings: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel === LogLevel.Warning) warnings.push(String(message))
        })
      )
      const ringScope = yield* Scope.make()
      // Provided where the layer is made: its finalizer logs with what was in place then.
      const uring = yield* Scope.extend(make({ shutdownTimeoutMs: 200 }), ringScope).pipe(Effect.provide(capture))
      // In the test's scope, which outlives the ring: its fd is then closed without it.
      const file = yield* uring.open(daemon.file)
      // A daemon fiber: were it never resumed, interrupting it at the test's end would wait for
      // the kernel for ever, where this test should fail on the timeout below.
      const read = yield* Effect.forkDaemon(uring.read(file, 0, 16))
      expect(yield* waitUntil(() => daemon.held() > 0, 5_000), "the read reached the daemon").toBe(true)
      // A cancel that found the read still queued would end it at once.
      expect(yield* waitUntil(() => threadsWaitingOnDaemon() > 0, 5_000), "a thread waits on the held page").toBe(true)

      const started = Date.now()
      yield* Scope.close(ringScope, Exit.void)
      expect(Date.now() - started, "the close kept to its deadline").toBeLessThan(5_000)
      expect(warnings.filter((warning) => warning.includes("still in the kernel"))).toHaveLength(1)
      expect(read.unsafePoll(), "the read waits: the kernel still has it").toBeNull()

      daemon.release()
      const resumed = yield* Effect.either(Effect.timeout(Fiber.await(read), "10 seconds"))
      expect(Either.isRight(resumed), "the read's fiber resumed once the kernel was done with it").toBe(true)
      // With the cancel: the kernel's or, for a read whose count came after it, the engine's.
      const exit = Either.getOrThrow(resumed)
      expect(outcomeOf(exit, (bytes) => `read ${bytes.length} bytes`)).toBe("RingClosed")
    })))

  it.live("a worker whose ring gave up on a read ends only once the kernel is done with it", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemon
      const worker = new Worker(Path.join(import.meta.dirname, "..", "fixtures", "worker-stuck-read.mjs"), {
        workerData: { file: daemon.file }
      })
      let exitCode: number | undefined
      worker.on("exit", (code) => exitCode = code)
      const messages: Array<{ readonly clean?: boolean; readonly inFlight: number }> = []
      worker.on("message", (message) => messages.push(message))
      yield* Effect.addFinalizer(() => Effect.promise(() => worker.terminate()))
      // Runs before the terminate above (finalizers run last first): a failing check must not
      // leave the worker's teardown waiting on a read the daemon holds until its own finalizer.
      yield* Effect.addFinalizer(() => Effect.sync(daemon.release))
      expect(yield* waitUntil(() => messages.length === 1, 5_000), "the worker submitted its read").toBe(true)
      expect(yield* waitUntil(() => daemon.held() > 0, 5_000), "the read reached the daemon").toBe(true)
      expect(yield* waitUntil(() => threadsWaitingOnDaemon() > 0, 5_000), "a thread waits on the held page").toBe(true)

      worker.postMessage("close")
      expect(yield* waitUntil(() => messages.length === 2, 5_000), "the worker's close returned").toBe(true)
      expect(messages[1]).toEqual({ clean: false, inFlight: 1 })
      // Its teardown waits for the kernel, which still has the read and its buffer.
      yield* realSleep(300)
      expect(exitCode, "the worker ended while the kernel still had its read").toBeUndefined()

      // Whichever of the completion thread and the teardown's own reaping takes the read (timing
      // decides), the worker ends; the gate in delivery.rs is what keeps the first from calling
      // into a threadsafe function Node frees after the teardown, which this does not force.
      daemon.release()
      expect(yield* waitUntil(() => exitCode !== undefined, 10_000), "the worker ended once the read was done").toBe(true)
      expect(exitCode).toBe(0)
      // The process is healthy: a ring of this thread reads.
      const uring = yield* make()
      expect((yield* uring.readFile("/etc/hostname")).length).toBe(Fs.statSync("/etc/hostname").size)
    })))
})
