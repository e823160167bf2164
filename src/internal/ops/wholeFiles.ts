/**
 * Whole files in one engine op each: `readFile` (open, read, close) and `writeFile` (open, write
 * all, close). A file larger than `readFile`'s first read is read on from the fd that op left open.
 *
 * @internal
 */
import { Effect, Either } from "effect"
import { InvalidArgument, type UringError, WriteZero } from "../../errors/UringError.js"
import { AtFlags, type OpenOptions } from "../../services/Flags.js"
import { type FileLike, OwnedFd } from "../../services/Handles.js"
import type { Metadata } from "../../services/Metadata.js"
import { BufferPool } from "../BufferPool.js"
import * as validate from "../validate.js"
import { CACHED_READ_MAX } from "./reads.js"
import { EAGAIN, lendBuffer, POOL_KEEP, type Runner } from "./runner.js"
import { openArguments } from "./handles.js"

/** What `readFile` reads first: most files fit, so open+read+close is one op. */
const READ_FILE_FIRST = 16 * 1024
/**
 * Bytes past the data in `readFile`'s buffer: when the data part fills, the engine leaves the file
 * open and writes its fd there (a little-endian int32), since a pipe's or a device's bytes cannot
 * be read again by opening it anew.
 */
const KEPT_FD = 4
/**
 * The largest file `readFile` returns, and the most one whole-file op moves (its count is an int32):
 * one Uint8Array of a file larger than this would be a hazard more than a help. @internal
 */
export const WHOLE_FILE_MAX = 0x7fffffff

/**
 * The buffer `readFile` reads on with, after reads filled `capacity` and a stat said `size`:
 * room for the file and more (it may grow meanwhile), at least twice the last, at most
 * `WHOLE_FILE_MAX`. Undefined when the file is larger than that: its size says so, or it
 * filled a buffer of that size already.
 *
 * @internal
 */
export const nextCapacity = (size: number, capacity: number): number | undefined =>
  size >= WHOLE_FILE_MAX || capacity >= WHOLE_FILE_MAX
    ? undefined
    : Math.min(WHOLE_FILE_MAX, Math.max(size + 4096, capacity * 2))

/**
 * `uses` are the other modules' ops these go on with: for a file larger than the first read, a
 * stat of the fd it left open to size the rest, exact reads of it and its release; and an fd of
 * its own with `writeAll`'s pieces for data too large for one op.
 *
 * @internal
 */
