/**
 * The platform's `File` on a ring: a cursor kept in JS (as Node's implementation keeps it) over positional ring reads
 * and writes, plus the ring's extras.
 *
 * @internal
 */
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Option } from "effect"
import { Buffer } from "node:buffer"
import * as validate from "../../internal/validate.js"
import { type Advice, FallocateMode } from "../../services/Flags.js"
import type { OwnedFd } from "../../services/Handles.js"
import type { UringShape } from "../../services/Uring.js"
import type { UringFile } from "../UringFileSystem.js"
import { systemError, toPlatformError } from "./errors.js"
import { toInfo } from "./info.js"

/**
 * Whether `bytes` lives in memory the ring refuses (the `Uring` service's rule: another thread, or a resize, could
 * change it while the kernel uses it) but Node's FileSystem takes: a SharedArrayBuffer or a resizable ArrayBuffer.
 * This layer moves such data through a copy of its own instead.
 *
 * @internal
 */
export const isSharedOrResizable = (bytes: Uint8Array): boolean => {
  const backing = validate.backingOf(bytes)
  return backing !== undefined && (validate.isShared(backing) || validate.isResizable(backing))
}

/** Data to write as memory the ring takes: `bytes` itself, or a copy (see `isSharedOrResizable`). @internal */
export const ringData = (bytes: Uint8Array): Uint8Array => isSharedOrResizable(bytes) ? new Uint8Array(bytes) : bytes

/** A read into `buffer` through memory the ring takes: a copy's bytes copied into `buffer` after it. @internal */
const intoRingMemory = <E>(
  buffer: Uint8Array,
  read: (into: Uint8Array) => Effect.Effect<number, E>
): Effect.Effect<number, E> => {
  if (!isSharedOrResizable(buffer)) return read(buffer)
  const into = new Uint8Array(buffer.length)
  return Effect.map(read(into), (n) => {
    buffer.set(into.subarray(0, n))
    return n
  })
}

/** A length for ftruncate as Node takes it: none is 0, and so is a negative one (Node's `Math.max(0, len)`). @internal */
export const truncatedLength = (length: FileSystem.SizeInput | undefined): number =>
  length === undefined ? 0 : Math.max(0, Number(length))

/** A Buffer view over ring-read bytes, without a copy (Node's File hands out Buffers too). @internal */
export const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/**
 * The bytes of a read as a Buffer: a view when the read filled its buffer, a copy of the part read when it was short
 * (as Node's readAlloc does), so a short read does not keep the whole requested size alive. The copy has a backing
 * store of its own (`allocUnsafeSlow`, as Node's), not a slice of Node's shared pool: code that reads `.buffer`
 * sees only these bytes.
 *
 * @internal
 */
export const readBuffer = (bytes: Uint8Array): Buffer => {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return asBuffer(bytes)
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength)
  copy.set(bytes)
  return copy
}

/** @internal */
export const UringFileTypeId: unique symbol = Symbol.for("effect-uring/UringFileSystem/UringFile")

class UringFileImpl implements UringFile {
  readonly [FileSystem.FileTypeId]: FileSystem.FileTypeId = FileSystem.FileTypeId
  readonly [UringFileTypeId] = UringFileTypeId
  readonly fd: FileSystem.File.Descriptor
  private readonly semaphore = Effect.unsafeMakeSemaphore(1)
  private position = 0n

  constructor(
    private readonly uring: UringShape,
    readonly handle: OwnedFd,
    private readonly append: boolean
  ) {
    this.fd = FileSystem.FileDescriptor(handle.fd)
  }

  get path(): string {
    return this.handle.path
  }

  private fail(method: string) {
    return toPlatformError(method, this.fd)
  }

  get stat(): Effect.Effect<FileSystem.File.Info, PlatformError.PlatformError> {
    return this.uring.fstat(this.handle).pipe(Effect.map(toInfo), Effect.mapError(this.fail("stat")))
  }

  get sync(): Effect.Effect<void, PlatformError.PlatformError> {
    return this.uring.fsync(this.handle).pipe(Effect.mapError(this.fail("sync")))
  }

  get datasync(): Effect.Effect<void, PlatformError.PlatformError> {
    return this.uring.fdatasync(this.handle).pipe(Effect.mapError(this.fail("datasync")))
  }

  seek(offset: FileSystem.SizeInput, from: FileSystem.SeekMode): Effect.Effect<void> {
    const size = FileSystem.Size(offset)
    return this.semaphore.withPermits(1)(Effect.sync(() => {
      if (from === "start") this.position = size
      else if (from === "current") this.position = this.position + size
    }))
  }

  // Node's fs.read answers a read of 0 bytes without a system call (so without EBADF on a write-only file).
  read(buffer: Uint8Array): Effect.Effect<FileSystem.Size, PlatformError.PlatformError> {
    return this.semaphore.withPermits(1)(
      Effect.suspend(() =>
        buffer.length === 0
          ? Effect.succeed(0)
          : intoRingMemory(buffer, (into) => this.uring.readInto(this.handle, this.position, into))
      ).pipe(
        Effect.mapError(this.fail("read")),
        Effect.map((read) => {
          const size = FileSystem.Size(read)
          this.position = this.position + size
          return size
        })
      )
    )
  }

