/**
 * Shutdown under load: closing the ring's scope with 10,000 reads in flight (FIFO reads that
 * block forever, regular reads racing to finish) returns (within the ring's shutdown timeout), every
 * waiting fiber gets `RingClosed` or its real result, and a child process doing the same exits by itself.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Scope } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { make, UringConfig } from "../../src/index.js"
import { mkfifo, openFifo, pattern, tempDir } from "../helpers/fixtures.js"
import { makeWithClient, realSleep, waitUntil } from "./helpers.js"

const HALF = 5_000
const READ = 4096
const DATA_SIZE = 8 << 20
/**
 * A liveness bound, not a speed claim: closing waits at most the shutdown timeout (the default
 * here) for cancelled ops, and the margin is for a loaded machine. Past it, close has hung.
 */
const CLOSE_BOUND_MS = new UringConfig({}).shutdownTimeoutMs + 5_000

describe("shutdown under load", () => {
  it.live("closing the scope with 10,000 ops in flight returns and resolves every fiber", () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir("effect-uring-shutdown-")
      const fifo = yield* openFifo(dir)
      const original = pattern(DATA_SIZE, 11)
      Fs.writeFileSync(Path.join(dir, "data"), original)
      const data = Fs.openSync(Path.join(dir, "data"), "r")
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(data)))

      for (const ringSize of [16384, 256]) {
        const scope = yield* Scope.make()
        // Built as make() builds it, with the client in reach to count what is in flight. A ring
        // of 256 holds only ~500 ops in the kernel: the rest wait in the engine's queue.
        const { client, uring } = yield* Scope.extend(makeWithClient({ ringSize }), scope)
        const offsetOf = (i: number) => (i * READ) % (DATA_SIZE - READ)
        let submitted = 0
        const fibers = yield* Effect.forEach(Array.from({ length: 2 * HALF }, (_, i) => i), (i) =>
          Effect.fork(Effect.either(Effect.suspend(() => {
            submitted++
            return i % 2 === 0 ? uring.read(fifo, 0, 64) : uring.readExact(data, offsetOf(i), READ)
          }))))
        // Every fiber has submitted (its op is in the pending table or already answered).
        expect(yield* waitUntil(() => submitted === 2 * HALF, 5_000, 0)).toBe(true)
        expect(client.pending).toBeGreaterThanOrEqual(HALF)
        const pendingAtClose = client.pending
        const inKernelOrQueued = client.native.inFlight
        expect(inKernelOrQueued).toBeGreaterThanOrEqual(HALF)

        const started = performance.now()
        yield* Scope.close(scope, Exit.void)
        const closeMs = performance.now() - started
        expect(closeMs, `Scope.close took ${closeMs.toFixed(0)} ms`).toBeLessThan(CLOSE_BOUND_MS)

        const results = yield* Fiber.joinAll(fibers).pipe(
          Effect.timeoutFail({ duration: 5_000, onTimeout: () => new Error("a fiber never got its result after close") })
        )
        let closed = 0
        let real = 0
        results.forEach((result, i) => {
          if (Either.isLeft(result)) {
            expect(result.left._tag).toBe("RingClosed")
            closed++
          } else {
            // Only regular reads can succeed: the FIFO never gets data.
            expect(i % 2).toBe(1)
            expect(Buffer.compare(result.right, original.subarray(offsetOf(i), offsetOf(i) + READ))).toBe(0)
            real++
          }
        })
        expect(closed + real).toBe(2 * HALF)
        expect(closed).toBeGreaterThanOrEqual(HALF)
        expect(client.pending).toBe(0)
        expect(client.native.inFlight).toBe(0)
        // The ring refuses new work.
        expect((yield* Effect.flip(uring.read(data, 0, 1)))._tag).toBe("RingClosed")
        console.log(
          `ring ${ringSize}: ${pendingAtClose} pending (${inKernelOrQueued} in the engine) at close, ` +
            `closed in ${closeMs.toFixed(1)} ms, ${closed} RingClosed, ${real} real results`
        )
      }
    })))

  it.live("make() closed from inside the service's own scope with reads in flight", () =>
    Effect.scoped(Effect.gen(function*() {
      // The public constructor, no client access: closing still resolves every fiber.
      const fifo = yield* openFifo(yield* tempDir("effect-uring-shutdown-make-"))
      const scope = yield* Scope.make()
      const uring = yield* Scope.extend(make(), scope)
      const fibers = yield* Effect.forEach(Array.from({ length: 10_000 }), () => Effect.fork(Effect.either(uring.read(fifo, 0, 8))))
      yield* realSleep(50)
      const started = performance.now()
      yield* Scope.close(scope, Exit.void)
      expect(performance.now() - started).toBeLessThan(CLOSE_BOUND_MS)
      const results = yield* Fiber.joinAll(fibers).pipe(Effect.timeoutFail({ duration: 5_000, onTimeout: () => new Error("hang") }))
      expect(results.every((r) => Either.isLeft(r) && r.left._tag === "RingClosed")).toBe(true)
    })))

  it.live("a child process doing the same exits by itself", () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir("effect-uring-shutdown-child-")
      mkfifo(Path.join(dir, "fifo"))
      Fs.writeFileSync(Path.join(dir, "data"), pattern(DATA_SIZE, 11))
      const started = Date.now()
      const child = spawnSync(
        process.execPath,
        ["--import", "tsx", Path.join(import.meta.dirname, "fixtures", "shutdown-child.ts"), dir],
        { encoding: "utf8", timeout: 30_000, cwd: Path.join(import.meta.dirname, "..", "..") }
      )
      const elapsed = Date.now() - started
      expect(child.signal, `child killed after ${elapsed} ms (did not exit by itself); stderr: ${child.stderr}`).toBeNull()
      expect(child.status, child.stderr).toBe(0)
      const summary = JSON.parse(child.stdout.trim().split("\n").pop()!) as {
        closeMs: number
        closed: number
        real: number
        otherCount: number
        other: Array<string>
      }
      expect(summary.other).toEqual([])
      expect(summary.closed + summary.real).toBe(2 * HALF)
      expect(summary.closed).toBeGreaterThanOrEqual(HALF)
      expect(summary.closeMs).toBeLessThan(CLOSE_BOUND_MS)
      console.log(`child: ${JSON.stringify(summary)}, exited after ${elapsed} ms`)
    })))
})
