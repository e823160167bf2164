/**
 * Ops on an open file besides reads: `write` and `writeAll`, and the builders of the ops that
 * take only the file (fsync, fdatasync, ftruncate) or a byte range of it (fallocate, fadvise).
 *
 * @internal
 */
import { Effect } from "effect"
import { type UringError, WriteZero } from "../../errors/UringError.js"
import { type FileLike, type Position, RegisteredFile } from "../../services/Handles.js"
import type { NativeRing } from "../native.js"
import { bytesOf, checkBuffer, contextOf, lendBuffer, offsetOf, refusedAsFailure, type Runner } from "./runner.js"

/** Whole writes report their count as an int32; larger ones go in pieces of this size. */
const WHOLE_CHUNK = 1 << 30

/** @internal */
export const makeFileOps = (runner: Runner) => {
  const { fdOf, run } = runner

  const write = (file: FileLike, offset: Position, data: Uint8Array, all = false, operation = "write") =>
    run(operation, file, (native, id) => {
      const fd = fdOf(operation, file)
      const at = offsetOf(operation, offset)
      lendBuffer(operation, data, "data")
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

  return { write, writeAll, fileOp, rangeOp }
}