  readAlloc(size: FileSystem.SizeInput): Effect.Effect<Option.Option<Uint8Array>, PlatformError.PlatformError> {
    return this.semaphore.withPermits(1)(
      Effect.suspend(() =>
        Number(size) === 0 ? Effect.succeed(new Uint8Array(0)) : this.uring.read(this.handle, this.position, Number(size))
      ).pipe(
        Effect.mapError(this.fail("readAlloc")),
        Effect.map((bytes) => {
          if (bytes.length === 0) return Option.none()
          this.position = this.position + BigInt(bytes.length)
          return Option.some<Uint8Array>(readBuffer(bytes))
        })
      )
    )
  }

  truncate(length?: FileSystem.SizeInput): Effect.Effect<void, PlatformError.PlatformError> {
    return this.semaphore.withPermits(1)(
      Effect.suspend(() => this.uring.ftruncate(this.handle, truncatedLength(length))).pipe(
        Effect.mapError(this.fail("truncate")),
        Effect.map(() => {
          if (!this.append) {
            const len = BigInt(truncatedLength(length))
            if (this.position > len) this.position = len
          }
        })
      )
    )
  }

  // In append mode the kernel writes at the end whatever the offset (O_APPEND), and the cursor stays put, as in Node.
  write(buffer: Uint8Array): Effect.Effect<FileSystem.Size, PlatformError.PlatformError> {
    return this.semaphore.withPermits(1)(
      Effect.suspend(() => this.uring.write(this.handle, this.append ? 0 : this.position, ringData(buffer))).pipe(
        Effect.mapError(this.fail("write")),
        Effect.map((written) => {
          const size = FileSystem.Size(written)
          if (!this.append) this.position = this.position + size
          return size
        })
      )
    )
  }

  writeAll(buffer: Uint8Array): Effect.Effect<void, PlatformError.PlatformError> {
    return this.semaphore.withPermits(1)(Effect.suspend(() => {
      // Node's writeAll fails when a write reports 0 bytes, which an empty buffer always does (after the write
      // itself, which can fail first, e.g. EBADF on a read-only file).
      if (buffer.length === 0) {
        return this.uring.write(this.handle, this.append ? 0 : this.position, ringData(buffer)).pipe(
          Effect.mapError(this.fail("writeAll")),
          Effect.zipRight(
            Effect.fail(systemError("writeAll", this.fd, "WriteZero", "write", "write returned 0 bytes written"))
          )
        )
      }
      const at = this.append ? 0 : this.position
      return this.uring.writeAll(this.handle, at, ringData(buffer)).pipe(
        // Past what was written before a failure (`WriteZero`, or a kernel error's `written`), as Node's cursor is after
        // the writes that succeeded.
        Effect.tapError((error) =>
          Effect.sync(() => {
            if ("written" in error && error.written !== undefined && !this.append) {
              this.position = this.position + BigInt(error.written)
            }
          })
        ),
        Effect.mapError(this.fail("writeAll")),
        Effect.map(() => {
          if (!this.append) this.position = this.position + BigInt(buffer.length)
        })
      )
    }))
  }

  readAt(buffer: Uint8Array, offset: FileSystem.SizeInput): Effect.Effect<FileSystem.Size, PlatformError.PlatformError> {
    return Effect.suspend(() =>
      intoRingMemory(buffer, (into) => this.uring.readInto(this.handle, FileSystem.Size(offset), into))
    ).pipe(
      Effect.mapError(this.fail("readAt")),
      Effect.map(FileSystem.Size)
    )
  }

  readAllocAt(
    size: FileSystem.SizeInput,
    offset: FileSystem.SizeInput
  ): Effect.Effect<Option.Option<Uint8Array>, PlatformError.PlatformError> {
    return Effect.suspend(() => this.uring.read(this.handle, FileSystem.Size(offset), Number(size))).pipe(
      Effect.mapError(this.fail("readAllocAt")),
      Effect.map((bytes) => bytes.length === 0 ? Option.none() : Option.some<Uint8Array>(readBuffer(bytes)))
    )
  }

  writeAt(buffer: Uint8Array, offset: FileSystem.SizeInput): Effect.Effect<FileSystem.Size, PlatformError.PlatformError> {
    return Effect.suspend(() => this.uring.write(this.handle, FileSystem.Size(offset), ringData(buffer))).pipe(
      Effect.mapError(this.fail("writeAt")),
      Effect.map(FileSystem.Size)
    )
  }

  writeAllAt(buffer: Uint8Array, offset: FileSystem.SizeInput): Effect.Effect<void, PlatformError.PlatformError> {
    return Effect.suspend(() => this.uring.writeAll(this.handle, FileSystem.Size(offset), ringData(buffer))).pipe(
      Effect.mapError(this.fail("writeAllAt"))
    )
  }

  allocate(
    offset: FileSystem.SizeInput,
    length: FileSystem.SizeInput,
    options?: { readonly keepSize?: boolean }
  ): Effect.Effect<void, PlatformError.PlatformError> {
    return Effect.suspend(() =>
      this.uring.fallocate(
        this.handle,
        FileSystem.Size(offset),
        FileSystem.Size(length),
        options?.keepSize ? FallocateMode.KEEP_SIZE : 0
      )
    ).pipe(Effect.mapError(this.fail("allocate")))
  }

  advise(
    advice: Advice,
    offset: FileSystem.SizeInput = 0,
    length: FileSystem.SizeInput = 0
  ): Effect.Effect<void, PlatformError.PlatformError> {
    return Effect.suspend(() =>
      this.uring.fadvise(this.handle, FileSystem.Size(offset), FileSystem.Size(length), advice)
    ).pipe(Effect.mapError(this.fail("advise")))
  }
}

/** @internal */
export const makeFile = (uring: UringShape, handle: OwnedFd, append: boolean): UringFile =>
  new UringFileImpl(uring, handle, append)
