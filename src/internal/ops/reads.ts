/**
 * Reads at an offset: `readInto` (the page cache on this thread first, else the ring), `read` and
 * `readExact` into a fresh buffer, and `readBatch`, many ranges in one crossing.
 *
 * @internal
 */
import { Effect, Either } from "effect"
import { constants } from "node:buffer"
import { InvalidArgument, UnexpectedEof, type UringError } from "../../errors/UringError.js"
import { type FileLike, OwnedFd, type Position, RegisteredFile } from "../../services/Handles.js"
import { BatchPool } from "../BatchPool.js"
import { unreadBytes } from "../RingClient.js"
import * as validate from "../validate.js"
import { bytesOf, check, checkBuffer, contextOf, keepInPlace, lendBuffer, lengthOf, offsetOf, Refused, refusedAsFailure, type Runner } from "./runner.js"

/**
 * Reads up to this size try the page cache on the calling thread first (`RingClient.readCached`);
 * larger copies are left to the ring, whose submission thread may do them on another core.
 */
/** @internal */
export const CACHED_READ_MAX = 64 * 1024
/**
 * Reads from this size on (the engine's `LARGE_READ`) wait for the turn's flush while another is
 * in flight, instead of being flushed alone: submitted together, every other one goes to a kernel
 * worker and the copies share both cores. A lone one is still flushed at once.
 */
const LARGE_READ = 256 * 1024
/** The smallest page size Linux has: the page cache holds whole pages, at multiples of it. */
const PAGE = 4096
/** The most `readBatch` allocates for its ranges: the largest Uint8Array there is. */
const MAX_BATCH_BYTES = constants.MAX_LENGTH
/** `readBatch` arrays kept for reuse: one per batch in flight at once, up to this many. */
const BATCHES_KEEP = 16

