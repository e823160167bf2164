/**
 * Ops that create or end a handle: open (as a scoped `OwnedFd`, or for the length of a `use`),
 * `openat2` beneath a directory, close, `access`, and file registration (a scoped `RegisteredFile`).
 *
 * @internal
 */
import { Effect, type Scope } from "effect"
import * as Fs from "node:fs"
import { fromErrno, InvalidArgument, type UringError } from "../../errors/UringError.js"
import { AtFlags, type OpenOptions, OpenFlags, openFlagsOf, openSwitches } from "../../services/Flags.js"
import { type DirLike, OwnedFd, RegisteredFile } from "../../services/Handles.js"
import * as validate from "../validate.js"
import { type Acquiring, check, contextOf, inUse, quiesced, Refused, refusedAsFailure, type Runner } from "./runner.js"

/** For a Node error without an errno (none is expected from close(2)). */
const EIO = 5

/** The caller's interruptibility, as `Effect.uninterruptibleMask` gives it. */
type Restore = Acquiring["restore"]

/** What open(2) takes, validated (throws `Refused`): the path, the `O_*` flags and a created file's mode. */
export const openArguments = (operation: string, path: string, options: OpenOptions | undefined) => {
  const valid = check(validate.options(operation, options, openSwitches))
  const mode = check(validate.mode(operation, valid.mode ?? 0o666))
  if (valid.flag !== undefined) check(validate.openFlag(operation, valid.flag))
  if (valid.flags !== undefined) check(validate.openBits(operation, valid.flags))
  return { path: check(validate.path(operation, path)), flags: openFlagsOf(valid), mode }
}

