/**
 * The `Uring` service implementation: the ring's client as a scoped resource, and the service's
 * operations assembled from their modules under `ops/` over one client.
 *
 * @internal
 */
import { Effect, type Scope } from "effect"
import { codeOf } from "../errors/errno.js"
import { InvalidConfig, RingUnavailable, type UringError } from "../errors/UringError.js"
import { AtFlags, type OpenOptions } from "../services/Flags.js"
import type { DirLike, FileLike, OwnedFd, Position } from "../services/Handles.js"
import type { RenameOptions } from "../services/Uring.js"
import type { UringConfig } from "../services/UringConfig.js"
import type { ConfinedDir } from "../services/ConfinedDir.js"
import { openDir as confinedDir } from "./confined.js"
import { nativeErrorCode } from "./native.js"
import { makeFileOps } from "./ops/fileOps.js"
import { makeHandles } from "./ops/handles.js"
import { makePaths } from "./ops/paths.js"
import { makeReads } from "./ops/reads.js"
import { check, makeRunner, offsetOf } from "./ops/runner.js"
import { makeStats } from "./ops/stats.js"
import { makeWholeFiles } from "./ops/wholeFiles.js"
import { RingClient } from "./RingClient.js"
import * as validate from "./validate.js"

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
          inlineSubmit: config.inlineSubmit,
          batchHelper: config.batchHelper
        }),
      catch: setupError
    }),
    (client) =>
      Effect.suspend(() => {
        const pending = client.pending
        return client.shutdown()
          ? Effect.void
          : Effect.logWarning(
            `io_uring ring ${client.native.ringId} closed with operations still in the kernel after ` +
              `${config.shutdownTimeoutMs} ms (of ${pending} pending at shutdown): they complete when the kernel is done with them, and the ring's memory stays allocated until the process (or the worker that owns the ring) exits`
          )
      })
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
export const makeOperations = (
  client: RingClient,
  config: Pick<UringConfig, "tracing" | "cachedReads"> & { readonly iopoll?: boolean }
) => {
  const runner = makeRunner(client, config)
  const { ringId, traced } = runner
  const { readInto, readFresh, readBatch } = makeReads(runner, config.cachedReads)
  const { fstat, statAt, stat } = makeStats(runner, config.cachedReads)
  const { write, writeAll, fileOp, rangeOp, fadvise } = makeFileOps(runner, (file) => Effect.map(fstat(file), ({ size }) => Number(size)))
  const { access, closeFd, releaseFd, openAt, withFile, register, openBeneath } = makeHandles(runner, config.iopoll === true)
  const { renameAt, unlinkAt, mkdirAt, symlinkAt, linkAt } = makePaths(runner)
  const readExact = (file: FileLike, offset: number, buffer: Uint8Array) => readInto(file, offset, buffer, true, "readFile")
  const { readFile, writeFile } = makeWholeFiles(
    runner,
    { closeFd, fstat, readExact, releaseFd, withFile, writeAll },
    config.cachedReads
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
      rangeOp("fallocate", (native, id, fd, fixed, at, len) =>
        native.fallocate(id, fd, fixed, at, len, check(validate.fallocateMode("fallocate", mode))))(
          file,
          offset,
          length
        )),
    fadvise: traced("fadvise", fadvise),
    ftruncate: traced("ftruncate", (file: FileLike, length: Position) =>
      fileOp("ftruncate", (native, id, fd, fixed) =>
        native.ftruncate(id, fd, fixed, offsetOf("ftruncate", length, "length")))(file)),
    open: traced("open", (path: string, options?: OpenOptions) => openAt(AtFlags.AT_FDCWD, path, options, "open")),
    openAt: traced("openAt", (dir: DirLike, path: string, options?: OpenOptions) => openAt(dir, path, options)),
    withFile: <A, E, R>(path: string, options: OpenOptions, use: (file: OwnedFd) => Effect.Effect<A, E, R>) =>
      config.tracing ? Effect.withSpan(withFile(path, options, use), "Uring.withFile") : withFile(path, options, use),
    stat: traced("stat", stat),
    access: traced("access", access),
    statAt: traced("statAt", statAt),
    close: traced("close", closeFd),
    rename: traced("rename", (from: string, to: string, options?: RenameOptions) =>
      renameAt(AtFlags.AT_FDCWD, from, AtFlags.AT_FDCWD, to, options, "rename")),
    renameAt: traced("renameAt", (fromDir: DirLike, from: string, toDir: DirLike, to: string, options?: RenameOptions) =>
      renameAt(fromDir, from, toDir, to, options)),
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