/** @internal */
export const makeReads = (runner: Runner, cachedReads: boolean) => {
  const { client, fdOf, thrown, failure, run } = runner

  /** `readBatch`'s typed arrays, for the next batch of the same size. */
  const batches = new BatchPool(BATCHES_KEEP)

  /**
   * The views `readBatch` last returned over a caller's buffer, by that buffer: a batch that reads
   * the same ranges' lengths into it again hands back the same view objects instead of creating 64
   * (they show the same bytes either way). Weakly held: a dropped buffer takes its views along.
   * Kept apart from the arrays returned, which the caller may change.
   */
  const reusable = new WeakMap<Uint8Array, Array<Uint8Array | undefined>>()
  const viewsOf = (buffer: Uint8Array): Array<Uint8Array | undefined> => {
    let views = reusable.get(buffer)
    if (views === undefined) reusable.set(buffer, views = [])
    return views
  }

  /** Large reads submitted and not yet completed. */
  let largeInFlight = 0

  /** One ring read, flushed at once with `now` (its bytes), else at the turn's flush. */
  const submitRead = (
    file: FileLike,
    offset: Position,
    buffer: Uint8Array,
    exact: boolean,
    operation: string,
    now: number | undefined
  ) =>
    run(operation, file, (native, id) => {
      const fd = fdOf(operation, file)
      const at = offsetOf(operation, offset)
      lendBuffer(operation, buffer)
      return native.read(id, fd, file instanceof RegisteredFile, buffer, at, exact)
    }, buffer, now)

  const readRing = (file: FileLike, offset: Position, buffer: Uint8Array, exact: boolean, operation: string) => {
    const bytes = bytesOf(buffer)
    if (bytes < LARGE_READ) return submitRead(file, offset, buffer, exact, operation, bytes)
    return Effect.suspend(() => {
      const now = largeInFlight > 0 ? undefined : bytes
      largeInFlight++
      return Effect.ensuring(submitRead(file, offset, buffer, exact, operation, now), Effect.sync(() => largeInFlight--))
    })
  }

  /**
   * The raw fd a read of `file` may try the page cache with on this thread, or -1: only an open
   * `OwnedFd` (or a slot registered from one) says which file the number is and how it was opened.
   */
  const cachedFd = (file: FileLike): number => {
    const owned = file instanceof RegisteredFile ? file.source : file
    return owned instanceof OwnedFd && !owned.closed && !owned.direct ? owned.fd : -1
  }

  /** Resumes at the start of the next turn's flush (`RingClient.afterTurn`). */
  const waitTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
    // No canceler: an interrupted fiber's resume is ignored, and the read is the fiber's to do.
    client.afterTurn(() => resume(Effect.void))
  })

  /**
   * One try of `readInto` on this thread: the page cache first (`RingClient.readCached`), where a
   * cached range is done without the ring or a fiber suspension, and nothing is left in flight to
   * wait for. Else (not cached, any error) the ring does the read, or what the cached part left of
   * it, and reports the authoritative result or error. Past the turn's budget the read waits for
   * the next turn and tries once more, `waited`, before it goes to the ring: a bare suspension
   * costs less than a read through the ring, and the next turn's allowance for reads that waited
   * is theirs alone, so they are not refused again behind fibers that loop.
   */
  const tryCached = (
    file: FileLike,
    offset: Position,
    buffer: Uint8Array,
    exact: boolean,
    operation: string,
    waited: boolean
  ): Effect.Effect<number, UringError> => {
    let read: number | undefined
    let at: number
    let fd: number
    try {
      fdOf(operation, file)
      at = offsetOf(operation, offset)
      checkBuffer(operation, buffer)
      fd = buffer.length <= CACHED_READ_MAX ? cachedFd(file) : -1
      read = fd < 0 ? undefined : client.readCached(fd, buffer, at, waited)
    } catch (error) {
      return Effect.fail(thrown(error, operation, file))
    }
    // A closed ring fails at once, through the ring, rather than after a turn.
    if (read === undefined && fd >= 0 && !waited && !client.closed) {
      return Effect.flatMap(waitTurn, () => tryCached(file, offset, buffer, exact, operation, true))
    }
    if (read === undefined || read < 0) return readRing(file, offset, buffer, exact, operation)
    // Nothing cached is EAGAIN, so 0 is the end of the file; so is a short count ending inside a
    // page, since the cached part ends at a page boundary.
    if (read === buffer.length || read === 0 || (at + read) % PAGE !== 0) return Effect.succeed(read)
    const done = read
    return Effect.map(readRing(file, at + done, buffer.subarray(done), exact, operation), (more) => done + more)
  }

  const readInto = cachedReads
    ? (file: FileLike, offset: Position, buffer: Uint8Array, exact = false, operation = "readInto") =>
      Effect.suspend(() => tryCached(file, offset, buffer, exact, operation, false))
    : (file: FileLike, offset: Position, buffer: Uint8Array, exact = false, operation = "readInto") =>
      readRing(file, offset, buffer, exact, operation)

  const readFresh = (operation: string, exact: boolean) => (file: FileLike, offset: Position, length: Position) =>
    Effect.suspend(() => {
      // Refused as a value, not thrown: no defect handler on every read.
      const valid = validate.length(operation, length)
      if (Either.isLeft(valid)) return Effect.fail(valid.left)
      // The file and offset too, before a buffer of up to 2 GiB is zeroed for a read that is refused.
      try {
        fdOf(operation, file)
        offsetOf(operation, offset)
      } catch (error) {
        return Effect.fail(thrown(error, operation, file))
      }
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
   * Ranges the page cache holds are read on this thread first (with `cachedReads`, within the
   * turn's budget, as `readInto` reads them), in that one crossing; the rest are one op to the
   * ring (a group in the engine), run like any other: flushed at once, so a batch the kernel
   * copies inline is done when its submit call returns and the fiber does not suspend;
   * interruption cancels the ranges still pending and waits for them.
   */
  const readBatch = (
    file: FileLike,
    ranges: ReadonlyArray<{ readonly offset: Position; readonly length: Position }>,
    options?: { readonly buffer?: Uint8Array }
  ): Effect.Effect<Array<Uint8Array>, UringError> =>
    Effect.suspend(() => {
      const operation = "readBatch"
      if (!Array.isArray(ranges)) throw refuseRange("must be an array of { offset, length }", ranges)
      const { buffer: given } = check(validate.options(operation, options))
      const count = ranges.length
      if (count === 0) return Effect.succeed([])
      const memory = batches.take(count)
      // `[offset, length]` per range.
      const packed = memory.ranges
      let total = 0
      for (let i = 0; i < count; i++) {
        const range = ranges[i]!
        if (typeof range !== "object" || range === null) throw refuseRange(`range ${i} must be an object with offset and length`, range)
        packed[2 * i] = offsetOf(operation, range.offset)
        const length = lengthOf(operation, range.length)
        packed[2 * i + 1] = length
        total += length
      }
      // A caller's buffer, reused across batches, spares a large allocation (and the GC it brings) per call.
      if (given !== undefined) {
        checkBuffer(operation, given)
        if (given.length < total) {
          throw new Refused(new InvalidArgument({ operation, argument: "buffer", reason: `holds ${given.length} bytes, the ranges need ${total}` }))
        }
      } else if (total > MAX_BATCH_BYTES) {
        throw new Refused(
          new InvalidArgument({ operation, argument: "ranges", reason: `need ${total} bytes together, more than the largest Uint8Array (${MAX_BATCH_BYTES})` })
        )
      }
      const buffer = given ?? new Uint8Array(total)
      memory.buffer = buffer
      const results = memory.results
      /** The batch has completed: the slices, and the batch's arrays back to the pool. */
      const finish = (): Effect.Effect<Array<Uint8Array>, UringError> => {
        const slices = new Array<Uint8Array>(count)
        const reused = given === undefined ? undefined : viewsOf(given)
        // The constructor over the buffer's own bytes costs half of what `subarray` does.
        const bytes = buffer.buffer
        let at = buffer.byteOffset
        for (let i = 0; i < count; i++) {
          const result = results[i]!
          if (result < 0) {
            batches.give(memory)
            return Effect.fail(failure(result, operation, file))
          }
          const old = reused?.[i]
          if (old !== undefined && old.byteOffset === at && old.length === result) {
            slices[i] = old
          } else {
            slices[i] = new Uint8Array(bytes, at, result)
            if (reused !== undefined) reused[i] = slices[i]!
          }
          at += packed[2 * i + 1]!
        }
        batches.give(memory)
        return Effect.succeed(slices)
      }
      // What the page cache holds is read here first, as `readInto` does, within the turn's budget;
      // the ring reads the rest (`unread`), or all of it when this thread did not try.
      const fd = cachedReads ? cachedFd(file) : -1
      let unread: number | undefined
      if (fd >= 0) {
        try {
          // The handle's own checks first (a released slot, another ring's), as the ring's path makes them.
          fdOf(operation, file)
          unread = client.readManyCached(fd, buffer, packed, results, total)
        } catch (error) {
          return Effect.fail(thrown(error, operation, file))
        }
        if (unread === 0) return finish()
      }
      const tried = unread !== undefined
      // The kernel may write a caller's buffer after the submit call returns: it must not be
      // transferred. (One made here reaches the caller only once the batch is done.)
      if (given !== undefined) keepInPlace(given)
      // `memory` (the buffer included) stays in the pending table until the batch's completion.
      return Effect.flatMap(
        run(operation, file, (native, id) =>
          native.readMany(id, fdOf(operation, file), file instanceof RegisteredFile, buffer, packed, results, tried), memory, tried ? unreadBytes(packed, results) : total),
        finish
      )
    }).pipe(refusedAsFailure)

  return { readInto, readFresh, readBatch }
}

/** A `readBatch` argument that is not the shape its type says. */
const refuseRange = (reason: string, got: unknown) =>
  new Refused(new InvalidArgument({ operation: "readBatch", argument: "ranges", reason: `${reason} (got ${validate.shown(got)})` }))
