/**
 * The `Uring` service implementation: validation, the Effect wrapper around each native op,
 * interruption that waits for the kernel, and scoped handles.
 *
 * @internal
 */
import { Cause, Effect, Either, type Scope } from "effect"
import { codeOf } from "../errors/errno.js"
import {
  fromErrno,
  InvalidArgument,
  InvalidConfig,
  RingClosed,
  RingUnavailable,
  TooManyOpenFiles,
  UnexpectedEof,
  type UringError,
  WriteZero
} from "../errors/UringError.js"
import { adviceValue, AtFlags, type Advice, type OpenOptions, OpenFlags, openFlagsOf, RenameFlags } from "../services/Flags.js"
import { type DirLike, type FileLike, OwnedFd, type Position, RegisteredFile } from "../services/Handles.js"
import { fromStatx, type Metadata, STATX_ALL_MASK, StatxBufferSize } from "../services/Metadata.js"
import type { RenameOptions } from "../services/Uring.js"
import type { UringConfig } from "../services/UringConfig.js"
import type { ConfinedDir } from "../services/ConfinedDir.js"
import { openDir as confinedDir } from "./confined.js"
import { BatchPool } from "./BatchPool.js"
import { BufferPool } from "./BufferPool.js"
import { type NativeRing, nativeErrorCode } from "./native.js"
import { RingClient, type Submitted, type SubmittedMany } from "./RingClient.js"
import * as validate from "./validate.js"
import { withoutStack } from "./withoutStack.js"

const ECANCELED = 125
const ENFILE = 23
/** Whole reads and writes report their count as an int32; larger ones go in pieces of this size. */
const WHOLE_CHUNK = 1 << 30
/** What `readFile` reads first: most files fit, so open+read+close is one op. */
const READ_FILE_FIRST = 16 * 1024
/** Pooled buffers kept for reuse, at most, per pool: one per op of a 64-way loop. */
const POOL_KEEP = 64
/** `readBatch` arrays kept for reuse: one per batch in flight at once, up to this many. */
const BATCHES_KEEP = 16
/** The largest whole file one op returns (its count is an int32). */
const WHOLE_FILE_MAX = 0x7fffffff

interface Context {
  readonly operation: string
  readonly path?: string | undefined
  readonly fd?: number | undefined
}

/** What an op acts on, named in its errors: a file, or a path. */
type Subject = FileLike | string

/** The error context of an op: built only when one fails, from what the op keeps anyway. */
const contextOf = (operation: string, subject: Subject): Context =>
  typeof subject === "string"
    ? { operation, path: subject }
    : subject instanceof OwnedFd
    ? { operation, fd: subject.fd, path: subject.path }
    : { operation, fd: typeof subject === "number" ? subject : subject.fd }

/** Submits one op through the binding and returns its cancel token. */
type Submit = (native: NativeRing, id: number) => number

/** Thrown inside a submit body to fail the op with a typed error before anything is submitted. */
class Refused {
  constructor(readonly error: UringError) {}
}

/** One handler for every `refusedAsFailure`, not a closure per call. */
const refusal = (defect: unknown): Effect.Effect<never, UringError> =>
  defect instanceof Refused ? Effect.fail(defect.error) : Effect.die(defect)

/** Turns a `Refused` thrown while building an effect into its typed failure. */
const refusedAsFailure = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | UringError, R> =>
  Effect.catchAllDefect(self, refusal)

const check = <A>(result: Either.Either<A, InvalidArgument>): A => {
  if (Either.isLeft(result)) throw new Refused(result.left)
  return result.right
}

/** A valid offset as a number; a plain number skips the full check's Either (this runs once per op). */
const offsetOf = (operation: string, value: Position, argument?: string): number =>
  validate.isPlainOffset(value) ? value + 0 : check(validate.offset(operation, value, argument))

/** A valid byte count as a number; a plain in-range number skips the full check's Either. */
const lengthOf = (operation: string, value: Position): number =>
  validate.isPlainOffset(value) && value <= validate.MAX_LENGTH ? value + 0 : check(validate.length(operation, value))

/**
 * Reads up to this size try the page cache on the calling thread first (`RingClient.readCached`);
 * larger copies are left to the ring, whose submission thread may do them on another core.
 */
const CACHED_READ_MAX = 64 * 1024
/** The smallest page size Linux has: the page cache holds whole pages, at multiples of it. */
const PAGE = 4096

/** What a buffer argument holds, for an inline-copy budget; anything else is refused later, when submitted. */
const bytesOf = (value: unknown): number => value instanceof Uint8Array ? value.byteLength : 0

