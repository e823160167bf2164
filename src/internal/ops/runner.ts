/**
 * What every op of the `Uring` service shares: the checks that refuse bad input before anything
 * reaches the kernel, the errors an op's result maps to, and `run`, the Effect wrapper around one
 * native op whose interruption waits for the kernel.
 *
 * @internal
 */
import { Cause, Effect, Either } from "effect"
import { markAsUntransferable } from "node:worker_threads"
import { InvalidArgument, RingClosed, TooManyOpenFiles, type UringError } from "../../errors/UringError.js"
import { AtFlags } from "../../services/Flags.js"
import { type FileLike, OwnedFd, type Position, RegisteredFile } from "../../services/Handles.js"
import type { UringConfig } from "../../services/UringConfig.js"
import { kernelError } from "../kernelError.js"
import { type NativeRing, nativeErrorCode } from "../native.js"
import type { RingClient, Submitted } from "../RingClient.js"
import * as validate from "../validate.js"

const ECANCELED = 125
const ENFILE = 23
/** What a calling-thread try (`RingClient.readFileCached`, `statCached`) answers when the ring must do it. */
export const EAGAIN = 11
/** Pooled buffers kept for reuse, at most, per pool: one per op of a 64-way loop. */
export const POOL_KEEP = 64

interface Context {
  readonly operation: string
  readonly path?: string | undefined
  readonly fd?: number | undefined
}

/** What an op acts on, named in its errors: a file, or a path. */
export type Subject = FileLike | string

/** The error context of an op: built only when one fails, from what the op keeps anyway. */
export const contextOf = (operation: string, subject: Subject): Context =>
  typeof subject === "string"
    ? { operation, path: subject }
    : subject instanceof OwnedFd
    ? { operation, fd: subject.fd, path: subject.path }
    : { operation, fd: typeof subject === "number" ? subject : subject.fd }

/** Submits one op through the binding and returns its cancel token. */
type Submit = (native: NativeRing, id: number) => number

/** Thrown inside a submit body to fail the op with a typed error before anything is submitted. */
export class Refused {
  constructor(readonly error: UringError) {}
}

/**
 * A handle an op in flight names: an `OwnedFd` by its number, a `RegisteredFile` by its slot. The
 * kernel looks either up when it issues the op, and an op it runs on a worker (statx, fsync,
 * fallocate, ftruncate, the `*at` calls, a large read sent there) is issued only when a worker
 * takes it: a close (or slot release) that overtakes it lets it act on whatever file the number
 * (or slot) names by then. So each handle keeps its ops in flight (`inflight`), and closing it
 * first cancels them and waits for their completions (`quiesced`).
 */
type Lendable = OwnedFd | RegisteredFile

/** Set while `run` submits: the handles the submit names (`fdOf`, `rawFd`). */
let lending = false
const lentNow: Array<Lendable> = []

const lend = (handle: Lendable): void => {
  if (lending) lentNow.push(handle)
}

const hold = (handle: Lendable, op: Submitted): void => {
  ;(handle.inflight ??= new Set()).add(op)
}

/** Ends `op`'s hold on `handle`; wakes what waits for it once no op names it any more. */
const giveBackOne = (handle: Lendable, op: Submitted): void => {
  const inflight = handle.inflight!
  inflight.delete(op)
  if (inflight.size === 0 && handle.drained !== undefined) {
    const waiting = handle.drained
    handle.drained = undefined
    for (const wake of waiting) wake()
  }
}

/** Ends the holds of a completed op (on one handle, the usual case, or several). */
const giveBack = (held: Lendable | ReadonlyArray<Lendable>, op: Submitted): void => {
  if (Array.isArray(held)) for (const handle of held) giveBackOne(handle, op)
  else giveBackOne(held as Lendable, op)
}

/** Whether ring ops in flight name `handle`. */
export const inUse = (handle: Lendable): boolean => handle.inflight !== undefined && handle.inflight.size > 0

