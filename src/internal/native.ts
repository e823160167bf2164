/**
 * The native binding's surface, as `crates/uring-core/src/binding/` exports it.
 *
 * Every submit method takes a caller-chosen op id (a positive int32) and returns a cancel token; submits
 * only queue, and `flush` hands them to the engine. The op's completion arrives as an `[opId, result]`
 * pair, either written into `flush`'s `out` array (completed inline) or later through the `onComplete`
 * callback given to the constructor, in an `Int32Array` of `[opId, result, opId, result, ...]` pairs. A result >= 0 is the syscall's return value
 * (bytes moved, a new fd, a registered-file slot index, 0); a result < 0 is `-errno`. Memory handed to a submit method (buffers, the statx output) is used in
 * place: the caller must keep it referenced until that op's completion arrives.
 *
 * Everything but the getters and `shutdown` is each ring's own function (raw N-API, bound to the ring
 * rather than to `this`: napi-rs's per-call bookkeeping for methods cost several times the call).
 *
 * Synchronous failures throw an `Error` whose message starts with one of `NativeErrorCode` and a colon.
 *
 * @internal
 */
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/** @internal */
export interface NativeRingOptions {
  readonly entries?: number
  readonly coopTaskrun?: boolean
  readonly iopoll?: boolean
  readonly sqpollIdleMs?: number
  readonly deferTaskrun?: boolean
  readonly registeredFiles?: number
  readonly shutdownTimeoutMs?: number
  /** Let `flush` submit and reap on the JS thread while the submission thread is idle (default true). */
  readonly inlineSubmit?: boolean
  /**
   * With `inlineSubmit`: the event loop watches the ring's eventfd and reaps on the JS thread,
   * where the completion thread otherwise reaps and hands over (default true).
   */
  readonly callerReaps?: boolean
  /** `readManyCached` shares a batch of 8 ranges or more with a helper thread (default true). */
  readonly batchHelper?: boolean
}

/** @internal */
export interface NativeRing {
  /** Size of the submission queue the kernel granted (after clamping). */
  readonly entries: number
  /** Capacity of the completion queue; the engine keeps slightly fewer ops than this in the kernel. */
  readonly cqEntries: number
  /** Slots in the sparse registered-file table. */
  readonly registeredCapacity: number
  /** Identity of this ring, unique in the process; used to reject a RegisteredFile of another ring. */
  readonly ringId: number

  /** Whether the event loop reaps this ring's completions (it polls the ring's eventfd). */
  readonly callerReaps: boolean
  /** Operations submitted and not yet completed. */
  readonly inFlight: number
  /** Registered-file slots in use. */
  readonly registeredInUse: number

