/**
 * The `Uring` service: every io_uring file operation as an `Effect` with a typed error channel,
 * backed by one ring owned by a scoped layer.
 *
 * @since 0.1.0
 */
import type { Config, ConfigError, Scope } from "effect"
import { Context, Effect, Layer } from "effect"
import type { InvalidConfig, RingUnavailable, UringError } from "../errors/UringError.js"
import { makeClient, makeOperations } from "../internal/uring.js"
import type { ConfinedDir } from "./ConfinedDir.js"
import type { Advice, OpenOptions } from "./Flags.js"
import type { DirLike, FileLike, OwnedFd, Position, RegisteredFile } from "./Handles.js"
import type { Metadata } from "./Metadata.js"
import { fromEnv, type UringConfigInput, validate } from "./UringConfig.js"

/**
 * Options of `rename` / `renameAt`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RenameOptions {
  /** Fail with `AlreadyExists` instead of replacing the target (RENAME_NOREPLACE). */
  readonly noReplace?: boolean
  /** Swap the two paths atomically; both must exist (RENAME_EXCHANGE). */
  readonly exchange?: boolean
}

/**
 * The operations of one ring. Every method validates its arguments first (an `InvalidArgument`
 * before anything is submitted); kernel failures arrive as the tagged errors of `UringError`.
 * An interrupted operation is cancelled in the kernel, and the interruption completes only once
 * the kernel has finished with the operation's memory. An open (or registration) that the kernel
 * finished before the cancel reached it is undone: its fd is closed (its slot released).
 *
 * @since 0.1.0
 * @category models
 */
