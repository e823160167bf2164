/**
 * Statx by fd (`fstat`), by path (`stat`) and beneath a directory (`statAt`), into pooled buffers.
 *
 * @internal
 */
import { Effect } from "effect"
import type { UringError } from "../../errors/UringError.js"
import { AtFlags } from "../../services/Flags.js"
import { type DirLike, type FileLike, RegisteredFile } from "../../services/Handles.js"
import { fromStatx, type Metadata, STATX_ALL_MASK, StatxBufferSize } from "../../services/Metadata.js"
import { BufferPool } from "../BufferPool.js"
import type { NativeRing } from "../native.js"
import * as validate from "../validate.js"
import { check, POOL_KEEP, type Runner, type Subject } from "./runner.js"

/** @internal */
export const makeStats = (runner: Runner) => {
  const { fdOf, rawFd, run } = runner

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
    statInto("fstat", file, (native, id, out) => {
      const registered = file instanceof RegisteredFile
      // The engine looks a slot up by its raw fd: checked as every op by raw fd is.
      if (registered) rawFd("fstat", file)
      return native.fstat(id, fdOf("fstat", file), registered, STATX_ALL_MASK, out)
    })

  const statAt = (dir: DirLike, path: string, flags = 0): Effect.Effect<Metadata, UringError> =>
    statInto("statAt", path, (native, id, out) => {
      const at = check(validate.fd("statAt", flags, "flags"))
      // AT_EMPTY_PATH with an empty path describes `dir` itself.
      const name = path === "" && (at & AtFlags.AT_EMPTY_PATH) !== 0 ? path : check(validate.path("statAt", path))
      return native.statx(id, rawFd("statAt", dir, "dir"), name, at, STATX_ALL_MASK, out)
    })

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

  return { fstat, statAt, stat }
}