/**
 * Cancels the ring ops in flight that name `handle` and completes once none does (at once if
 * none does): their own callers get their completions, `Canceled` where the cancel took. An op
 * already running in the kernel may finish first; one blocked (a read of a pipe no one writes)
 * is woken. The wait is interruptible.
 */
export const quiesced = (handle: Lendable): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (!inUse(handle)) return resume(Effect.void)
    const wake = () => resume(Effect.void)
    ;(handle.drained ??= []).push(wake)
    // Copied: a cancel the engine completes inline may take its op out of the set meanwhile.
    for (const op of Array.from(handle.inflight!)) op.client.cancelInPlace(op)
    return Effect.sync(() => {
      const at = handle.drained?.indexOf(wake) ?? -1
      if (at >= 0) handle.drained!.splice(at, 1)
    })
  })

/** One handler for every `refusedAsFailure`, not a closure per call. */
const refusal = (defect: unknown): Effect.Effect<never, UringError> =>
  defect instanceof Refused ? Effect.fail(defect.error) : Effect.die(defect)

/** Turns a `Refused` thrown while building an effect into its typed failure. */
export const refusedAsFailure = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | UringError, R> =>
  Effect.catchAllDefect(self, refusal)

export const check = <A>(result: Either.Either<A, InvalidArgument>): A => {
  if (Either.isLeft(result)) throw new Refused(result.left)
  return result.right
}

/** A valid offset as a number; a plain number skips the full check's Either (this runs once per op). */
export const offsetOf = (operation: string, value: Position, argument?: string): number =>
  validate.isPlainOffset(value) ? value + 0 : check(validate.offset(operation, value, argument))

/** A valid byte count as a number; a plain in-range number skips the full check's Either. */
export const lengthOf = (operation: string, value: Position): number =>
  validate.isPlainOffset(value) && value <= validate.MAX_LENGTH ? value + 0 : check(validate.length(operation, value))

/** What a buffer argument holds, for an inline-copy budget; anything else is refused later, when submitted. */
export const bytesOf = (value: unknown): number => value instanceof Uint8Array ? value.byteLength : 0

/** Refuses a buffer the kernel may not use (`validate.bufferProblem`). */
export const checkBuffer = (operation: string, value: Uint8Array, argument = "buffer"): void => {
  const problem = validate.bufferProblem(value)
  if (problem !== undefined) throw new Refused(new InvalidArgument({ operation, argument, reason: problem }))
}

/**
 * `checkBuffer` for memory the kernel may still use after the submit returns. Holding the view
 * keeps its ArrayBuffer alive, not the memory: a transfer (`postMessage`, `structuredClone`)
 * hands that to a new owner, which may free it under the op. An untransferable ArrayBuffer is
 * copied by a transfer instead (Node 20; newer Node throws), so the kernel's memory stays put.
 */
export const lendBuffer = (operation: string, value: Uint8Array, argument = "buffer"): void => {
  checkBuffer(operation, value, argument)
  keepInPlace(value)
}

/** The marking of `lendBuffer`, for a buffer `checkBuffer` has passed. */
export const keepInPlace = (value: Uint8Array): void => {
  // Defined: checkBuffer found a Uint8Array.
  markAsUntransferable(validate.backingOf(value)!)
}

/**
 * How an op that creates something (an fd, a registered slot) runs inside an acquire, which is
 * uninterruptible: its kernel wait is made interruptible again with the caller's `restore`, and
 * what it created is released if it succeeded after all, its completion having arrived before
 * the cancel took effect (the engine itself closes an fd it opened when the cancel comes first).
 */
export interface Acquiring {
  readonly restore: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly release: (value: number) => Effect.Effect<void>
}

/** The shared part of every op over one client. @internal */
export type Runner = ReturnType<typeof makeRunner>