  /** `fixed` = fd is a registered-file slot index. `exact`: loop until `buf` is full or end of file (a short result). */
  read(id: number, fd: number, fixed: boolean, buf: Uint8Array, offset: number, exact: boolean): number
  /** `all`: loop on short writes until `buf` is written; stops short only when the kernel writes 0 bytes. */
  write(id: number, fd: number, fixed: boolean, buf: Uint8Array, offset: number, all: boolean): number
  /**
   * A read on the calling thread of what the page cache holds (`preadv2` with `RWF_NOWAIT`): not
   * an op, done when this returns. The count (0 at end of file, short where the cached data ends)
   * or `-errno` (`-EAGAIN`: not cached). Not for `O_DIRECT` descriptors.
   */
  readCached(fd: number, buf: Uint8Array, offset: number): number
  /**
   * A whole file opened and read on this thread as far as the dentry and page caches hold it (a
   * regular file on ext4, XFS or Btrfs; `read_file_cached`), into all of `buf` but its last 4
   * bytes; those get the fd left open (little-endian int32), or -1 when the count read is the whole
   * file, closed. Left open: a file larger than the buffer, or cached in part; the caller reads on
   * and closes it. The count, or `-errno`: `-EAGAIN` when the ring must do it all (nothing is open).
   */
  readFileCached(dirfd: number, path: string, buf: Uint8Array): number
  /**
   * A `statx` of `path` on this thread from the dentry cache (`stat_cached`): resolved without
   * waiting, on a file system that keeps attributes in memory (ext4, XFS, Btrfs, tmpfs), into
   * `out` (a `struct statx`). `flags`: 0 or `AT_SYMLINK_NOFOLLOW`. 0, the lookup's `-errno`
   * (`-ENOENT`, ...), or `-EAGAIN` when the ring must do it.
   */
  statCached(dirfd: number, path: string, flags: number, mask: number, out: Uint8Array): number
  /**
   * One read per range (`ranges` = `[offset, length, ...]`) into consecutive slices of `buf`, queued
   * in one crossing as one op `id`: range `i`'s result (count or `-errno`) goes to `results[i]`, and
   * `id` completes once, after the last range, with the count of ranges it read. `buf` and `results` are the
   * kernel's and the engine's until then. All or none. Returns the op's cancel token (`cancel`
   * then cancels the ranges not finished yet). `unreadOnly`: only the ranges `readManyCached`
   * left to the ring; the other slots keep their results.
   */
  readMany(id: number, fd: number, fixed: boolean, buf: Uint8Array, ranges: Float64Array, results: Int32Array, unreadOnly: boolean): number
  /**
   * Reads on the calling thread what the page cache holds of each range (as `readMany` lays them
   * out in `buf`; `preadv2` with `RWF_NOWAIT`): range `i`'s count (all of it, or short at the end
   * of the file) goes to `results[i]`, or `UNREAD` (RingClient.ts) where the ring must read it
   * (not cached, cached in part, any error). Returns how many ranges are left to the ring: `readMany` with
   * `unreadOnly` reads just those. Not for `O_DIRECT` descriptors.
   */
  readManyCached(fd: number, buf: Uint8Array, ranges: Float64Array, results: Int32Array): number
  fsync(id: number, fd: number, fixed: boolean, datasync: boolean): number
  fallocate(id: number, fd: number, fixed: boolean, offset: number, length: number, mode: number): number
  fadvise(id: number, fd: number, fixed: boolean, offset: number, length: number, advice: number): number
  ftruncate(id: number, fd: number, fixed: boolean, length: number): number
  /** Statx of an open file (a registered slot is looked up by its raw fd). `out`: at least 256 bytes. */
  fstat(id: number, fd: number, fixed: boolean, mask: number, out: Uint8Array): number
  /** `out` must hold at least 256 bytes; the kernel writes a `struct statx` into it. */
  statx(id: number, dirfd: number, path: string, flags: number, mask: number, out: Uint8Array): number
  openat(id: number, dirfd: number, path: string, flags: number, mode: number): number
  /** openat2 with `resolve` (RESOLVE_* bits). */
  openat2(id: number, dirfd: number, path: string, flags: number, mode: number, resolve: number): number
  /** Closes `fd` through the ring; the ring takes it out of the fds it handed out once it accepts the close. */
  close(id: number, fd: number): number
  /**
   * This thread is about to close `fd` itself, not through a ring: takes it out of the fds the
   * rings handed out (a successful open's, the fd `readFile` or `readFileCached` left open), which
   * the env's teardown closes if JavaScript has not (a worker terminated with them open). Call it
   * before the close: from then on the number may name another file.
   */
  forgetFd(fd: number): void
  /**
   * Open, read from offset 0 into all of `buf` but its last 4 bytes until they are full or end of
   * file, close: one op. Result: bytes read. If the data part fills, the file stays open and its fd
   * is written (little-endian int32) into those 4 bytes: the caller's to read on from and close.
   */
  readFile(id: number, dirfd: number, path: string, buf: Uint8Array): number
  /** Opens `path` with O_PATH and closes it: one op; 0 if it exists and can be reached. */
  access(id: number, dirfd: number, path: string): number
  /** Opens with `flags` and `mode`, writes all of `buf` from offset 0, closes: one op; the result is the count written. */
  writeFile(id: number, dirfd: number, path: string, flags: number, mode: number, buf: Uint8Array): number
  renameat(id: number, oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, flags: number): number
  unlinkat(id: number, dirfd: number, path: string, flags: number): number
  mkdirat(id: number, dirfd: number, path: string, mode: number): number
  symlinkat(id: number, target: string, newDirfd: number, linkPath: string): number
  linkat(id: number, oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, flags: number): number
  /** Completion result = the slot index. Throws `ERR_URING_TABLE_FULL` when no slot is free. */
  registerFile(id: number, fd: number): number
  /** Completion result = 0; the slot is free for reuse after this completion. */
  unregisterFile(id: number, slot: number): number
  /**
   * Submits everything submitted since the last flush (submits only queue). While the submission
   * thread is idle, the JS thread submits and reaps itself: completions already there are written
   * to `out` as `[opId, result]` pairs and their count is returned; the rest arrive through
   * `onComplete`. An `out` shorter than one pair only wakes the submission thread. `settle`:
   * the turn's last flush before the event loop waits; completions it takes also reset the
   * ring's eventfd, so the loop is not woken for them (other flushes leave that to one wake-up).
   */
  flush(out: Int32Array, settle: boolean): number
  /** Ask the kernel to cancel the op behind `token`; harmless if it already completed. */
  cancel(token: number): void
  /** Keep the process alive while ops are pending (the client calls these on 0 <-> 1 transitions). */
  ref(): void
  unref(): void
  /** 1 once `shutdown` has run (or the env's teardown closed the ring), else 0. */
  isClosed(): number
  /**
   * Refuse new work, cancel everything in flight, wait for every completion (up to the shutdown
   * timeout), join both threads. `false`: ops were still in the kernel at the deadline; they
   * complete through `onComplete` whenever the kernel is done with them (cancelled, or with their
   * result), and the ring keeps this client (and the buffers lent to them) referenced for good.
   */
  shutdown(): boolean
}

