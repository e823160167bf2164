/**
 * Whole files in one engine op each: `readFile` (open, read, close) and `writeFile` (open, write
 * all, close).
 *
 * @internal
 */
import { Effect, Either } from "effect"
import { InvalidArgument, type UringError, WriteZero } from "../../errors/UringError.js"
import { AtFlags, type OpenOptions } from "../../services/Flags.js"
import type { FileLike, OwnedFd } from "../../services/Handles.js"
import type { Metadata } from "../../services/Metadata.js"
import { BufferPool } from "../BufferPool.js"
import * as validate from "../validate.js"
import { check, checkBuffer, POOL_KEEP, type Runner } from "./runner.js"
import { openArguments } from "./handles.js"

/** What `readFile` reads first: most files fit, so open+read+close is one op. */
const READ_FILE_FIRST = 16 * 1024
/** The largest whole file one op returns (its count is an int32). @internal */
export const WHOLE_FILE_MAX = 0x7fffffff

/**
 * The buffer `readFile` reads again with, after a read filled `capacity` and a stat said `size`:
 * room for the file and more (it may grow meanwhile), at least twice the last, at most the most
 * one op returns. Undefined when the file is too large for one op: its size says so, or it
 * filled a buffer of that most already.
 *
 * @internal
 */
export const nextCapacity = (size: number, capacity: number): number | undefined =>
  size >= WHOLE_FILE_MAX || capacity >= WHOLE_FILE_MAX
    ? undefined
    : Math.min(WHOLE_FILE_MAX, Math.max(size + 4096, capacity * 2))

/**
 * `uses` are the other modules' ops these fall back on: a stat to size a file larger than the
 * first read, and an fd of its own with `writeAll`'s pieces for data too large for one op.
 *
 * @internal
 */
export const makeWholeFiles = (runner: Runner, uses: {
  readonly stat: (path: string) => Effect.Effect<Metadata, UringError>
  readonly withFile: <A, E, R>(
    path: string,
    options: OpenOptions,
    use: (file: OwnedFd) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | UringError, R>
  readonly writeAll: (file: FileLike, offset: number, data: Uint8Array) => Effect.Effect<void, UringError>
  readonly closeFd: (file: OwnedFd) => Effect.Effect<void, UringError>
}) => {
  const { run } = runner
  const { closeFd, stat, withFile, writeAll } = uses

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
              const next = nextCapacity(Number(meta.size), capacity)
              return next === undefined
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
    if (data instanceof Uint8Array && data.byteLength > WHOLE_FILE_MAX) return writeInPieces(path, data, opened)
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

  /**
   * Data too large for one op: `writeAll`'s pieces on an fd of its own, whose close's error is
   * the write's, as in the one op (write-back errors may surface only there).
   */
  const writeInPieces = (path: string, data: Uint8Array, opened: OpenOptions): Effect.Effect<void, UringError> =>
    withFile(path, opened, (file) => Effect.zipRight(writeAll(file, 0, data), closeFd(file)))

  return { readFile, writeFile, writeInPieces }
}
