/**
 * `openDir`: path operations resolved beneath a root by the kernel (openat2 RESOLVE_BENEATH).
 *
 * @internal
 */
import { Effect, Either, type Scope } from "effect"
import { Escape, InvalidArgument, type UringError } from "../errors/UringError.js"
import type { ConfinedDir } from "../services/ConfinedDir.js"
import { AtFlags, type OpenOptions, OpenFlags, ResolveFlags } from "../services/Flags.js"
import type { OwnedFd } from "../services/Handles.js"
import type { Metadata } from "../services/Metadata.js"
import type { RenameOptions } from "../services/Uring.js"
import { withContext } from "./kernelError.js"
import { openArguments } from "./ops/handles.js"
import { renameFlagsOf } from "./ops/paths.js"
import { check, refusedAsFailure } from "./ops/runner.js"
import * as validate from "./validate.js"

const EXDEV = 18

/** What `openDir` needs from the service's operations. @internal */
export interface ConfinementPrimitives {
  /** openat2 relative to `dir`, closed when the scope ends. */
  readonly openBeneath: (
    operation: string,
    dir: OwnedFd,
    path: string,
    flags: number,
    mode: number,
    resolve: number
  ) => Effect.Effect<OwnedFd, UringError, Scope.Scope>
  readonly openAt: (
    dir: number,
    path: string,
    options: OpenOptions,
    operation: string
  ) => Effect.Effect<OwnedFd, UringError, Scope.Scope>
  readonly fstat: (file: OwnedFd) => Effect.Effect<Metadata, UringError>
  readonly statAt: (dir: OwnedFd, path: string, flags: number) => Effect.Effect<Metadata, UringError>
  readonly mkdirAt: (dir: OwnedFd, path: string, mode?: number) => Effect.Effect<void, UringError>
  readonly unlinkAt: (dir: OwnedFd, path: string, options?: { readonly removeDir?: boolean }) => Effect.Effect<void, UringError>
  readonly renameAt: (
    fromDir: OwnedFd,
    from: string,
    toDir: OwnedFd,
    to: string,
    options?: RenameOptions
  ) => Effect.Effect<void, UringError>
  readonly symlinkAt: (target: string, dir: OwnedFd, path: string) => Effect.Effect<void, UringError>
  readonly linkAt: (fromDir: OwnedFd, from: string, toDir: OwnedFd, to: string) => Effect.Effect<void, UringError>
}

/** A kernel error with the confined op's name and the caller's path. */
const labeled = (error: UringError, operation: string, path: string): UringError =>
  withContext(error, ({ fd }) => ({ operation, path, fd }))

/** Splits `path` into the parent to resolve beneath the root and the final name. */
const splitName = (
  operation: string,
  path: string,
  argument = "path"
): Effect.Effect<{ parent: string; name: string }, InvalidArgument> => {
  const valid = validate.path(operation, path, argument)
  if (Either.isLeft(valid)) return Effect.fail(valid.left)
  const trimmed = path.replace(/\/+$/, "")
  const slash = trimmed.lastIndexOf("/")
  const name = trimmed.slice(slash + 1)
  if (name === "" || name === "." || name === "..") {
    return Effect.fail(
      new InvalidArgument({ operation, argument, reason: `${JSON.stringify(path)} must end in a name, not "${name}"` })
    )
  }
  // An absolute path keeps its leading "/" as the parent, which the kernel then refuses.
  const parent = slash < 0 ? "." : slash === 0 ? "/" : trimmed.slice(0, slash)
  return Effect.succeed({ parent, name })
}