/** @internal */
export interface NativeModule {
  readonly NativeRing: new (options: NativeRingOptions, onComplete: (batch: Int32Array) => void) => NativeRing
  /** Whether io_uring can be set up here; `0` or the `-errno` of `io_uring_setup`. */
  readonly probe: () => number
}

/** @internal */
export type NativeErrorCode =
  | "ERR_URING_CLOSED"
  | "ERR_URING_INVALID_ARGUMENT"
  | "ERR_URING_TABLE_FULL"
  | "ERR_URING_UNAVAILABLE"
  | "ERR_URING_INVALID_CONFIG"

/**
 * The code of an error the binding threw, if it is one of ours.
 *
 * @internal
 */
export const nativeErrorCode = (error: unknown): NativeErrorCode | undefined => {
  const match = error instanceof Error ? /^(ERR_URING_[A-Z_]+):/.exec(error.message) : null
  return match === null ? undefined : (match[1] as NativeErrorCode)
}

const packageRoot = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")

let cached: NativeModule | undefined

/**
 * Loads `native/uring_core.node`, built by `npm install` (`npm run build:native`).
 * Works from `src/` (tests, tsx) and from `dist/src/` (the compiled package).
 *
 * @internal
 */
export const load = (): NativeModule => {
  if (cached !== undefined) return cached
  const require = createRequire(import.meta.url)
  const candidates = [
    Path.join(packageRoot, "native", "uring_core.node"),
    Path.join(packageRoot, "..", "native", "uring_core.node")
  ]
  let lastError: unknown
  for (const candidate of candidates) {
    try {
      cached = require(candidate) as NativeModule
      return cached
    } catch (error) {
      lastError = error
    }
  }
  throw new Error(
    `effect-uring: the native addon is not built (looked in ${candidates.join(", ")}); run \`npm run build:native\``,
    { cause: lastError }
  )
}
