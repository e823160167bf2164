/**
 * Shared pieces of the reliability suite: the Uring service built exactly as `make()` builds it
 * but with its ring client in reach (pending table, the native ring's `inFlight`), a seeded PRNG,
 * wall-clock waits, memory readings, and the FIFOs and interrupters of the storms.
 */
import { Cause, Effect, Exit, Fiber, Option, type Scope } from "effect"
import * as Fs from "node:fs"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import type { InvalidConfig, RingUnavailable } from "../../src/errors/UringError.js"
import type { RingClient } from "../../src/internal/RingClient.js"
import { makeClient, makeOperations } from "../../src/internal/uring.js"
import type { UringShape } from "../../src/services/Uring.js"
import { mkfifo } from "../helpers/fixtures.js"
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

/**
 * Counts `client`'s ops for the ring from now on in `seen.ring`, and the bytes each `submitNow`
 * names in `seen.ringBytes` where there is one.
 */
export const countRingOps = (client: RingClient, seen: { ring: number; readonly ringBytes?: Array<number> }): void => {
  const { submit, submitNow } = client
  client.submit = (...args) => {
    seen.ring++
    return submit.apply(client, args)
  }
  client.submitNow = (...args) => {
    seen.ring++
    seen.ringBytes?.push(args[3])
    return submitNow.apply(client, args)
  }
}

/** How an effect ended: its error's tag, "defect: ..." (the first line), or what `onSuccess` makes of its value. */
export const outcomeOf = <A>(
  exit: Exit.Exit<A, { readonly _tag: string }>,
  onSuccess: (value: A) => string = () => "success"
): string => {
  if (Exit.isSuccess(exit)) return onSuccess(exit.value)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) return failure.value._tag
  return `defect: ${Cause.pretty(exit.cause).split("\n")[0]}`
}

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

/** Runs a full gc (where none can be had, the checks that depend on one fail). */
export const fullGc = (): void => gc?.()

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

/**
 * FIFOs for a storm: `readers` (opened r+, so a read blocks instead of seeing end of file) for
 * the ring, with a nonblocking writer and reader of each for the test to feed and empty them.
 */
export const openFifos = (paths: ReadonlyArray<string>) => {
  paths.forEach(mkfifo)
  const readers = paths.map((p) => Fs.openSync(p, "r+"))
  const feeders = paths.map((p) => Fs.openSync(p, Fs.constants.O_WRONLY | Fs.constants.O_NONBLOCK))
  const drainers = paths.map((p) => Fs.openSync(p, Fs.constants.O_RDONLY | Fs.constants.O_NONBLOCK))
  const sink = Buffer.alloc(1 << 16)
  return {
    readers,
    /** Feeds FIFO `i` `bytesEach` bytes of `value` per reader `waiting(i)` counts, until none waits; false after 20 s. */
    feedUntil: (waiting: (i: number) => number, bytesEach: number, value: number) =>
      waitUntil(() => {
        let left = 0
        for (let i = 0; i < paths.length; i++) {
          const n = waiting(i)
          left += n
          if (n > 0) {
            try {
              Fs.writeSync(feeders[i]!, Buffer.alloc(n * bytesEach, value))
            } catch {
              // EAGAIN: the pipe is full; the readers will empty it.
            }
          }
        }
        return left === 0
      }, 20_000, 5),
    /** Empties every FIFO of what was fed beyond what the readers took. */
    drain: () => {
      for (const fd of drainers) {
        for (;;) {
          try {
            if (Fs.readSync(fd, sink) <= 0) break
          } catch {
            break // EAGAIN: empty
          }
        }
      }
    },
    close: () => [...readers, ...feeders, ...drainers].forEach((fd) => Fs.closeSync(fd))
  }
}

/** One op of a storm: whether it is interrupted, when (`moment`, `delay`), and whether its fiber has ended. */
export interface StormOp {
  readonly interrupt: boolean
  /** 0: at once; 1: after `delay` yields; 2: after `delay` ms; higher: the test's own (`waitOf`). */
  readonly moment: number
  readonly delay: number
  /** Set once its fiber has ended (by `forkStorm`). */
  done?: boolean
}

/** The wait before an interruption at `op.moment` 0, 1 or 2. */
export const momentWait = (op: StormOp): Effect.Effect<void> =>
  op.moment === 0 ? Effect.void : op.moment === 1 ? Effect.repeatN(Effect.yieldNow(), op.delay - 1) : realSleep(op.delay)

/**
 * Forks `effectOf(op, i)` for every op (`done` once its fiber ends), and for every op to
 * interrupt, a fiber that waits `waitOf(op)`, interrupts it, then runs `after(op)`: from then on
 * the kernel must not touch the op's memory. Returns the ops' fibers and, once every interruption
 * has finished, each interrupted op with its exit.
 */
export const forkStorm = <O extends StormOp, A, E>(
  ops: ReadonlyArray<O>,
  effectOf: (op: O, i: number) => Effect.Effect<A, E>,
  after: (op: O) => void = () => {},
  waitOf: (op: O) => Effect.Effect<unknown> = momentWait
) =>
  Effect.gen(function*() {
    const fibers = yield* Effect.forEach(ops, (op, i) =>
      Effect.fork(Effect.ensuring(effectOf(op, i), Effect.sync(() => {
        op.done = true
      }))))
    const interrupted = ops.flatMap((op, i) => (op.interrupt ? [{ op, fiber: fibers[i]! }] : []))
    const exits = yield* Fiber.joinAll(yield* Effect.forEach(interrupted, ({ fiber, op }) =>
      Effect.fork(Effect.gen(function*() {
        yield* waitOf(op)
        const exit = yield* Fiber.interrupt(fiber)
        after(op)
        return exit
      }))))
    return { fibers, interrupted: interrupted.map(({ op }, k) => ({ op, exit: exits[k]! })) }
  })
