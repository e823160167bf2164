/**
 * `openDir`: path operations resolved beneath a root by the kernel (openat2 RESOLVE_BENEATH).
 *
 * @internal
 */
import { Effect, type Scope } from "effect"
import { Escape, InvalidArgument, type UringError } from "../errors/UringError.js"
import type { ConfinedDir } from "../services/ConfinedDir.js"
import { AtFlags, type OpenOptions, OpenFlags, ResolveFlags } from "../services/Flags.js"
import type { OwnedFd } from "../services/Handles.js"
import type { Metadata } from "../services/Metadata.js"
import type { RenameOptions } from "../services/Uring.js"
import { openArguments } from "./ops/handles.js"
import { refusedAsFailure } from "./ops/runner.js"

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
  readonly openAt: (dir: number, path: string, options: OpenOptions) => Effect.Effect<OwnedFd, UringError, Scope.Scope>
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

/** Splits `path` into the parent to resolve beneath the root and the final name. */
const splitName = (operation: string, path: string): Effect.Effect<{ parent: string; name: string }, InvalidArgument> => {
  const trimmed = path.replace(/\/+$/, "")
  const slash = trimmed.lastIndexOf("/")
  const name = trimmed.slice(slash + 1)
  if (name === "" || name === "." || name === "..") {
    return Effect.fail(
      new InvalidArgument({ operation, argument: "path", reason: `${JSON.stringify(path)} must end in a name, not "${name}"` })
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
    })

    /**
     * openat2 beneath the root, with the escapes the kernel refuses as `Escape`: EXDEV, which a
     * lookup confined beneath a directory gives for `..` above it, an absolute path, a symlink
     * leading out and any `/proc` magic link. Only for this resolution: from a rename or link,
     * EXDEV is a real cross-device error.
     */
    const beneath = (operation: string, path: string, flags: number, mode: number) =>
      Effect.catchIf(
        primitives.openBeneath(operation, rootFd, path, flags, mode, ResolveFlags.RESOLVE_BENEATH),
        (error) => "errno" in error && error.errno === EXDEV,
        () => Effect.fail(new Escape({ operation, path, dir: root, errno: EXDEV, code: "EXDEV" }))
      )

    const parentOf = (operation: string, path: string) =>
      Effect.flatMap(splitName(operation, path), ({ name, parent }) =>
        Effect.map(
          beneath(operation, parent, OpenFlags.O_PATH | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC, 0),
          (dir) => ({ dir, name })
        ))

    /** Runs `f` on the parent directory of `path` (resolved beneath the root) and its last name. */
    const onName = <A>(operation: string, path: string, f: (dir: OwnedFd, name: string) => Effect.Effect<A, UringError>) =>
      Effect.scoped(Effect.flatMap(parentOf(operation, path), ({ dir, name }) => f(dir, name)))

    const dir: ConfinedDir = {
      root,
      fd: rootFd,
      // Checked as `Uring.open` checks, inside the Effect (a `Refused` becomes its failure).
      open: (path, options = {}) =>
        refusedAsFailure(Effect.suspend(() => {
          const { flags, mode } = openArguments("open", path, options)
          const creates = (flags & OpenFlags.O_CREAT) !== 0 || (flags & OpenFlags.O_TMPFILE) === OpenFlags.O_TMPFILE
          return beneath("open", path, flags, creates ? mode : 0)
        })),
      stat: (path, options) =>
        options?.followSymlinks === false
          ? onName("stat", path, (parent, name) => primitives.statAt(parent, name, AtFlags.AT_SYMLINK_NOFOLLOW))
          : Effect.scoped(Effect.flatMap(
            beneath("stat", path, OpenFlags.O_PATH | OpenFlags.O_CLOEXEC, 0),
            primitives.fstat
          )),
      mkdir: (path, mode) => onName("mkdir", path, (parent, name) => primitives.mkdirAt(parent, name, mode)),
      unlink: (path) => onName("unlink", path, (parent, name) => primitives.unlinkAt(parent, name)),
      rmdir: (path) => onName("rmdir", path, (parent, name) => primitives.unlinkAt(parent, name, { removeDir: true })),
      rename: (from, to, options) =>
        onName("rename", from, (fromDir, fromName) =>
          onName("rename", to, (toDir, toName) => primitives.renameAt(fromDir, fromName, toDir, toName, options))),
      symlink: (target, path) => onName("symlink", path, (parent, name) => primitives.symlinkAt(target, parent, name)),
      link: (from, to) =>
        onName("link", from, (fromDir, fromName) =>
          onName("link", to, (toDir, toName) => primitives.linkAt(fromDir, fromName, toDir, toName)))
    }
    return dir
  })
