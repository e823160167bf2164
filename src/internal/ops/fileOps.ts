/**
 * Ops on an open file besides reads: `write` and `writeAll`, and the builders of the ops that
 * take only the file (fsync, fdatasync, ftruncate) or a byte range of it (fallocate), and
 * `fadvise`, whose long ranges take more than one op.
 *
 * @internal
 */
import { Effect } from "effect"
import { type UringError, WriteZero } from "../../errors/UringError.js"
import type { Advice } from "../../services/Flags.js"
import { type FileLike, type Position, RegisteredFile } from "../../services/Handles.js"
import { withContext } from "../kernelError.js"
import type { NativeRing } from "../native.js"
import * as validate from "../validate.js"
import { bytesOf, check, checkBuffer, contextOf, lendBuffer, offsetOf, refusedAsFailure, type Runner } from "./runner.js"

/** io_uring's fadvise entry holds a 32-bit length. */
const FADVISE_MAX = 2 ** 32 - 1
/** The smallest page size Linux has. */
const PAGE = 4096
/** A write reports its count as an int32; `writeAll` writes larger data in pieces of this size. */
const WHOLE_CHUNK = 1 << 30

/** A kernel error from one of `writeAll`'s writes, saying how many bytes of its data the writes before wrote. */
const withWritten = (error: UringError, written: number): UringError =>
  withContext(error, ({ fd, operation, path }) => ({ operation, path, fd, written }))

/** @internal */
export const makeFileOps = (runner: Runner, sizeOf: (file: FileLike) => Effect.Effect<number, UringError>) => {
  const { fdOf, run } = runner

  const write = (file: FileLike, offset: Position, data: Uint8Array, all = false, operation = "write") =>
    run(operation, file, (native, id) => {
      const fd = fdOf(operation, file)
      const at = offsetOf(operation, offset)
      lendBuffer(operation, data, "data")
      return native.write(id, fd, file instanceof RegisteredFile, data, at, all)
    }, data, bytesOf(data))

  /**
   * Whole writes (the engine's `all` loop resubmits the rest of a short one), looped here on what
   * they leave: the engine ends a whole write that fails after progress with the count written,
   * as write(2) does, so the next write here meets the error and can say how much of `data` went
   * before it (`written`). One op per piece when nothing fails.
   */
  const writeAll = (file: FileLike, offset: Position, data: Uint8Array): Effect.Effect<void, UringError> =>
    Effect.suspend(() => {
      // Validated before `data` is sliced: a detached or non-buffer argument is an InvalidArgument.
      checkBuffer("writeAll", data, "data")
      const start = offsetOf("writeAll", offset)
      // `done`: the bytes of `data` written so far. Empty data is still written once, as write(2) of nothing.
      const step = (done: number): Effect.Effect<void, UringError> => {
        const chunk = data.subarray(done, Math.min(data.length, done + WHOLE_CHUNK))
        return Effect.matchEffect(write(file, start + done, chunk, true, "writeAll"), {
          onFailure: (error) => Effect.fail(withWritten(error, done)),
          onSuccess: (written) =>
            done + written >= data.length
              ? Effect.void
              : written === 0
              ? Effect.fail(new WriteZero({ ...contextOf("writeAll", file), written: done, expected: data.length }))
              : step(done + written)
        })
      }
      return step(0)
    }).pipe(refusedAsFailure)

  const fileOp = (operation: string, submit: (native: NativeRing, id: number, fd: number, fixed: boolean) => number) =>
  (file: FileLike) =>
    run(operation, file, (native, id) => submit(native, id, fdOf(operation, file), file instanceof RegisteredFile)).pipe(
      Effect.asVoid
    )

  /** An op on a byte range of a file (fallocate): offset and length validated alike. */
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

  /**
   * `fadvise` on ranges longer than io_uring's entry holds (32 bits) as pieces that meet at page
   * boundaries, so advice that applies to whole pages only (dontNeed) covers the range alike. A
   * long range that reaches the end of the file is one op to the end (length 0, as posix_fadvise
   * takes it): past the end there is nothing to advise, and a length near 2^53 would otherwise be
   * millions of ops.
   */
  const fadvise = (file: FileLike, offset: Position, length: Position, advice: Advice | number) =>
    Effect.suspend(() => {
      const start = offsetOf("fadvise", offset)
      const total = offsetOf("fadvise", length, "length")
      const kernelAdvice = check(validate.advice("fadvise", advice))
      const advise = (at: number, span: number) =>
        fileOp("fadvise", (native, id, fd, fixed) => native.fadvise(id, fd, fixed, at, span, kernelAdvice))(file)
      // Built one piece at a time, as each is reached.
      const pieces = (at: number, left: number): Effect.Effect<void, UringError> => {
        if (left <= FADVISE_MAX) return advise(at, left)
        const end = Math.floor((at + FADVISE_MAX) / PAGE) * PAGE
        return Effect.zipRight(advise(at, end - at), Effect.suspend(() => pieces(end, left - (end - at))))
      }
      if (total <= FADVISE_MAX) return advise(start, total)
      return sizeOf(file).pipe(
        Effect.mapError((error) => withContext(error, ({ fd, path }) => ({ operation: "fadvise", path, fd }))),
        Effect.flatMap((size) => start + total >= size ? advise(start, 0) : pieces(start, total))
      )
    }).pipe(refusedAsFailure)

  return { write, writeAll, fileOp, rangeOp, fadvise }
}
