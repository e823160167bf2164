/**
 * Statx by fd (`fstat`), by path (`stat`) and beneath a directory (`statAt`), into pooled buffers.
 * A stat by path the dentry cache can answer is taken on the calling thread first.
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
import { check, EAGAIN, POOL_KEEP, type Runner, type Subject } from "./runner.js"

/** What a stat by path asks the kernel: checked once, for this thread's stat and the ring's alike. */
interface PathStat {
  readonly dirfd: number
  readonly name: string
  readonly flags: number
}

/** @internal */
export const makeStats = (runner: Runner, cachedStats: boolean) => {
  const { client, fdOf, rawFd, run, thrown, failure, nextTurn } = runner

  const statxBuffers = new BufferPool(StatxBufferSize, POOL_KEEP)

  /** The `struct statx` in `out` as Metadata; `out` goes back to the pool. */
  const decoded = (out: Uint8Array): Metadata => {
    const meta = fromStatx(out)
    statxBuffers.give(out)
    return meta
  }

  /** The ring's statx into `out`, back to the pool once the completion has arrived (an interrupted op's is dropped). */
  const ringStat = (
    operation: string,
    subject: Subject,
    out: Uint8Array,
    submit: (native: NativeRing, id: number, out: Uint8Array) => number
  ): Effect.Effect<Metadata, UringError> =>
    Effect.mapBoth(run(operation, subject, (native, id) => submit(native, id, out), out), {
      onFailure: (error) => {
        statxBuffers.give(out)
        return error
      },
      onSuccess: () => decoded(out)
    })

  /**
   * A stat by path. One the dentry cache can answer on a file system that keeps attributes in
   * memory is taken on this thread (`RingClient.statCached`), with no op, a missing path's
   * `NotFound` included; else (a lookup that would wait, another file system) the ring does it.
   * Once the turn's budget is spent, the stat waits for the next turn, where it is taken before
   * any fiber runs: the ring's statx, on a kernel worker, costs several times a turn's wait.
   */
  const statPath = (operation: string, path: string, prepare: () => PathStat): Effect.Effect<Metadata, UringError> => {
    // Checked again when it waited a turn: a directory handle may have been closed meanwhile.
    const attempt = (): Effect.Effect<Metadata, UringError> | undefined => {
      let asked: PathStat
      try {
        asked = prepare()
      } catch (error) {
        return Effect.fail(thrown(error, operation, path))
      }
      const out = statxBuffers.take()
      return cachedStats ? taken(operation, path, asked, out) : ringPathStat(operation, path, asked, out)
    }
    return Effect.suspend(() => attempt() ?? nextTurn(attempt))
  }

  const ringPathStat = (operation: string, path: string, { dirfd, flags, name }: PathStat, out: Uint8Array) =>
    ringStat(operation, path, out, (native, id, out) => native.statx(id, dirfd, name, flags, STATX_ALL_MASK, out))

  /**
   * The stat taken on this thread into `out`, or the ring's when the caches cannot answer it;
   * `undefined` when the turn's budget is spent.
   */
  const taken = (
    operation: string,
    path: string,
    asked: PathStat,
    out: Uint8Array
  ): Effect.Effect<Metadata, UringError> | undefined => {
    let result: number | undefined
    try {
      result = client.statCached(asked.dirfd, asked.name, asked.flags, STATX_ALL_MASK, out)
    } catch (error) {
      statxBuffers.give(out)
      return Effect.fail(thrown(error, operation, path))
    }
    if (result === undefined) {
      statxBuffers.give(out)
      return undefined
    }
    if (result === 0) return Effect.succeed(decoded(out))
    if (result === -EAGAIN) return ringPathStat(operation, path, asked, out)
    statxBuffers.give(out)
    return Effect.fail(failure(result, operation, path))
  }

  const fstat = (file: FileLike): Effect.Effect<Metadata, UringError> =>
    Effect.suspend(() =>
      ringStat("fstat", file, statxBuffers.take(), (native, id, out) => {
        const registered = file instanceof RegisteredFile
        // The engine looks a slot up by its raw fd: checked as every op by raw fd is.
        if (registered) rawFd("fstat", file)
        return native.fstat(id, fdOf("fstat", file), registered, STATX_ALL_MASK, out)
      })
    )

  const statAt = (dir: DirLike, path: string, flags = 0): Effect.Effect<Metadata, UringError> =>
    statPath("statAt", path, () => {
      const at = check(validate.fd("statAt", flags, "flags"))
      // AT_EMPTY_PATH with an empty path describes `dir` itself.
      const name = path === "" && (at & AtFlags.AT_EMPTY_PATH) !== 0 ? path : check(validate.path("statAt", path))
      return { dirfd: rawFd("statAt", dir, "dir"), name, flags: at }
    })

  const stat = (path: string, options?: { readonly followSymlinks?: boolean }): Effect.Effect<Metadata, UringError> =>
    statPath("stat", path, () => ({
      dirfd: AtFlags.AT_FDCWD,
      name: check(validate.path("stat", path)),
      flags: check(validate.options("stat", options, ["followSymlinks"])).followSymlinks === false ? AtFlags.AT_SYMLINK_NOFOLLOW : 0
    }))

  return { fstat, statAt, stat }
}