/** Refuses a buffer the kernel may not use, without the Either of `validate.buffer`. */
const checkBuffer = (operation: string, value: Uint8Array, argument = "buffer"): void => {
  const problem = validate.bufferProblem(value)
  if (problem !== undefined) throw new Refused(new InvalidArgument({ operation, argument, reason: problem }))
}

/** Creates the ring and its client; the scope's end closes it. @internal */
export const makeClient = (config: UringConfig): Effect.Effect<RingClient, RingUnavailable | InvalidConfig, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () =>
        new RingClient({
          entries: config.ringSize,
          coopTaskrun: config.coopTaskrun,
          iopoll: config.iopoll,
          ...(config.sqpollIdleMs !== undefined ? { sqpollIdleMs: config.sqpollIdleMs } : {}),
          deferTaskrun: config.deferTaskrun,
          registeredFiles: config.registeredFiles,
          shutdownTimeoutMs: config.shutdownTimeoutMs,
          inlineSubmit: config.inlineSubmit
        }),
      catch: setupError
    }),
    (client) => Effect.sync(() => client.shutdown())
  )

const setupError = (error: unknown): RingUnavailable | InvalidConfig => {
  const message = error instanceof Error ? error.message : String(error)
  if (nativeErrorCode(error) === "ERR_URING_INVALID_CONFIG") {
    return new InvalidConfig({ setting: "ring", reason: message.replace(/^ERR_URING_[A-Z_]+: /, "") })
  }
  const errno = Number(/errno (\d+)/.exec(message)?.[1] ?? 0)
  return new RingUnavailable({ errno, code: errno > 0 ? codeOf(errno) : "EUNKNOWN", reason: message })
}