/** @internal */
export const makeRunner = (client: RingClient, config: Pick<UringConfig, "tracing">) => {
  const ringId = client.native.ringId

  /**
   * What an op on `file` submits: the raw fd, or for a `RegisteredFile` its slot (such ops are
   * `fixed`: `file instanceof RegisteredFile`), or a typed refusal.
   */
  const fdOf = (operation: string, file: FileLike, argument = "file"): number => {
    if (typeof file === "number") return check(validate.fd(operation, file, argument))
    if (file instanceof RegisteredFile) {
      if (file.ringId !== ringId) {
        throw new Refused(
          new InvalidArgument({ operation, argument, reason: `${file} belongs to another ring` })
        )
      }
      if (file.released) {
        throw new Refused(new InvalidArgument({ operation, argument, reason: `${file} was released` }))
      }
      lend(file)
      return file.slot
    }
    if (file instanceof OwnedFd) {
      if (file.closed) {
        throw new Refused(new InvalidArgument({ operation, argument, reason: `${file} was closed` }))
      }
      lend(file)
      return file.fd
    }
    throw new Refused(
      new InvalidArgument({ operation, argument, reason: "expected an OwnedFd, a RegisteredFile or an fd" })
    )
  }

  /**
   * The raw fd of `file` for ops the kernel takes only by number (statx, the `*at` calls). A
   * `RegisteredFile` gives the number it was registered with, refused once the `OwnedFd` it came
   * from is closed: the number may name another file by then (the slot still holds the old one).
   */
  const rawFd = (operation: string, file: FileLike, argument = "file"): number => {
    if (file instanceof RegisteredFile) {
      fdOf(operation, file, argument)
      if (file.source?.closed === true) {
        throw new Refused(
          new InvalidArgument({ operation, argument, reason: `${file} was registered from ${file.source}, and its number may name another file now` })
        )
      }
      if (file.source !== undefined) lend(file.source)
      return file.fd
    }
    if (typeof file === "number" && file === AtFlags.AT_FDCWD) return file
    return check(validate.fd(operation, fdOf(operation, file, argument), argument))
  }

  const thrown = (error: unknown, operation: string, subject: Subject): UringError => {
    if (error instanceof Refused) return error.error
    switch (nativeErrorCode(error)) {
      case "ERR_URING_CLOSED":
        return new RingClosed({ operation })
      case "ERR_URING_TABLE_FULL": {
        const { fd } = contextOf(operation, subject)
        return new TooManyOpenFiles({ operation, ...(fd !== undefined ? { fd } : {}), errno: ENFILE, code: "ENFILE" })
      }
      case "ERR_URING_INVALID_ARGUMENT":
        return new InvalidArgument({
          operation,
          argument: "arguments",
          reason: (error as Error).message.replace(/^ERR_URING_[A-Z_]+: /, "")
        })
      default:
        throw error
    }
  }

  /** The error for a negative result: the errno's tag, or RingClosed for ops cancelled by closing. */
  const failure = (result: number, operation: string, subject: Subject): UringError =>
    -result === ECANCELED && client.closed
      ? new RingClosed({ operation })
      : kernelError(-result, contextOf(operation, subject))

  /**
   * Cancels a submitted op unless `taken()` says its completion came already (its id may then
   * belong to another op); completes when the completion has arrived, with its result.
   */
  const settle = (op: Submitted, taken: () => number | undefined): Effect.Effect<number> =>
    Effect.async<number>((settled) => {
      const result = taken()
      if (result !== undefined) return settled(Effect.succeed(result))
      client.cancel(op, (value) => settled(Effect.succeed(value)))
    })

  /**
   * Runs one native op on `subject` as an Effect. `body` validates (throwing `Refused`) and
   * submits; the result is the syscall's non-negative value. With `now` (the bytes the op moves,
   * for ops the kernel may finish inline), the op is flushed at once, and one the engine
   * completes inline (a cached read) gives its result without suspending the fiber. When
   * interrupted, the op is cancelled and the interruption completes only after the kernel's
   * completion, so its memory is no longer used.
   *
   * With `acquiring`, the op creates something its caller acquires: see {@link Acquiring}.
   *
   * The op is submitted in an uninterruptible region, so an interruption either comes before it
   * or finds it submitted and cancels it. The cancel hook is a `catchAllCause` there rather than
   * a canceler returned to `Effect.async`, which wraps every op in `onInterrupt` (an `onExit`
   * that also works on success): that wrapper cost more per op than this region (bench/micro.ts).
   */
  const run = (
    operation: string,
    subject: Subject,
    body: Submit,
    keep?: unknown,
    now?: number,
    acquiring?: Acquiring
  ): Effect.Effect<number, UringError> =>
    Effect.uninterruptibleMask((restore) => {
      // Set by the completion, whenever it comes: once it has, the op's id may belong to
      // another op already, so it must not be cancelled.
      let result: number | undefined
      let wake: ((outcome: Effect.Effect<number, UringError>) => void) | undefined
      // The handles the op names, lent until its completion.
      let held: Lendable | Array<Lendable> | undefined
      const returnHeld = () => {
        if (held === undefined) return
        const handles = held
        held = undefined
        giveBack(handles, op)
      }
      const onResult = (value: number) => {
        result = value
        returnHeld()
        if (wake !== undefined) wake(outcome(result, operation, subject))
      }
      let op: Submitted
      lending = true
      lentNow.length = 0
      try {
        op = now === undefined ? client.submit(body, onResult, keep) : client.submitNow(body, onResult, keep, now)
      } catch (error) {
        return Effect.fail(thrown(error, operation, subject))
      } finally {
        lending = false
      }
      // An op done inline (its result already here) holds nothing.
      if (result === undefined && lentNow.length === 1) {
        held = lentNow[0]!
        hold(held, op)
      } else if (result === undefined && lentNow.length > 1) {
        held = lentNow.slice()
        for (const handle of held) hold(handle, op)
      }
      lentNow.length = 0
      if (result !== undefined) return outcome(result, operation, subject)
      return Effect.catchAllCause(
        (acquiring?.restore ?? restore)(Effect.async<number, UringError>((resume) => {
          // The completion may have come while the fiber yielded on its way here.
          if (result !== undefined) return resume(outcome(result, operation, subject))
          wake = resume
        })),
        (cause) =>
          !Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : Effect.flatMap(settle(op, () => result), (value) => {
              // The cancel took the op's callback: its completion came to `settle` instead.
              returnHeld()
              // Interrupted, yet it succeeded: what it created has no other owner.
              return acquiring !== undefined && value >= 0
                ? Effect.zipRight(acquiring.release(value), Effect.failCause(cause))
                : Effect.failCause(cause)
            })
      )
    })

  /**
   * Waits for the turn in which `attempt` (work on this thread within the turn's budget) gets
   * budget, and runs what it gives: it is tried at the start of each next turn's flush, before
   * any fiber runs (`RingClient.nextTurn`), until it does not find the budget spent. For work
   * whose other way, the ring, costs several times a turn's wait. Once its fiber is interrupted
   * it is not tried again.
   */
  const nextTurn = <A>(attempt: () => Effect.Effect<A, UringError> | undefined): Effect.Effect<A, UringError> =>
    Effect.async<A, UringError>((resume) => {
      let live = true
      client.nextTurn(() => {
        if (!live) return true
        const ready = attempt()
        if (ready === undefined) return false
        resume(ready)
        return true
      })
      return Effect.sync(() => {
        live = false
      })
    })

  /** `run` for an op that creates what its caller acquires (see {@link Acquiring}). */
  const runAcquiring = (operation: string, subject: Subject, body: Submit, acquiring: Acquiring) =>
    run(operation, subject, body, undefined, undefined, acquiring)

  /** An op's result as the Effect `run` returns. */
  const outcome = (value: number, operation: string, subject: Subject): Effect.Effect<number, UringError> =>
    value >= 0 ? Effect.succeed(value) : Effect.fail(failure(value, operation, subject))

  const traced = <Args extends Array<any>, A, E, R>(
    name: string,
    f: (...args: Args) => Effect.Effect<A, E, R>
  ): (...args: Args) => Effect.Effect<A, E, R> =>
    config.tracing ? (...args) => Effect.withSpan(f(...args), `Uring.${name}`) : f

  return { client, ringId, fdOf, rawFd, thrown, failure, run, runAcquiring, nextTurn, traced }
}