export interface UringShape {
  /** Identity of the ring, unique in the process. */
  readonly ringId: number
  /**
   * Reads up to `length` bytes at `offset`; shorter only at end of file. Reads of up to 64 KiB
   * from an `OwnedFd` (or a slot registered from one) first copy what the page cache holds on
   * the calling thread, without a ring op or a fiber suspension (`UringConfig.cachedReads`), as
   * do `readInto` and `readExact`; the ring reads the rest.
   */
  readonly read: (file: FileLike, offset: Position, length: Position) => Effect.Effect<Uint8Array, UringError>
  /**
   * Reads several ranges in one crossing into native code (one kernel read each, queued under one
   * lock): the batch entry point for many small reads. Succeeds with one array per range, in
   * order, each shorter than asked only at end of file; fails with the first range's error.
   * From an `OwnedFd` (or a slot registered from one), the ranges the page cache holds are read
   * on the calling thread first, in that same crossing (`UringConfig.cachedReads`; from 8 ranges
   * on, a helper thread of the ring reads beside it), and the ring reads only the rest. A batch done there, or one the kernel finishes inside the submit call,
   * returns without suspending the fiber. With `buffer`, the ranges are read into consecutive slices of it (reuse one across batches
   * to avoid an allocation per call); otherwise a new one is allocated. Each slice is a plain
   * `Uint8Array` view over that buffer's memory, even when `buffer` is a Node `Buffer`. A slice at
   * the same place and of the same length as one an earlier batch returned over the same `buffer`
   * is that same view object (it shows the same bytes either way); the returned array is new.
   */
  readonly readBatch: (
    file: FileLike,
    ranges: ReadonlyArray<{ readonly offset: Position; readonly length: Position }>,
    options?: { readonly buffer?: Uint8Array }
  ) => Effect.Effect<Array<Uint8Array>, UringError>
  /**
   * Reads a whole file: open, read and close run as one op inside the engine, so a small file
   * costs one crossing. With `cachedReads` (the default), a regular file on ext4, XFS or Btrfs
   * whose path the dentry cache and whose first bytes the page cache hold is opened and read on
   * the calling thread instead, with no op and no fiber suspension. `sizeHint` sizes the first
   * read (default 16 KiB). A file that fills it (or, read on the calling thread, was cached only
   * in part) stays open, and the rest is read from that fd (sized by its stat, or doubling for pipes and
   * devices), so a FIFO's or stdin's bytes are read once, in order. Files over 2 GiB fail with
   * `InvalidArgument`.
   */
  readonly readFile: (path: string, options?: { readonly sizeHint?: number }) => Effect.Effect<Uint8Array, UringError>
  /**
   * Writes `data` as a file's content: open (flag `"w"` unless `options` says otherwise: created
   * with `mode`, default `0o666`, and truncated), write it all and close run as one op inside the
   * engine. A write the kernel stops short fails with `WriteZero`; an error from close is the
   * write's, since the data may not have reached the file. Data over 2 GiB is written in pieces.
   * A failure (`NoSpace`, ...) may come after part of the data reached the file, as with Node's;
   * the one op does not say how much (data over 2 GiB: its `writeAll`'s errors do, in `written`).
   */
  readonly writeFile: (path: string, data: Uint8Array, options?: OpenOptions) => Effect.Effect<void, UringError>
  /** Reads into `buffer` at `offset`; succeeds with the number of bytes read. */
  readonly readInto: (file: FileLike, offset: Position, buffer: Uint8Array) => Effect.Effect<number, UringError>
  /** Reads exactly `length` bytes, or fails with `UnexpectedEof`. */
  readonly readExact: (file: FileLike, offset: Position, length: Position) => Effect.Effect<Uint8Array, UringError>
  /** One write at `offset`; succeeds with the number of bytes written (possibly short). */
  readonly write: (file: FileLike, offset: Position, data: Uint8Array) => Effect.Effect<number, UringError>
  /**
   * Writes all of `data` at `offset`, looping on short writes; `WriteZero` if the kernel writes
   * nothing. A kernel error (`NoSpace`, ...) fails it as it comes, possibly after some of the
   * data was written: its `written` says how many bytes of `data` are in the file from `offset`
   * on (0 when the first write failed), so the caller can resume after them or cut them off.
   */
  readonly writeAll: (file: FileLike, offset: Position, data: Uint8Array) => Effect.Effect<void, UringError>
  readonly fsync: (file: FileLike) => Effect.Effect<void, UringError>
  readonly fdatasync: (file: FileLike) => Effect.Effect<void, UringError>
  /**
   * Statx of an open file. A registered file is looked up by its raw fd, so it is refused once
   * the `OwnedFd` it was registered from is closed (the number may name another file by then).
   */
  readonly fstat: (file: FileLike) => Effect.Effect<Metadata, UringError>
  /** `mode`: `FallocateMode` bits (0 allocates and extends). */
  readonly fallocate: (
    file: FileLike,
    offset: Position,
    length: Position,
    mode?: number
  ) => Effect.Effect<void, UringError>
  /**
   * posix_fadvise: `length` 0 means to the end of the file. A range longer than io_uring's 32-bit
   * length is advised in pieces; one that reaches the end of the file (found by a stat) is one op
   * to the end, whatever its length.
   */
  readonly fadvise: (
    file: FileLike,
    offset: Position,
    length: Position,
    advice: Advice | number
  ) => Effect.Effect<void, UringError>
  readonly ftruncate: (file: FileLike, length: Position) => Effect.Effect<void, UringError>
  /**
   * Opens `path`; the fd is closed through the ring when the scope ends. While a FUSE, NFS or
   * like file system is mounted, an open that may reach it runs on a kernel worker, so a daemon or
   * server slow to answer never holds the event loop (the README's "While a FUSE, NFS or like file
   * system is mounted, opens that may reach it go to kernel workers").
   */
  readonly open: (path: string, options?: OpenOptions) => Effect.Effect<OwnedFd, UringError, Scope.Scope>
  readonly openAt: (dir: DirLike, path: string, options?: OpenOptions) => Effect.Effect<OwnedFd, UringError, Scope.Scope>
  /**
   * Opens `path`, runs `use` with it and closes it when `use` ends — success, failure or
   * interruption. The same guarantee as `Effect.scoped(open(...))` without building a Scope, which
   * costs more than the open itself on hot paths.
   */
  readonly withFile: <A, E, R>(
    path: string,
    options: OpenOptions,
    use: (file: OwnedFd) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | UringError, R>
  /**
   * Succeeds if `path` exists and every directory on the way can be searched (access(2) with
   * F_OK, as the effective user): an O_PATH open and its close, one op, so a path in the dentry
   * cache is answered without a kernel worker. The file itself is not opened (no read permission
   * needed, a FIFO does not block); a dangling symlink is `NotFound`.
   */
  readonly access: (path: string) => Effect.Effect<void, UringError>
  /** Statx of a path; `followSymlinks: false` describes a link itself. */
  readonly stat: (path: string, options?: { readonly followSymlinks?: boolean }) => Effect.Effect<Metadata, UringError>
  /**
   * Statx relative to `dir` with `AtFlags` (`AT_SYMLINK_NOFOLLOW`, ...); with `AT_EMPTY_PATH`, an
   * empty `path` describes `dir` itself.
   */
  readonly statAt: (dir: DirLike, path: string, flags?: number) => Effect.Effect<Metadata, UringError>
  /**
   * Closes now and reports close errors; the handle's scope then does nothing. Ring ops still in
   * flight on an `OwnedFd` (another fiber's) are cancelled first, and the close waits for their
   * completions: the kernel may look its number up only when a worker runs such an op, and must
   * not find another file under it by then. An op already running may finish; one not yet issued,
   * or blocked (a read of a pipe no one writes), fails with `Canceled`, as does any read of a
   * regular file it cancelled, whatever count the kernel gives back (after a cancel that count is
   * not the file's). The same holds for the close at the end of its scope and the release of a
   * `RegisteredFile`.
   */
  readonly close: (fd: OwnedFd | number) => Effect.Effect<void, UringError>
  readonly rename: (from: string, to: string, options?: RenameOptions) => Effect.Effect<void, UringError>
  readonly renameAt: (
    fromDir: DirLike,
    from: string,
    toDir: DirLike,
    to: string,
    options?: RenameOptions
  ) => Effect.Effect<void, UringError>
  readonly unlink: (path: string) => Effect.Effect<void, UringError>
  readonly unlinkAt: (
    dir: DirLike,
    path: string,
    options?: { readonly removeDir?: boolean }
  ) => Effect.Effect<void, UringError>
  readonly rmdir: (path: string) => Effect.Effect<void, UringError>
  /** `mode` defaults to 0o777 (less the umask). */
  readonly mkdir: (path: string, mode?: number) => Effect.Effect<void, UringError>
  readonly mkdirAt: (dir: DirLike, path: string, mode?: number) => Effect.Effect<void, UringError>
  /** Creates `path` as a symbolic link to `target`. */
  readonly symlink: (target: string, path: string) => Effect.Effect<void, UringError>
  readonly symlinkAt: (target: string, dir: DirLike, path: string) => Effect.Effect<void, UringError>
  /** Creates `to` as a hard link to `from`. */
  readonly link: (from: string, to: string) => Effect.Effect<void, UringError>
  readonly linkAt: (
    fromDir: DirLike,
    from: string,
    toDir: DirLike,
    to: string,
    options?: { readonly followSymlinks?: boolean }
  ) => Effect.Effect<void, UringError>
  /**
   * Opens `root` as a confined directory: its path operations resolve beneath it only, checked by
   * the kernel (`openat2` with `RESOLVE_BENEATH`); escapes fail with `Escape`.
   */
  readonly openDir: (root: string) => Effect.Effect<ConfinedDir, UringError, Scope.Scope>
  /** Registers an fd with the ring; the slot is released (and reused later) when the scope ends. */
  readonly register: (file: OwnedFd | number) => Effect.Effect<RegisteredFile, UringError, Scope.Scope>
}

/**
 * Creates a ring with validated settings and returns its operations; the ring is closed when the
 * scope ends, after every in-flight operation completed or was cancelled.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: UringConfigInput = {}
): Effect.Effect<UringShape, InvalidConfig | RingUnavailable, Scope.Scope> =>
  validate(config).pipe(
    Effect.flatMap((valid) => Effect.map(makeClient(valid), (client) => makeOperations(client, valid)))
  )

/**
 * The ring service. Build it with `Uring.layer(config?)` or `Uring.layerConfig(config?)`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Uring } from "effect-uring"
 *
 * const program = Effect.gen(function*() {
 *   const uring = yield* Uring
 *   return yield* uring.stat("/etc/hostname")
 * })
 * Effect.runPromise(program.pipe(Effect.provide(Uring.layer())))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Uring extends Context.Tag("effect-uring/Uring")<Uring, UringShape>() {
  /**
   * A ring with the given settings (defaults: 16384 entries, 4096 registered-file slots),
   * created when the layer is built and closed when its scope ends.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer = (config: UringConfigInput = {}): Layer.Layer<Uring, InvalidConfig | RingUnavailable> =>
    Layer.scoped(Uring, make(config))

  /**
   * A ring whose settings come from Effect `Config`; by default the environment
   * (`URING_RING_SIZE`, `URING_REGISTERED_FILES`, ... see `uringConfigFromEnv`).
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerConfig = (
    config: Config.Config<UringConfigInput> = fromEnv
  ): Layer.Layer<Uring, ConfigError.ConfigError | InvalidConfig | RingUnavailable> =>
    Layer.scoped(Uring, Effect.flatMap(config, make))
}