/** Builds the service's operations over one client. @internal */
export const makeOperations = (client: RingClient, config: Pick<UringConfig, "tracing" | "cachedReads">) => {
  const ringId = client.native.ringId

  /**
   * What an op on `file` submits: the raw fd, or for a `RegisteredFile` its slot (such ops are
   * `fixed`: `file instanceof RegisteredFile`), or a typed refusal.
   */
  const fdOf = (operation: string, file: FileLike): number => {
    if (typeof file === "number") return check(validate.fd(operation, file, "file"))
    if (file instanceof RegisteredFile) {
      if (file.ringId !== ringId) {
        throw new Refused(
          new InvalidArgument({ operation, argument: "file", reason: `${file} belongs to another ring` })
        )
      }
      if (file.released) {
        throw new Refused(new InvalidArgument({ operation, argument: "file", reason: `${file} was released` }))
      }
      return file.slot
    }
    if (file instanceof OwnedFd) {
      if (file.closed) {
        throw new Refused(new InvalidArgument({ operation, argument: "file", reason: `${file} was closed` }))
      }
      return file.fd
    }
    throw new Refused(
      new InvalidArgument({ operation, argument: "file", reason: "expected an OwnedFd, a RegisteredFile or an fd" })
    )
  }

  const rawFd = (operation: string, file: FileLike, argument = "file"): number => {
    if (file instanceof RegisteredFile) {
      fdOf(operation, file)
      return file.fd
    }
    if (typeof file === "number" && file === AtFlags.AT_FDCWD) return file
    return check(validate.fd(operation, fdOf(operation, file), argument))
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
      : withoutStack(() => fromErrno(-result, contextOf(operation, subject)))

  /** Cancels a submitted op; completes when its completion has arrived. */
  const settle = (op: Submitted): Effect.Effect<void> =>
    Effect.async<void>((settled) => {
      client.cancel(op, () => settled(Effect.void))
    })

  /** Cancels a batch's ops still pending (NaN in `results`, every other entry); completes when their completions have arrived. */
  const settleMany = ({ ids, tokens }: SubmittedMany, results: Float64Array): Effect.Effect<void> =>
    Effect.async<void>((settled) => {
      // Only ops still pending: a finished op's id may already belong to another op. Counted
      // here, when the cancel runs: completions may arrive between the interruption and now.
      let left = 0
      for (let i = 0; i < ids.length; i++) if (Number.isNaN(results[2 * i])) left++
      if (left === 0) return settled(Effect.void)
      for (let i = 0; i < ids.length; i++) {
        if (Number.isNaN(results[2 * i])) client.cancel({ id: ids[i]!, token: tokens[i]! }, () => --left === 0 && settled(Effect.void))
      }
    })

  /**
   * Runs one native op on `subject` as an Effect. `body` validates (throwing `Refused`) and
   * submits; the result is the syscall's non-negative value. With `now` (the bytes the op moves,
   * for ops the kernel may finish inline), the op is flushed at once, and one the engine
   * completes inline (a cached read) gives its result without suspending the fiber. When
   * interrupted, the op is cancelled and the interruption completes only after the kernel's
   * completion, so its memory is no longer used.
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
    now?: number
  ): Effect.Effect<number, UringError> =>
    Effect.uninterruptibleMask((restore) => {
      // Set by the completion, whenever it comes: once it has, the op's id may belong to
      // another op already, so it must not be cancelled.
      let result: number | undefined
      let wake: ((outcome: Effect.Effect<number, UringError>) => void) | undefined
      const onResult = (value: number) => {
        result = value
        if (wake !== undefined) wake(outcome(value, operation, subject))
      }
      let op: Submitted
      try {
        op = now === undefined ? client.submit(body, onResult, keep) : client.submitNow(body, onResult, keep, now)
      } catch (error) {
        return Effect.fail(thrown(error, operation, subject))
      }
      if (result !== undefined) return outcome(result, operation, subject)
      return Effect.catchAllCause(
        restore(Effect.async<number, UringError>((resume) => {
          // The completion may have come while the fiber yielded on its way here.
          if (result !== undefined) return resume(outcome(result, operation, subject))
          wake = resume
        })),
        (cause) =>
          result !== undefined || !Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : Effect.zipRight(settle(op), Effect.failCause(cause))
      )
    })

  /** An op's result as the Effect `run` returns. */
  const outcome = (value: number, operation: string, subject: Subject): Effect.Effect<number, UringError> =>
    value >= 0 ? Effect.succeed(value) : Effect.fail(failure(value, operation, subject))

  const traced = <Args extends Array<any>, A, E, R>(
    name: string,
    f: (...args: Args) => Effect.Effect<A, E, R>
  ): (...args: Args) => Effect.Effect<A, E, R> =>
    config.tracing ? (...args) => Effect.withSpan(f(...args), `Uring.${name}`) : f

  const readRing = (file: FileLike, offset: Position, buffer: Uint8Array, exact: boolean, operation: string) =>
    run(operation, file, (native, id) => {
      const fd = fdOf(operation, file)
      const at = offsetOf(operation, offset)
      checkBuffer(operation, buffer)
      return native.read(id, fd, file instanceof RegisteredFile, buffer, at, exact)
    }, buffer, bytesOf(buffer))

  /**
   * The raw fd a read of `file` may try the page cache with on this thread, or -1: only an open
   * `OwnedFd` (or a slot registered from one) says which file the number is and how it was opened.
   */
  const cachedFd = (file: FileLike): number => {
    const owned = file instanceof RegisteredFile ? file.source : file
    return owned instanceof OwnedFd && !owned.closed && !owned.direct ? owned.fd : -1
  }

  /**
   * A read tries the page cache on this thread first (`RingClient.readCached`): a cached range is
   * done without the ring or a fiber suspension, and nothing is left in flight to wait for. Else
   * (not cached, the turn's budget spent, any error) the ring does the read, or what the cached
   * part left of it, and reports the authoritative result or error.
   */
  const readInto = config.cachedReads
    ? (file: FileLike, offset: Position, buffer: Uint8Array, exact = false, operation = "readInto") =>
      Effect.suspend(() => {
        let read: number | undefined
        let at: number
        try {
          fdOf(operation, file)
          at = offsetOf(operation, offset)
          checkBuffer(operation, buffer)
          const fd = buffer.length <= CACHED_READ_MAX ? cachedFd(file) : -1
          read = fd < 0 ? undefined : client.readCached(fd, buffer, at)
        } catch (error) {
          return Effect.fail(thrown(error, operation, file))
        }
        if (read === undefined || read < 0) return readRing(file, offset, buffer, exact, operation)
        // Nothing cached is EAGAIN, so 0 is the end of the file; so is a short count ending inside
        // a page, since the cached part ends at a page boundary.
        if (read === buffer.length || read === 0 || (at + read) % PAGE !== 0) return Effect.succeed(read)
        const done = read
        return Effect.map(readRing(file, at + done, buffer.subarray(done), exact, operation), (more) => done + more)
      })
    : (file: FileLike, offset: Position, buffer: Uint8Array, exact = false, operation = "readInto") =>
      readRing(file, offset, buffer, exact, operation)

  const readFresh = (operation: string, exact: boolean) => (file: FileLike, offset: Position, length: Position) =>
    Effect.suspend(() => {
      // Refused as a value, not thrown: no defect handler on every read.
      const valid = validate.length(operation, length)
      if (Either.isLeft(valid)) return Effect.fail(valid.left)
      const n = valid.right
      const buffer = new Uint8Array(n)
      return Effect.flatMap(readInto(file, offset, buffer, exact, operation), (read) =>
        exact && read < n
          ? Effect.fail(
            new UnexpectedEof({ ...contextOf(operation, file), offset: Number(offset), expected: n, read })
          )
          : Effect.succeed(read === n ? buffer : buffer.subarray(0, read)))
    })

  /**
   * Reads every range in one crossing into native code; slices of one buffer come back in order.
   * Flushed at once, so a batch of cached reads is done when its submit call returns and the
   * fiber does not suspend. Interruption cancels the ranges still pending and waits for them.
   */
  const readBatch = (
    file: FileLike,
    ranges: ReadonlyArray<{ readonly offset: Position; readonly length: Position }>,
    options?: { readonly buffer?: Uint8Array }
  ): Effect.Effect<Array<Uint8Array>, UringError> =>
    Effect.uninterruptibleMask((restore) => {
      const operation = "readBatch"
      const count = ranges.length
      if (count === 0) return Effect.succeed([])
      const memory = batches.take(count)
      // `[offset, length]` per range; once submitted, each offset's place holds the range's result.
      const packed = memory.ranges
      let total = 0
      for (let i = 0; i < count; i++) {
        const range = ranges[i]!
        packed[2 * i] = offsetOf(operation, range.offset)
        const length = lengthOf(operation, range.length)
        packed[2 * i + 1] = length
        total += length
      }
      // A caller's buffer, reused across batches, spares a large allocation (and the GC it brings) per call.
      const given = options?.buffer
      if (given !== undefined) {
        checkBuffer(operation, given)
        if (given.length < total) {
          throw new Refused(new InvalidArgument({ operation, argument: "buffer", reason: `holds ${given.length} bytes, the ranges need ${total}` }))
        }
      }
      const buffer = given ?? new Uint8Array(total)
      let remaining = count
      let wake: ((outcome: Effect.Effect<Array<Uint8Array>, UringError>) => void) | undefined
      /** Every range has its result: the slices, and the batch's arrays back to the pool. */
      const finish = (): Effect.Effect<Array<Uint8Array>, UringError> => {
        const slices = new Array<Uint8Array>(count)
        // The constructor over the buffer's own bytes costs half of what `subarray` does.
        const bytes = buffer.buffer
        let at = buffer.byteOffset
        for (let i = 0; i < count; i++) {
          const result = packed[2 * i]!
          if (result < 0) {
            batches.give(memory)
            return Effect.fail(failure(result, operation, file))
          }
          slices[i] = new Uint8Array(bytes, at, result)
          at += packed[2 * i + 1]!
        }
        batches.give(memory)
        return Effect.succeed(slices)
      }
      try {
        client.submitMany(memory.ops, (native, ids, tokens) => {
          native.readMany(ids, fdOf(operation, file), file instanceof RegisteredFile, buffer, packed, tokens)
          // The binding has read the offsets: from here their places hold results, NaN while pending.
          for (let i = 0; i < count; i++) packed[2 * i] = NaN
        }, (index, result) => {
          packed[2 * index] = result
          if (--remaining === 0 && wake !== undefined) wake(finish())
        }, buffer, total)
      } catch (error) {
        return Effect.fail(thrown(error, operation, file))
      }
      if (remaining === 0) return finish()
      return Effect.catchAllCause(
        restore(Effect.async<Array<Uint8Array>, UringError>((resume) => {
          if (remaining === 0) return resume(finish())
          wake = resume
        })),
        (cause) =>
          remaining === 0 || !Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : Effect.zipRight(settleMany(memory.ops, packed), Effect.failCause(cause))
      )
    }).pipe(refusedAsFailure)

  /**
   * A whole file in one op (open, read, close inside the engine). A first read into `capacity`
   * bytes that comes back full means the file is larger: stat it and read again with room.
   */
  const readFile = (
    path: string,
    options?: { readonly sizeHint?: number }
  ): Effect.Effect<Uint8Array, UringError> => {
    const hint = options?.sizeHint
    if (hint === undefined) return readWhole(path, READ_FILE_FIRST)
    const valid = validate.length("readFile", hint, WHOLE_FILE_MAX - 1, "sizeHint")
    // One byte of room past the hint tells a file of exactly that size from a larger one.
    return Either.isLeft(valid) ? Effect.fail(valid.left) : readWhole(path, valid.right + 1)
  }

  /** `readBatch`'s typed arrays, for the next batch of the same size. */
  const batches = new BatchPool(BATCHES_KEEP)

  /** `readFile`'s first reads: a fresh zeroed buffer per file cost small files more than their I/O did. */
  const firstReads = new BufferPool(READ_FILE_FIRST, POOL_KEEP)

  /**
   * Not flushed at once (`run`'s `now`): its three stages then cost a syscall each per file,
   * where the turn's flush batches them across every caller (measured slower at 64 in flight).
   */
  const readWhole = (path: string, capacity: number): Effect.Effect<Uint8Array, UringError> =>
    Effect.suspend(() => {
      const pooled = capacity === READ_FILE_FIRST
      const buffer = pooled ? firstReads.take() : new Uint8Array(capacity)
      return run("readFile", path, (native, id) =>
        native.readFile(id, AtFlags.AT_FDCWD, check(validate.path("readFile", path)), buffer), buffer).pipe(
          Effect.flatMap((read) => {
            // Only the file's bytes: copied out of a pooled or mostly empty buffer, else a view.
            const data = read < capacity
              ? pooled || read <= capacity >> 1 ? buffer.slice(0, read) : buffer.subarray(0, read)
              : undefined
            // The kernel is done with the buffer here (a failed or interrupted op just drops it).
            if (pooled) firstReads.give(buffer)
            if (data !== undefined) return Effect.succeed(data)
            return Effect.flatMap(stat(path), (meta) => {
              const next = Math.max(Number(meta.size) + 4096, capacity * 2)
              return next > WHOLE_FILE_MAX
                ? Effect.fail(new InvalidArgument({ operation: "readFile", argument: "path", reason: `${path} is larger than ${WHOLE_FILE_MAX} bytes, the most one read can return` }))
                : readWhole(path, next)
            })
          })
        )
    })

  /**
   * One engine op (open, write all, close) while the count fits the int32 a completion reports;
   * larger data goes through `withFile` and `writeAll`'s pieces.
   */
  const writeFile = (path: string, data: Uint8Array, options: OpenOptions = {}): Effect.Effect<void, UringError> => {
    const opened: OpenOptions = { ...options, flag: options.flag ?? "w" }
    if (data instanceof Uint8Array && data.byteLength > WHOLE_FILE_MAX) {
      return withFile(path, opened, (file) => writeAll(file, 0, data))
    }
    return run("writeFile", path, (native, id) => {
      checkBuffer("writeFile", data, "data")
      const open = openArguments("writeFile", path, opened)
      return native.writeFile(id, AtFlags.AT_FDCWD, open.path, open.flags, open.mode, data)
    }, data).pipe(Effect.flatMap((written) =>
      written < data.length
        ? Effect.fail(new WriteZero({ operation: "writeFile", path, written, expected: data.length }))
        : Effect.void
    ))
  }

  const write = (file: FileLike, offset: Position, data: Uint8Array, all = false, operation = "write") =>
    run(operation, file, (native, id) => {
      const fd = fdOf(operation, file)
      const at = offsetOf(operation, offset)
      checkBuffer(operation, data, "data")
      return native.write(id, fd, file instanceof RegisteredFile, data, at, all)
    }, data, bytesOf(data))

  const writeAll = (file: FileLike, offset: Position, data: Uint8Array): Effect.Effect<void, UringError> =>
    Effect.suspend(() => {
      // Validated before `data` is sliced: a detached or non-buffer argument is an InvalidArgument.
      checkBuffer("writeAll", data, "data")
      const start = offsetOf("writeAll", offset)
      const step = (done: number): Effect.Effect<void, UringError> => {
        if (done >= data.length && done > 0) return Effect.void
        const chunk = data.subarray(done, Math.min(data.length, done + WHOLE_CHUNK))
        return write(file, start + done, chunk, true, "writeAll").pipe(
          Effect.flatMap((written) =>
            written < chunk.length
              ? Effect.fail(new WriteZero({ ...contextOf("writeAll", file), written: done + written, expected: data.length }))
              : done + chunk.length >= data.length
              ? Effect.void
              : step(done + chunk.length)
          )
        )
      }
      return step(0)
    }).pipe(refusedAsFailure)

  const fileOp = (operation: string, submit: (native: NativeRing, id: number, fd: number, fixed: boolean) => number) =>
  (file: FileLike) =>
    run(operation, file, (native, id) => submit(native, id, fdOf(operation, file), file instanceof RegisteredFile)).pipe(
      Effect.asVoid
    )

  /** An op on a byte range of a file (fallocate, fadvise): offset and length validated alike. */
  const rangeOp = (
    operation: string,
    submit: (native: NativeRing, id: number, fd: number, fixed: boolean, offset: number, length: number) => number
  ) =>
  (file: FileLike, offset: Position, length: Position) =>
    fileOp(operation, (native, id, fd, fixed) =>
      submit(
        native,
        id,
        fd,
        fixed,
        offsetOf(operation, offset),
        offsetOf(operation, length, "length")
      ))(file)

  const statxBuffers = new BufferPool(StatxBufferSize, POOL_KEEP)

  const statInto = (
    operation: string,
    subject: Subject,
    submit: (native: NativeRing, id: number, out: Uint8Array) => number
  ) =>
    Effect.suspend(() => {
      const out = statxBuffers.take()
      // Back to the pool once the completion has arrived, failed or not; an interrupted op's is dropped.
      return Effect.mapBoth(run(operation, subject, (native, id) => submit(native, id, out), out), {
        onFailure: (error) => {
          statxBuffers.give(out)
          return error
        },
        onSuccess: () => {
          const meta = fromStatx(out)
          statxBuffers.give(out)
          return meta
        }
      })
    })

  const fstat = (file: FileLike): Effect.Effect<Metadata, UringError> =>
    statInto("fstat", file, (native, id, out) =>
      native.fstat(id, fdOf("fstat", file), file instanceof RegisteredFile, STATX_ALL_MASK, out))

  const statAt = (dir: DirLike, path: string, flags = 0): Effect.Effect<Metadata, UringError> =>
    statInto("statAt", path, (native, id, out) =>
      native.statx(id, rawFd("statAt", dir, "dir"), check(validate.path("statAt", path)), flags, STATX_ALL_MASK, out))

  const stat = (path: string, options?: { readonly followSymlinks?: boolean }): Effect.Effect<Metadata, UringError> =>
    statInto("stat", path, (native, id, out) =>
      native.statx(
        id,
        AtFlags.AT_FDCWD,
        check(validate.path("stat", path)),
        options?.followSymlinks === false ? AtFlags.AT_SYMLINK_NOFOLLOW : 0,
        STATX_ALL_MASK,
        out
      ))

  /** What open(2) takes, validated (throws `Refused`): the path, the `O_*` flags and a created file's mode. */
  const openArguments = (operation: string, path: string, options: OpenOptions) => {
    const mode = check(validate.mode(operation, options.mode ?? 0o666))
    if (options.flag !== undefined) check(validate.openFlag(operation, options.flag))
    return { path: check(validate.path(operation, path)), flags: openFlagsOf(options), mode }
  }

  const owned = (fd: number, path: string, flags: number): OwnedFd => {
    const handle = new OwnedFd(fd, path, ringId)
    handle.direct = (flags & OpenFlags.O_DIRECT) !== 0
    return handle
  }

  const openRaw = (operation: string, dir: DirLike, path: string, options: OpenOptions) =>
    run(operation, path, (native, id) => {
      const open = openArguments(operation, path, options)
      return native.openat(id, rawFd(operation, dir, "dir"), open.path, open.flags, open.mode)
    }).pipe(Effect.map((fd) => owned(fd, path, openFlagsOf(options))))

  /**
   * Open with O_PATH and close, one engine op, flushed at once (`now`): a path in the dentry cache
   * completes inline, often before the fiber would suspend, where statx always waits for a kernel worker.
   */
  const access = (path: string): Effect.Effect<void, UringError> =>
    run("access", path, (native, id) => native.access(id, AtFlags.AT_FDCWD, check(validate.path("access", path))), undefined, 0)
      .pipe(Effect.asVoid)

  const closeFd = (fd: OwnedFd | number): Effect.Effect<void, UringError> =>
    run("close", fd, (native, id) => {
      const raw = fd instanceof OwnedFd ? fdOf("close", fd) : check(validate.fd("close", fd))
      const token = native.close(id, raw)
      // Marked only once submitted: a refused close leaves the handle usable.
      if (fd instanceof OwnedFd) fd.closed = true
      return token
    }, undefined, 0).pipe(Effect.asVoid)

  /** The finalizer of every fd a scope or `withFile` owns: close it unless the caller already did. */
  const releaseFd = (owned: OwnedFd): Effect.Effect<void> => owned.closed ? Effect.void : Effect.ignore(closeFd(owned))

  const openAt = (dir: DirLike, path: string, options: OpenOptions = {}): Effect.Effect<OwnedFd, UringError, Scope.Scope> =>
    Effect.acquireRelease(
      openRaw("openAt", dir, path, options),
      releaseFd
    )

  /** `use` with an fd opened for it, closed when `use` ends however it ends; no Scope involved. */
  const withFile = <A, E, R>(
    path: string,
    options: OpenOptions,
    use: (file: OwnedFd) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | UringError, R> =>
    Effect.acquireUseRelease(
      openRaw("withFile", AtFlags.AT_FDCWD, path, options),
      use,
      releaseFd
    )

  const renameAt = (
    fromDir: DirLike,
    from: string,
    toDir: DirLike,
    to: string,
    options: RenameOptions = {}
  ): Effect.Effect<void, UringError> =>
    run("renameAt", from, (native, id) => {
      const flags = (options.noReplace ? RenameFlags.RENAME_NOREPLACE : 0) |
        (options.exchange ? RenameFlags.RENAME_EXCHANGE : 0)
      return native.renameat(
        id,
        rawFd("renameAt", fromDir, "fromDir"),
        check(validate.path("renameAt", from, "from")),
        rawFd("renameAt", toDir, "toDir"),
        check(validate.path("renameAt", to, "to")),
        flags
      )
    }).pipe(Effect.asVoid)

  const unlinkAt = (dir: DirLike, path: string, options?: { readonly removeDir?: boolean }, operation = "unlinkAt") =>
    run(operation, path, (native, id) =>
      native.unlinkat(
        id,
        rawFd(operation, dir, "dir"),
        check(validate.path(operation, path)),
        options?.removeDir ? AtFlags.AT_REMOVEDIR : 0
      )).pipe(Effect.asVoid)

  const mkdirAt = (dir: DirLike, path: string, mode = 0o777, operation = "mkdirAt") =>
    run(operation, path, (native, id) =>
      native.mkdirat(id, rawFd(operation, dir, "dir"), check(validate.path(operation, path)), check(validate.mode(operation, mode)))).pipe(
        Effect.asVoid
      )

  const symlinkAt = (target: string, dir: DirLike, path: string, operation = "symlinkAt") =>
    run(operation, path, (native, id) =>
      native.symlinkat(
        id,
        check(validate.path(operation, target, "target")),
        rawFd(operation, dir, "dir"),
        check(validate.path(operation, path))
      )).pipe(Effect.asVoid)

  const linkAt = (
    fromDir: DirLike,
    from: string,
    toDir: DirLike,
    to: string,
    options?: { readonly followSymlinks?: boolean },
    operation = "linkAt"
  ) =>
    run(operation, from, (native, id) =>
      native.linkat(
        id,
        rawFd(operation, fromDir, "fromDir"),
        check(validate.path(operation, from, "from")),
        rawFd(operation, toDir, "toDir"),
        check(validate.path(operation, to, "to")),
        options?.followSymlinks ? AtFlags.AT_SYMLINK_FOLLOW : 0
      )).pipe(Effect.asVoid)

  const register = (file: OwnedFd | number): Effect.Effect<RegisteredFile, UringError, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        let raw = -1
        return run("register", file, (native, id) => {
          raw = file instanceof OwnedFd ? fdOf("register", file) : check(validate.fd("register", file))
          return native.registerFile(id, raw)
        }).pipe(Effect.map((slot) => {
          const registered = new RegisteredFile(slot, raw, ringId)
          if (file instanceof OwnedFd) registered.source = file
          return registered
        }))
      }),
      (registered) =>
        Effect.suspend(() => {
          if (registered.released) return Effect.void
          registered.released = true
          return Effect.ignore(run("unregister", registered.fd, (native, id) =>
            native.unregisterFile(id, registered.slot)))
        })
    )

  const openBeneath = (operation: string, dir: OwnedFd, path: string, flags: number, mode: number, resolve: number) =>
    Effect.acquireRelease(
      run(operation, path, (native, id) =>
        native.openat2(id, rawFd(operation, dir, "dir"), check(validate.path(operation, path)), flags, mode, resolve)).pipe(
          Effect.map((fd) => owned(fd, path, flags))
        ),
      releaseFd
    )

  const openDir = (root: string): Effect.Effect<ConfinedDir, UringError, Scope.Scope> =>
    confinedDir({
      openBeneath,
      openAt,
      fstat,
      statAt,
      mkdirAt: (dir, path, mode) => mkdirAt(dir, path, mode),
      unlinkAt: (dir, path, options) => unlinkAt(dir, path, options),
      renameAt,
      symlinkAt: (target, dir, path) => symlinkAt(target, dir, path),
      linkAt: (fromDir, from, toDir, to) => linkAt(fromDir, from, toDir, to)
    }, root)

  return {
    ringId,
    openDir: traced("openDir", openDir),
    read: traced("read", readFresh("read", false)),
    readExact: traced("readExact", readFresh("readExact", true)),
    readBatch: traced("readBatch", readBatch),
    readFile: traced("readFile", readFile),
    writeFile: traced("writeFile", writeFile),
    readInto: traced("readInto", (file: FileLike, offset: Position, buffer: Uint8Array) => readInto(file, offset, buffer)),
    write: traced("write", (file: FileLike, offset: Position, data: Uint8Array) => write(file, offset, data)),
    writeAll: traced("writeAll", writeAll),
    fsync: traced("fsync", fileOp("fsync", (native, id, fd, fixed) => native.fsync(id, fd, fixed, false))),
    fdatasync: traced("fdatasync", fileOp("fdatasync", (native, id, fd, fixed) => native.fsync(id, fd, fixed, true))),
    fstat: traced("fstat", fstat),
    fallocate: traced("fallocate", (file: FileLike, offset: Position, length: Position, mode = 0) =>
      rangeOp("fallocate", (native, id, fd, fixed, at, len) => native.fallocate(id, fd, fixed, at, len, mode))(
        file,
        offset,
        length
      )),
    fadvise: traced("fadvise", (file: FileLike, offset: Position, length: Position, advice: Advice | number) =>
      rangeOp("fadvise", (native, id, fd, fixed, at, len) =>
        native.fadvise(id, fd, fixed, at, len, typeof advice === "number" ? advice : adviceValue(advice)))(
          file,
          offset,
          length
        )),
    ftruncate: traced("ftruncate", (file: FileLike, length: Position) =>
      fileOp("ftruncate", (native, id, fd, fixed) =>
        native.ftruncate(id, fd, fixed, offsetOf("ftruncate", length, "length")))(file)),
    open: traced("open", (path: string, options?: OpenOptions) => openAt(AtFlags.AT_FDCWD, path, options)),
    openAt: traced("openAt", openAt),
    withFile: <A, E, R>(path: string, options: OpenOptions, use: (file: OwnedFd) => Effect.Effect<A, E, R>) =>
      config.tracing ? Effect.withSpan(withFile(path, options, use), "Uring.withFile") : withFile(path, options, use),
    stat: traced("stat", stat),
    access: traced("access", access),
    statAt: traced("statAt", statAt),
    close: traced("close", closeFd),
    rename: traced("rename", (from: string, to: string, options?: RenameOptions) =>
      renameAt(AtFlags.AT_FDCWD, from, AtFlags.AT_FDCWD, to, options)),
    renameAt: traced("renameAt", renameAt),
    unlink: traced("unlink", (path: string) => unlinkAt(AtFlags.AT_FDCWD, path, {}, "unlink")),
    unlinkAt: traced("unlinkAt", (dir: DirLike, path: string, options?: { readonly removeDir?: boolean }) =>
      unlinkAt(dir, path, options)),
    rmdir: traced("rmdir", (path: string) => unlinkAt(AtFlags.AT_FDCWD, path, { removeDir: true }, "rmdir")),
    mkdir: traced("mkdir", (path: string, mode?: number) => mkdirAt(AtFlags.AT_FDCWD, path, mode, "mkdir")),
    mkdirAt: traced("mkdirAt", (dir: DirLike, path: string, mode?: number) => mkdirAt(dir, path, mode)),
    symlink: traced("symlink", (target: string, path: string) => symlinkAt(target, AtFlags.AT_FDCWD, path, "symlink")),
    symlinkAt: traced("symlinkAt", (target: string, dir: DirLike, path: string) => symlinkAt(target, dir, path)),
    link: traced("link", (from: string, to: string) => linkAt(AtFlags.AT_FDCWD, from, AtFlags.AT_FDCWD, to, {}, "link")),
    linkAt: traced("linkAt", (
      fromDir: DirLike,
      from: string,
      toDir: DirLike,
      to: string,
      options?: { readonly followSymlinks?: boolean }
    ) => linkAt(fromDir, from, toDir, to, options)),
    register: traced("register", register)
  }
}
