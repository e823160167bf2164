/**
 * Ops that create or end a handle: open (as a scoped `OwnedFd`, or for the length of a `use`),
 * `openat2` beneath a directory, close, `access`, and file registration (a scoped `RegisteredFile`).
 *
 * @internal
 */
import { Effect, type Scope } from "effect"
import type { UringError } from "../../errors/UringError.js"
import { AtFlags, type OpenOptions, OpenFlags, openFlagsOf } from "../../services/Flags.js"
import { type DirLike, OwnedFd, RegisteredFile } from "../../services/Handles.js"
import * as validate from "../validate.js"
import { check, type Runner } from "./runner.js"

/** What open(2) takes, validated (throws `Refused`): the path, the `O_*` flags and a created file's mode. */
export const openArguments = (operation: string, path: string, options: OpenOptions) => {
  const mode = check(validate.mode(operation, options.mode ?? 0o666))
  if (options.flag !== undefined) check(validate.openFlag(operation, options.flag))
  return { path: check(validate.path(operation, path)), flags: openFlagsOf(options), mode }
}

/** @internal */
export const makeHandles = (runner: Runner) => {
  const { ringId, fdOf, rawFd, run } = runner

  const owned = (fd: number, path: string, flags: number): OwnedFd => {
    const handle = new OwnedFd(fd, path, ringId)
    handle.direct = (flags & OpenFlags.O_DIRECT) !== 0
    return handle
  }

  const openRaw = (operation: string, dir: DirLike, path: string, options: OpenOptions) =>
    run(operation, path, (native, id) => {
      const open = openArguments(operation, path, options)
      return native.openat(id, rawFd(operation, dir, "dir"), open.path, open.flags, open.mode)
    }).pipe(Effect.map((fd) => owned(fd, path, openFlagsOf(options))))

  /**
   * Open with O_PATH and close, one engine op, flushed at once (`now`): a path in the dentry cache
   * completes inline, often before the fiber would suspend, where statx always waits for a kernel worker.
   */
  const access = (path: string): Effect.Effect<void, UringError> =>
    run("access", path, (native, id) => native.access(id, AtFlags.AT_FDCWD, check(validate.path("access", path))), undefined, 0)
      .pipe(Effect.asVoid)

  const closeFd = (fd: OwnedFd | number): Effect.Effect<void, UringError> =>
    run("close", fd, (native, id) => {
      const raw = fd instanceof OwnedFd ? fdOf("close", fd) : check(validate.fd("close", fd))
      const token = native.close(id, raw)
      // Marked only once submitted: a refused close leaves the handle usable.
      if (fd instanceof OwnedFd) fd.closed = true
      return token
    }, undefined, 0).pipe(Effect.asVoid)

  /** The finalizer of every fd a scope or `withFile` owns: close it unless the caller already did. */
  const releaseFd = (owned: OwnedFd): Effect.Effect<void> => owned.closed ? Effect.void : Effect.ignore(closeFd(owned))

  const openAt = (dir: DirLike, path: string, options: OpenOptions = {}): Effect.Effect<OwnedFd, UringError, Scope.Scope> =>
    Effect.acquireRelease(
      openRaw("openAt", dir, path, options),
      releaseFd
    )

  /** `use` with an fd opened for it, closed when `use` ends however it ends; no Scope involved. */
  const withFile = <A, E, R>(
    path: string,
    options: OpenOptions,
    use: (file: OwnedFd) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | UringError, R> =>
    Effect.acquireUseRelease(
      openRaw("withFile", AtFlags.AT_FDCWD, path, options),
      use,
      releaseFd
    )

  const register = (file: OwnedFd | number): Effect.Effect<RegisteredFile, UringError, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        let raw = -1
        return run("register", file, (native, id) => {
          raw = file instanceof OwnedFd ? fdOf("register", file) : check(validate.fd("register", file))
          return native.registerFile(id, raw)
        }).pipe(Effect.map((slot) => {
          const registered = new RegisteredFile(slot, raw, ringId)
          if (file instanceof OwnedFd) registered.source = file
          return registered
        }))
      }),
      (registered) =>
        Effect.suspend(() => {
          if (registered.released) return Effect.void
          registered.released = true
          return Effect.ignore(run("unregister", registered.fd, (native, id) =>
            native.unregisterFile(id, registered.slot)))
        })
    )

  const openBeneath = (operation: string, dir: OwnedFd, path: string, flags: number, mode: number, resolve: number) =>
    Effect.acquireRelease(
      run(operation, path, (native, id) =>
        native.openat2(id, rawFd(operation, dir, "dir"), check(validate.path(operation, path)), flags, mode, resolve)).pipe(
          Effect.map((fd) => owned(fd, path, flags))
        ),
      releaseFd
    )

  return { access, closeFd, openAt, withFile, register, openBeneath }
}
