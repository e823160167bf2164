/**
 * Shared pieces of the reliability suite: the Uring service built exactly as `make()` builds it
 * but with its ring client in reach (pending table, the native ring's `inFlight`), a seeded PRNG,
 * wall-clock waits and memory readings.
 */
import { Effect, type Scope } from "effect"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import type { InvalidConfig, RingUnavailable } from "../../src/errors/UringError.js"
import type { RingClient } from "../../src/internal/RingClient.js"
import { makeClient, makeOperations } from "../../src/internal/uring.js"
import type { UringShape } from "../../src/services/Uring.js"
import { type UringConfigInput, validate } from "../../src/services/UringConfig.js"

/** What `make(config)` does (validate, create the ring, build the operations), keeping the client. */
export const makeWithClient = (
  config: UringConfigInput = {}
): Effect.Effect<{ readonly uring: UringShape; readonly client: RingClient }, InvalidConfig | RingUnavailable, Scope.Scope> =>
  validate(config).pipe(
    Effect.flatMap((valid) =>
      Effect.map(makeClient(valid), (client) => ({ client, uring: makeOperations(client, valid) as UringShape }))
    )
  )

/** Wall-clock sleep (`it.effect` / `it.scoped` run on the TestClock, where `Effect.sleep` never wakes). */
export const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** Seeded PRNG (mulberry32): a failing run reproduces with the seed it prints. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    /** An integer in [lo, hi]. */
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  }
}

/** The seed: `RELIABILITY_SEED` if set, else a fixed default (so CI runs are reproducible). */
export const seedFromEnv = (fallback: number): number => {
  const fromEnv = Number(process.env.RELIABILITY_SEED)
  return Number.isInteger(fromEnv) ? fromEnv : fallback
}

/** A full gc: the process's own when started with --expose-gc, else one exposed at run time. */
const gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc ?? (() => {
  try {
    V8.setFlagsFromString("--expose-gc")
    return Vm.runInNewContext("gc") as () => void
  } catch {
    return undefined
  }
})()

/** Resident set size in MiB, after a full gc. */
export const rssMiB = (): number => {
  gc?.()
  return process.memoryUsage().rss / (1 << 20)
}

/** V8 heap in use, in MiB, after a full gc. */
export const heapMiB = (): number => {
  gc?.()
  return process.memoryUsage().heapUsed / (1 << 20)
}

/** Polls `done` on the wall clock until it holds or `timeoutMs` passes; returns whether it held. */
export const waitUntil = (done: () => boolean, timeoutMs: number, stepMs = 2) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      if (Date.now() > deadline) return false
      yield* realSleep(stepMs)
    }
    return true
  })
