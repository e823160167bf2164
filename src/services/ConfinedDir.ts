/**
 * A directory handle whose path operations resolve beneath it only.
 *
 * @since 0.1.0
 */
import type { Effect, Scope } from "effect"
import type { UringError } from "../errors/UringError.js"
import type { OpenOptions } from "./Flags.js"
import type { OwnedFd } from "./Handles.js"
import type { Metadata } from "./Metadata.js"
import type { RenameOptions } from "./Uring.js"

/**
 * Path operations confined to one directory. Every path is relative to the root and is resolved
 * by the kernel with `openat2(RESOLVE_BENEATH)`, which also refuses magic links (`/proc/self/fd/N`):
 * `..` above the root, an absolute path, or a symbolic link that leads outside fails with `Escape` — checked by the
 * kernel during resolution, not by string tests, so a directory swapped for a symlink mid-way
 * cannot redirect an operation.
 *
 * Operations on a name (`mkdir`, `unlink`, `rmdir`, `rename`, `symlink`, `link`, and `stat`
 * without following) resolve the parent directory beneath the root to a descriptor first and then
 * act on the last component relative to it, which must be a plain name (not `.` or `..`).
 *
 * Operations keep the credentials the ring was created with (see the README).
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfinedDir {
  /** The root as given to `openDir`. */
  readonly root: string
  /** The root's descriptor (`O_PATH`), closed when the scope of `openDir` ends. */
  readonly fd: OwnedFd
  readonly open: (path: string, options?: OpenOptions) => Effect.Effect<OwnedFd, UringError, Scope.Scope>
  readonly stat: (path: string, options?: { readonly followSymlinks?: boolean }) => Effect.Effect<Metadata, UringError>
  readonly mkdir: (path: string, mode?: number) => Effect.Effect<void, UringError>
  readonly unlink: (path: string) => Effect.Effect<void, UringError>
  readonly rmdir: (path: string) => Effect.Effect<void, UringError>
  readonly rename: (from: string, to: string, options?: RenameOptions) => Effect.Effect<void, UringError>
  /** Creates `path` as a symbolic link to `target` (stored as given; following it is confined too). */
  readonly symlink: (target: string, path: string) => Effect.Effect<void, UringError>
  /** Creates `to` as a hard link to `from` (the link itself when `from` is a symbolic link). */
  readonly link: (from: string, to: string) => Effect.Effect<void, UringError>
}