/** @internal */
export const makeHandles = (runner: Runner, iopoll: boolean) => {
  const { client, ringId, fdOf, rawFd, run, runAcquiring } = runner

  const owned = (fd: number, path: string, flags: number): OwnedFd => {
    const handle = new OwnedFd(fd, path, ringId)
    handle.direct = (flags & OpenFlags.O_DIRECT) !== 0
    return handle
  }

  /** An open's wait interruptible as its caller is (`restore`); an fd it opened anyway is closed. */
  const opening = (path: string, restore: Restore): Acquiring => ({
    restore,
    release: (fd) => releaseFd(owned(fd, path, 0))
  })

  /** Arguments checked before the op is built, so the handle knows the flags it was opened with. */
  const openRaw = (operation: string, dir: DirLike, path: string, options: OpenOptions | undefined, restore: Restore) =>
    Effect.suspend(() => {
      const open = openArguments(operation, path, options)
      return runAcquiring(
        operation,
        path,
        (native, id) => native.openat(id, rawFd(operation, dir, "dir"), open.path, open.flags, open.mode),
        opening(path, restore)
      ).pipe(Effect.map((fd) => owned(fd, path, open.flags)))
    }).pipe(refusedAsFailure)

  /**
   * Open with O_PATH and close, one engine op, flushed at once (`now`): a path in the dentry cache
   * completes inline, often before the fiber would suspend, where statx always waits for a kernel worker.
   */
  const access = (path: string): Effect.Effect<void, UringError> =>
    run("access", path, (native, id) => native.access(id, AtFlags.AT_FDCWD, check(validate.path("access", path))), undefined, 0)
      .pipe(Effect.asVoid)

  const closeRaw = (fd: OwnedFd | number) => fd instanceof OwnedFd ? fdOf("close", fd) : check(validate.fd("close", fd))

  /**
   * Thrown by a close's submit while ring ops in flight name the `OwnedFd`: a kernel worker may
   * look its number up only later, and must not find another file under it. The close cancels
   * them, waits for their completions (`quiesced`) and tries again; checked in the submit itself,
   * so no op can slip in between the check and the close.
   */
  const busy = new Refused(new InvalidArgument({ operation: "close", argument: "fd", reason: "ops in flight name it" }))
  const whenIdle = (
    fd: OwnedFd | number,
    close: (fd: OwnedFd | number) => Effect.Effect<void, UringError>
  ): Effect.Effect<void, UringError> =>
    Effect.catchIf(close(fd), (error) => error === busy.error, () =>
      Effect.zipRight(quiesced(fd as OwnedFd), whenIdle(fd, close)))
  const checkIdle = (fd: OwnedFd | number) => {
    if (fd instanceof OwnedFd && !fd.closed && inUse(fd)) throw busy
  }

  const closeOnRing = (fd: OwnedFd | number): Effect.Effect<void, UringError> =>
    whenIdle(fd, (fd) =>
      run("close", fd, (native, id) => {
        checkIdle(fd)
        const token = native.close(id, closeRaw(fd))
        // Marked only once submitted: a refused close leaves the handle usable.
        if (fd instanceof OwnedFd) fd.closed = true
        return token
      }, undefined, 0).pipe(Effect.asVoid))

  /**
   * An IOPOLL ring's kernel refuses IORING_OP_CLOSE, which would leave every fd it is asked to
   * close (a scope's too) open: those go to close(2) on libuv's pool. Taken out of the fds the
   * rings handed out first, so a worker's teardown never closes the number again.
   */
  const closeOffRing = (fd: OwnedFd | number): Effect.Effect<void, UringError> =>
    whenIdle(fd, (fd) => refusedAsFailure(Effect.suspend(() => {
      checkIdle(fd)
      const raw = closeRaw(fd)
      if (fd instanceof OwnedFd) fd.closed = true
      client.forgetFd(raw)
      return Effect.async<void, UringError>((resume) =>
        Fs.close(raw, (error) =>
          resume(
            error === null
              ? Effect.void
              : Effect.fail(fromErrno(error.errno ?? EIO, contextOf("close", fd)))
          ))
      )
    })))

  const closeFd = iopoll ? closeOffRing : closeOnRing

  /**
   * The finalizer of every fd a scope or `withFile` owns: close it unless the caller already did.
   * A scope may outlive the ring: then the close never reached it (`closed` still unset; one the
   * ring took and cancelled at shutdown is the engine's to close), so it is closed here, after
   * taking it out of the fds the rings handed out (a ring closed uncleanly closes those at the
   * worker's teardown).
   */
  const releaseFd = (owned: OwnedFd): Effect.Effect<void> =>
    owned.closed ? Effect.void : closeFd(owned).pipe(
      Effect.catchTag("RingClosed", () =>
        owned.closed ? Effect.void : Effect.try(() => {
          owned.closed = true
          client.forgetFd(owned.fd)
          Fs.closeSync(owned.fd)
        })),
      Effect.ignore
    )

  /**
   * `acquire` with its kernel wait as interruptible as the caller (an open may wait on a FIFO for
   * ever), and what it gives released when the scope ends. Like `acquireRelease`, with the
   * finalizer added before an interruption can come in.
   */
  const acquireScoped = <A>(
    acquire: (restore: Restore) => Effect.Effect<A, UringError>,
    release: (a: A) => Effect.Effect<void>
  ): Effect.Effect<A, UringError, Scope.Scope> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.tap(acquire(restore), (a) => Effect.addFinalizer(() => release(a)))
    )

  const openAt = (
    dir: DirLike,
    path: string,
    options?: OpenOptions,
    operation = "openAt"
  ): Effect.Effect<OwnedFd, UringError, Scope.Scope> =>
    acquireScoped((restore) => openRaw(operation, dir, path, options, restore), releaseFd)

  /**
   * `use` with an fd opened for it, closed when `use` ends however it ends; no Scope involved.
   * A `use` that closes the file itself (`closeFd`, to see the close's error) leaves nothing to do.
   */
  const withFile = <A, E, R>(
    path: string,
    options: OpenOptions | undefined,
    use: (file: OwnedFd) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | UringError, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.acquireUseRelease(
        openRaw("withFile", AtFlags.AT_FDCWD, path, options, restore),
        (file) => restore(use(file)),
        releaseFd
      )
    )

  const unregister = (slot: number, fd: number) =>
    Effect.ignore(run("unregister", fd, (native, id) => native.unregisterFile(id, slot)))

  const register = (file: OwnedFd | number): Effect.Effect<RegisteredFile, UringError, Scope.Scope> =>
    acquireScoped(
      (restore) =>
        Effect.suspend(() => {
          let raw = -1
          return runAcquiring("register", file, (native, id) => {
            raw = file instanceof OwnedFd ? fdOf("register", file) : check(validate.fd("register", file))
            return native.registerFile(id, raw)
          }, { restore, release: (slot) => unregister(slot, raw) }).pipe(Effect.map((slot) => {
            const registered = new RegisteredFile(slot, raw, ringId)
            if (file instanceof OwnedFd) registered.source = file
            return registered
          }))
        }),
      (registered) =>
        Effect.suspend(() => {
          if (registered.released) return Effect.void
          // Refuses new ops on the slot; the kernel may look it up for ops in flight only when a
          // worker runs them, and must not find another file in it by then.
          registered.released = true
          return Effect.zipRight(quiesced(registered), unregister(registered.slot, registered.fd))
        })
    )

  const openBeneath = (operation: string, dir: OwnedFd, path: string, flags: number, mode: number, resolve: number) =>
    acquireScoped(
      (restore) =>
        runAcquiring(
          operation,
          path,
          (native, id) =>
            native.openat2(id, rawFd(operation, dir, "dir"), check(validate.path(operation, path)), flags, mode, resolve),
          opening(path, restore)
        ).pipe(Effect.map((fd) => owned(fd, path, flags))),
      releaseFd
    )

  return { access, closeFd, releaseFd, openAt, withFile, register, openBeneath }
}