/** Builds a ConfinedDir over an opened root. @internal */
export const openDir = (
  primitives: ConfinementPrimitives,
  root: string
): Effect.Effect<ConfinedDir, UringError, Scope.Scope> =>
  Effect.gen(function*() {
    const rootFd = yield* primitives.openAt(AtFlags.AT_FDCWD, root, {
      flags: OpenFlags.O_PATH | OpenFlags.O_DIRECTORY
    }, "openDir")

    /**
     * openat2 beneath the root, with the escapes the kernel refuses as `Escape`: EXDEV, which a
     * lookup confined beneath a directory gives for `..` above it, an absolute path, a symlink
     * leading out and any `/proc` magic link. Only for this resolution: from a rename or link,
     * EXDEV is a real cross-device error. The `Escape` names the path the caller gave (`shown`),
     * not the parent of it resolved here.
     */
    const beneath = (operation: string, path: string, flags: number, mode: number, shown = path) =>
      Effect.mapError(
        primitives.openBeneath(operation, rootFd, path, flags, mode, ResolveFlags.RESOLVE_BENEATH),
        (error) =>
          "errno" in error && error.errno === EXDEV
            ? new Escape({ operation, path: shown, dir: root, errno: EXDEV, code: "EXDEV" })
            : labeled(error, operation, shown)
      )

    /** The parent directory of `path`, split as `split`, resolved beneath the root, and its last name. */
    const parentOf = (operation: string, path: string, split: { readonly parent: string; readonly name: string }) =>
      Effect.map(
        beneath(operation, split.parent, OpenFlags.O_PATH | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC, 0, path),
        (dir) => ({ dir, name: split.name })
      )

    /** Runs `f` on the parent directory of `path` (resolved beneath the root) and its last name. */
    const onName = <A>(operation: string, path: string, f: (dir: OwnedFd, name: string) => Effect.Effect<A, UringError>) =>
      Effect.scoped(
        Effect.flatMap(
          Effect.flatMap(splitName(operation, path), (split) => parentOf(operation, path, split)),
          ({ dir, name }) => f(dir, name)
        )
      )

    /** `onName` for two paths, both checked before either is resolved. */
    const onNames = <A>(
      operation: string,
      from: string,
      to: string,
      f: (fromDir: OwnedFd, fromName: string, toDir: OwnedFd, toName: string) => Effect.Effect<A, UringError>
    ) =>
      Effect.scoped(
        Effect.flatMap(
          Effect.zip(splitName(operation, from, "from"), splitName(operation, to, "to")),
          ([fromSplit, toSplit]) =>
            Effect.flatMap(
              Effect.zip(parentOf(operation, from, fromSplit), parentOf(operation, to, toSplit)),
              ([source, target]) => f(source.dir, source.name, target.dir, target.name)
            )
        )
      )

    /** The op's own errors as the caller made it: this operation, on the path it gave (not the last name alone). */
    const leaf = <A>(operation: string, path: string, op: Effect.Effect<A, UringError>) =>
      Effect.mapError(op, (error) => labeled(error, operation, path))

    const dir: ConfinedDir = {
      root,
      fd: rootFd,
      // Checked as `Uring.open` checks, inside the Effect (a `Refused` becomes its failure).
      open: (path, options) =>
        refusedAsFailure(Effect.suspend(() => {
          const { flags, mode } = openArguments("open", path, options)
          const creates = (flags & OpenFlags.O_CREAT) !== 0 || (flags & OpenFlags.O_TMPFILE) === OpenFlags.O_TMPFILE
          return beneath("open", path, flags, creates ? mode : 0)
        })),
      // Options are checked before any name is resolved, as the paths are.
      stat: (path, options) =>
        refusedAsFailure(Effect.suspend(() =>
          check(validate.options("stat", options, ["followSymlinks"])).followSymlinks === false
            ? onName("stat", path, (parent, name) => leaf("stat", path, primitives.statAt(parent, name, AtFlags.AT_SYMLINK_NOFOLLOW)))
            : Effect.scoped(Effect.flatMap(
              beneath("stat", path, OpenFlags.O_PATH | OpenFlags.O_CLOEXEC, 0),
              primitives.fstat
            ))
        )),
      mkdir: (path, mode) =>
        onName("mkdir", path, (parent, name) => leaf("mkdir", path, primitives.mkdirAt(parent, name, mode))),
      unlink: (path) => onName("unlink", path, (parent, name) => leaf("unlink", path, primitives.unlinkAt(parent, name))),
      rmdir: (path) =>
        onName("rmdir", path, (parent, name) => leaf("rmdir", path, primitives.unlinkAt(parent, name, { removeDir: true }))),
      rename: (from, to, options) =>
        refusedAsFailure(Effect.suspend(() => {
          renameFlagsOf("rename", options)
          return onNames("rename", from, to, (fromDir, fromName, toDir, toName) =>
            leaf("rename", from, primitives.renameAt(fromDir, fromName, toDir, toName, options)))
        })),
      symlink: (target, path) =>
        onName("symlink", path, (parent, name) => leaf("symlink", path, primitives.symlinkAt(target, parent, name))),
      link: (from, to) =>
        onNames("link", from, to, (fromDir, fromName, toDir, toName) =>
          leaf("link", from, primitives.linkAt(fromDir, fromName, toDir, toName)))
    }
    return dir
  })