export const makeWholeFiles = (runner: Runner, uses: {
  readonly fstat: (file: FileLike) => Effect.Effect<Metadata, UringError>
  readonly readExact: (file: FileLike, offset: number, buffer: Uint8Array) => Effect.Effect<number, UringError>
  readonly releaseFd: (file: OwnedFd) => Effect.Effect<void>
  readonly withFile: <A, E, R>(
    path: string,
    options: OpenOptions,
    use: (file: OwnedFd) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | UringError, R>
  readonly writeAll: (file: FileLike, offset: number, data: Uint8Array) => Effect.Effect<void, UringError>
  readonly closeFd: (file: OwnedFd) => Effect.Effect<void, UringError>
}, cachedReads = false) => {
  const { client, failure, run, nextTurn, ringId, thrown } = runner
  const { closeFd, fstat, readExact, releaseFd, withFile, writeAll } = uses

  /**
   * A whole file in one op (open, read, close inside the engine). A first read into `capacity`
   * bytes that comes back full means the file may be larger: the engine left it open, and the
   * rest is read from there.
   */
  const readFile = (
    path: string,
    options?: { readonly sizeHint?: number }
  ): Effect.Effect<Uint8Array, UringError> => {
    const valid = validate.options("readFile", options)
    if (Either.isLeft(valid)) return Effect.fail(valid.left)
    const hint = valid.right.sizeHint
    if (hint === undefined) return readWhole(path, READ_FILE_FIRST)
    const length = validate.length("readFile", hint, WHOLE_FILE_MAX - 1, "sizeHint")
    // One byte of room past the hint tells a file of exactly that size from a larger one.
    return Either.isLeft(length) ? Effect.fail(length.left) : readWhole(path, length.right + 1)
  }

  /** `readFile`'s first reads: a fresh zeroed buffer per file cost small files more than their I/O did. */
  const firstReads = new BufferPool(READ_FILE_FIRST + KEPT_FD, POOL_KEEP)

  const tooLarge = (path: string) =>
    new InvalidArgument({ operation: "readFile", argument: "path", reason: `${path} is larger than ${WHOLE_FILE_MAX} bytes, the most readFile returns` })

  /**
   * A file the dentry and page caches hold is read on this thread first
   * (`RingClient.readFileCached`), with no op and no fiber suspension; what they do not hold (or
   * the turn's budget spent) goes to the ring. There it is not flushed at once (`run`'s `now`):
   * its three stages would then cost a syscall each per file, where the turn's flush batches them
   * across every caller (measured slower at 64 in flight). An fd either way leaves open is owned
   * from then on: closed if the caller was interrupted meanwhile, else once the rest is read.
   */
  const readWhole = (path: string, capacity: number): Effect.Effect<Uint8Array, UringError> =>
    Effect.uninterruptibleMask((restore) => {
      // Checked once, for this thread's read and the ring's alike.
      const valid = validate.path("readFile", path)
      if (Either.isLeft(valid)) return Effect.fail(valid.left)
      const name = valid.right
      const pooled = capacity === READ_FILE_FIRST
      const buffer = pooled ? firstReads.take() : new Uint8Array(capacity + KEPT_FD)
      const keptFd = () => new DataView(buffer.buffer, buffer.byteOffset + capacity, KEPT_FD).getInt32(0, true)
      // The ring's op leaves the file open only when the read filled the buffer.
      const kept = (read: number): OwnedFd | undefined =>
        read === capacity ? new OwnedFd(keptFd(), path, ringId) : undefined
      const finish = (read: number, file: OwnedFd | undefined) => {
        // Only the file's bytes: copied out of a pooled or mostly empty buffer, else a view.
        const data = pooled || read <= capacity >> 1 ? buffer.slice(0, read) : buffer.subarray(0, read)
        // The kernel is done with the buffer here (a failed or interrupted op just drops it).
        if (pooled) firstReads.give(buffer)
        if (file === undefined) return Effect.succeed(data)
        return Effect.acquireUseRelease(Effect.succeed(file), (file) => restore(readRest(path, file, data)), releaseFd)
      }
      const release = (read: number) => {
        const file = kept(read)
        return file === undefined ? Effect.void : releaseFd(file)
      }
      const ring = () =>
        run("readFile", path, (native, id) => native.readFile(id, AtFlags.AT_FDCWD, name, buffer), buffer, undefined, {
          restore,
          release
        }).pipe(Effect.flatMap((read) => finish(read, kept(read))))
      // Larger first reads (a `sizeHint`) stay on the ring, as larger reads do.
      if (!cachedReads || capacity > CACHED_READ_MAX) return ring()
      /** The file read on this thread, or the ring's op if the caches cannot; `undefined` once the turn's budget is spent. */
      const here = (): Effect.Effect<Uint8Array, UringError> | undefined => {
        // Done with the buffer when the call returns: a failure gives it back.
        const failed = (error: UringError) => {
          if (pooled) firstReads.give(buffer)
          return Effect.fail(error)
        }
        let read: number | undefined
        try {
          read = client.readFileCached(AtFlags.AT_FDCWD, name, buffer)
        } catch (error) {
          return failed(thrown(error, "readFile", path))
        }
        if (read === undefined) return undefined
        if (read === -EAGAIN) return ring()
        if (read < 0) return failed(failure(read, "readFile", path))
        const fd = keptFd()
        return finish(read, fd < 0 ? undefined : new OwnedFd(fd, path, ringId))
      }
      // Past the turn's budget, the file waits for the next turn, where it is read before any fiber
      // runs (`RingClient.nextTurn`): the ring's open, read and close cost several times that wait.
      // Uninterruptibly, so an fd that read leaves open always reaches `finish`.
      return here() ?? nextTurn(here)
    })

  /**
   * The rest of a file whose first `data` filled the first read, from the fd left open: a
   * regular file's size says how much room to make; a stream's (size 0) doubles it per read.
   */
  const readRest = (path: string, file: OwnedFd, data: Uint8Array): Effect.Effect<Uint8Array, UringError> =>
    Effect.flatMap(fstat(file), (meta) => {
      const size = meta.isFile ? Number(meta.size) : 0
      const more = (done: Uint8Array): Effect.Effect<Uint8Array, UringError> => {
        const capacity = nextCapacity(size, done.length)
        if (capacity === undefined) return Effect.fail(tooLarge(path))
        const buffer = new Uint8Array(capacity)
        buffer.set(done)
        // A stream has no offsets: the kernel reads on from where the last read ended.
        return Effect.flatMap(readExact(file, done.length, buffer.subarray(done.length)), (read) => {
          const total = done.length + read
          if (total === capacity) return more(buffer)
          return Effect.succeed(total <= capacity >> 1 ? buffer.slice(0, total) : buffer.subarray(0, total))
        })
      }
      return more(data)
    })

  /**
   * One engine op (open, write all, close) while the count fits the int32 a completion reports;
   * larger data goes through `withFile` and `writeAll`'s pieces.
   */
  const writeFile = (path: string, data: Uint8Array, options?: OpenOptions): Effect.Effect<void, UringError> => {
    const valid = validate.options("writeFile", options)
    if (Either.isLeft(valid)) return Effect.fail(valid.left)
    const opened: OpenOptions = { ...valid.right, flag: valid.right.flag ?? "w" }
    if (data instanceof Uint8Array && data.byteLength > WHOLE_FILE_MAX) return writeInPieces(path, data, opened)
    return run("writeFile", path, (native, id) => {
      lendBuffer("writeFile", data, "data")
      const open = openArguments("writeFile", path, opened)
      return native.writeFile(id, AtFlags.AT_FDCWD, open.path, open.flags, open.mode, data)
    }, data).pipe(Effect.flatMap((written) =>
      written < data.length
        ? Effect.fail(new WriteZero({ operation: "writeFile", path, written, expected: data.length }))
        : Effect.void
    ))
  }

  /**
   * Data too large for one op: `writeAll`'s pieces on an fd of its own, whose close's error is
   * the write's, as in the one op (write-back errors may surface only there).
   */
  const writeInPieces = (path: string, data: Uint8Array, opened: OpenOptions): Effect.Effect<void, UringError> =>
    withFile(path, opened, (file) => Effect.zipRight(writeAll(file, 0, data), closeFd(file)))

  return { readFile, writeFile, writeInPieces }
}
