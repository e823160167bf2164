/**
 * Scoped handles: an fd the ring opened (`OwnedFd`) and a slot of the ring's registered-file
 * table (`RegisteredFile`). A `RegisteredFile` of another ring or one already released, and a
 * closed `OwnedFd`, are refused with a typed error before anything is submitted; an open `OwnedFd`
 * works with any ring of the process.
 *
 * @since 0.1.0
 */
import type { Submitted } from "../internal/RingClient.js"

/**
 * An open file descriptor owned by a scope: closed through the ring when the scope ends (with
 * `close(2)` on the calling thread if the ring is closed by then), or earlier with `Uring.close`
 * (which then sees close errors).
 *
 * @since 0.1.0
 * @category models
 */
export class OwnedFd {
  /** @internal */
  closed = false
  /** @internal Opened with `O_DIRECT`: reads never try the page cache on the calling thread. */
  direct = false
  /**
   * @internal Ring ops in flight that name this fd by number (the kernel may look the number up
   * only when a worker runs the op), and what waits for them to end before closing it.
   */
  inflight: Set<Submitted> | undefined = undefined
  /** @internal */
  drained: Array<() => void> | undefined = undefined
  constructor(
    /** The raw descriptor. Valid until the handle is closed. */
    readonly fd: number,
    /** The path it was opened with, for error messages. */
    readonly path: string,
    /** The ring that opened it. */
    readonly ringId: number
  ) {}

  /**
   * Whether the descriptor has been closed (by its scope or by `Uring.close`).
   *
   * @since 0.1.0
   */
  get isClosed(): boolean {
    return this.closed
  }

  toString(): string {
    return `OwnedFd(${this.fd}, ${JSON.stringify(this.path)}${this.closed ? ", closed" : ""})`
  }
}

/**
 * A file in a slot of one ring's sparse registered-file table (filled by an
 * `IORING_OP_FILES_UPDATE` entry): ring operations on it skip the
 * kernel's fd lookup. The slot is released, and later reused, when its scope ends.
 *
 * @since 0.1.0
 * @category models
 */
export class RegisteredFile {
  /** @internal */
  released = false
  /**
   * @internal The handle it was registered from: while that is open, its raw fd is this file
   * (a plain number registered may be closed and reused by its owner while the slot lives on).
   */
  source: OwnedFd | undefined = undefined
  /** @internal Ring ops in flight on this slot, and what waits for them to end before releasing it. */
  inflight: Set<Submitted> | undefined = undefined
  /** @internal */
  drained: Array<() => void> | undefined = undefined
  constructor(
    /** Index in the ring's registered-file table. */
    readonly slot: number,
    /** The raw descriptor behind the slot (statx and the `*at` calls use it). */
    readonly fd: number,
    /** The ring whose table holds it. */
    readonly ringId: number
  ) {}

  /**
   * Whether the slot has been released.
   *
   * @since 0.1.0
   */
  get isReleased(): boolean {
    return this.released
  }

  toString(): string {
    return `RegisteredFile(slot ${this.slot}, fd ${this.fd}${this.released ? ", released" : ""})`
  }
}

/**
 * What an fd-based operation accepts: an `OwnedFd`, a `RegisteredFile`, or a plain numeric fd
 * the caller manages. Reads and writes of a file on FUSE are copied off the ring, whichever form
 * names it (io_uring gets them wrong: see the README's "Reads and writes of FUSE files go around
 * io_uring"); for a plain number the ring did not open, the engine asks which file system it is
 * on at each read or write through the ring (one syscall), so an `OwnedFd` or a `RegisteredFile`
 * is the cheaper form for a file read many times.
 *
 * @since 0.1.0
 * @category models
 */
export type FileLike = OwnedFd | RegisteredFile | number

/**
 * A directory for the `*At` operations: an open directory fd, or `AT_FDCWD` (-100) for the
 * current working directory.
 *
 * @since 0.1.0
 * @category models
 */
export type DirLike = OwnedFd | number

/**
 * An offset or length: a non-negative integer as a number or a bigint.
 *
 * @since 0.1.0
 * @category models
 */
export type Position = number | bigint
