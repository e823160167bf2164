/**
 * Ops on names in the file system: rename, unlink (and rmdir), mkdir, symlink and link, each
 * relative to a directory fd or the working directory.
 *
 * @internal
 */
import { Effect } from "effect"
import type { UringError } from "../../errors/UringError.js"
import { AtFlags, RenameFlags } from "../../services/Flags.js"
import type { DirLike } from "../../services/Handles.js"
import type { RenameOptions } from "../../services/Uring.js"
import * as validate from "../validate.js"
import { check, type Runner } from "./runner.js"

/** rename(2)'s flags for some options, validated (throws `Refused`). */
export const renameFlagsOf = (operation: string, options: RenameOptions | undefined): number => {
  const valid = check(validate.options(operation, options, ["noReplace", "exchange"]))
  return (valid.noReplace ? RenameFlags.RENAME_NOREPLACE : 0) | (valid.exchange ? RenameFlags.RENAME_EXCHANGE : 0)
}

/** @internal */
export const makePaths = (runner: Runner) => {
  const { rawFd, run } = runner

  const renameAt = (
    fromDir: DirLike,
    from: string,
    toDir: DirLike,
    to: string,
    options?: RenameOptions,
    operation = "renameAt"
  ): Effect.Effect<void, UringError> =>
    run(operation, from, (native, id) => {
      const flags = renameFlagsOf(operation, options)
      return native.renameat(
        id,
        rawFd(operation, fromDir, "fromDir"),
        check(validate.path(operation, from, "from")),
        rawFd(operation, toDir, "toDir"),
        check(validate.path(operation, to, "to")),
        flags
      )
    }).pipe(Effect.asVoid)

  const unlinkAt = (dir: DirLike, path: string, options?: { readonly removeDir?: boolean }, operation = "unlinkAt") =>
    run(operation, path, (native, id) =>
      native.unlinkat(
        id,
        rawFd(operation, dir, "dir"),
        check(validate.path(operation, path)),
        check(validate.options(operation, options, ["removeDir"])).removeDir ? AtFlags.AT_REMOVEDIR : 0
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
        check(validate.options(operation, options, ["followSymlinks"])).followSymlinks ? AtFlags.AT_SYMLINK_FOLLOW : 0
      )).pipe(Effect.asVoid)

  return { renameAt, unlinkAt, mkdirAt, symlinkAt, linkAt }
}
