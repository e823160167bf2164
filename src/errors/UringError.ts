/**
 * Typed errors of effect-uring.
 *
 * Kernel failures (a negative result in a completion) become one tagged class per kind of errno, all with the same
 * fields, so callers can `Effect.catchTag("NotFound", ...)`. Arguments that cannot be right are refused before
 * submission with {@link InvalidArgument}. Every class is a `Schema.TaggedError`, so errors can be encoded and sent
 * between processes.
 *
 * The `message` does not repeat the tag: Effect (and `Error.prototype.toString`) print `<tag>: <message>`, which reads
 * `NotFound: openAt "/tmp/x" failed: ENOENT (errno 2): no such file or directory`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { codeOf, describeErrno } from "./errno.js"

const kernelFields = {
  operation: Schema.String,
  path: Schema.optional(Schema.String),
  fd: Schema.optional(Schema.Number),
  errno: Schema.Number,
  code: Schema.String,
  /**
   * Set by ops that write their data in more than one step (`writeAll`, and `writeFile` of data over 2 GiB, whose
   * errors come from its `writeAll`): how many bytes of the data were written before the kernel failed the step that
   * reported this error, 0 when it failed the first. Those bytes are in the file from the op's offset on, so the
   * caller can resume after them or cut them off. Absent from every other op's errors.
   *
   * @since 0.1.0
   */
  written: Schema.optional(Schema.Number)
}

interface Where {
  readonly operation: string
  readonly path?: string | undefined
  readonly fd?: number | undefined
}

// `openAt "/tmp/x"`, `read fd 7`, or just `fsync` when neither is known. The path wins over the fd: it is what the
// user wrote.
const where = (w: Where): string =>
  w.path !== undefined ? `${w.operation} ${JSON.stringify(w.path)}` : w.fd !== undefined ? `${w.operation} fd ${w.fd}` : w.operation

// `writeAll "/tmp/x" failed after writing 65536 bytes: ENOSPC ...` when the op says how far it got.
const kernelMessage = (
  e: Where & { readonly errno: number; readonly code: string; readonly written?: number | undefined }
): string => {
  const after = e.written !== undefined ? ` after writing ${e.written} bytes` : ""
  return `${where(e)} failed${after}: ${e.code} (errno ${e.errno}): ${describeErrno(e.errno)}`
}

/**
 * ENOENT: the path (or a directory on the way to it) does not exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>("effect-uring/NotFound")("NotFound", kernelFields) {
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EACCES or EPERM: the process lacks the permission.
 *
 * @since 0.1.0
 * @category errors
 */
export class PermissionDenied
  extends Schema.TaggedError<PermissionDenied>("effect-uring/PermissionDenied")("PermissionDenied", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EEXIST: the path already exists (e.g. an exclusive create, or mkdir).
 *
 * @since 0.1.0
 * @category errors
 */
export class AlreadyExists
  extends Schema.TaggedError<AlreadyExists>("effect-uring/AlreadyExists")("AlreadyExists", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * ENOTDIR: a component used as a directory is not one.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotADirectory
  extends Schema.TaggedError<NotADirectory>("effect-uring/NotADirectory")("NotADirectory", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EISDIR: a file operation was asked of a directory.
 *
 * @since 0.1.0
 * @category errors
 */
export class IsADirectory
  extends Schema.TaggedError<IsADirectory>("effect-uring/IsADirectory")("IsADirectory", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * ENOTEMPTY: a directory to remove or replace still has entries.
 *
 * @since 0.1.0
 * @category errors
 */
export class DirectoryNotEmpty
  extends Schema.TaggedError<DirectoryNotEmpty>("effect-uring/DirectoryNotEmpty")("DirectoryNotEmpty", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EINVAL: the kernel refused an argument (e.g. O_DIRECT with a misaligned buffer).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput
  extends Schema.TaggedError<InvalidInput>("effect-uring/InvalidInput")("InvalidInput", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EBADF: the descriptor is not open, or not open for this kind of access.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadDescriptor
  extends Schema.TaggedError<BadDescriptor>("effect-uring/BadDescriptor")("BadDescriptor", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * ENOSPC or EDQUOT: the device is full or the quota is used up.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoSpace extends Schema.TaggedError<NoSpace>("effect-uring/NoSpace")("NoSpace", kernelFields) {
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EMFILE or ENFILE: the per-process or system-wide descriptor limit is reached.
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyOpenFiles
  extends Schema.TaggedError<TooManyOpenFiles>("effect-uring/TooManyOpenFiles")("TooManyOpenFiles", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EXDEV: a rename or link across file systems.
 *
 * @since 0.1.0
 * @category errors
 */
export class CrossDevice extends Schema.TaggedError<CrossDevice>("effect-uring/CrossDevice")("CrossDevice", kernelFields) {
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EROFS: a write to a read-only file system.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadOnlyFileSystem
  extends Schema.TaggedError<ReadOnlyFileSystem>("effect-uring/ReadOnlyFileSystem")("ReadOnlyFileSystem", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * ENAMETOOLONG: the path or one of its components is too long.
 *
 * @since 0.1.0
 * @category errors
 */
export class NameTooLong extends Schema.TaggedError<NameTooLong>("effect-uring/NameTooLong")("NameTooLong", kernelFields) {
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * ELOOP: too many symbolic links, or a symbolic link where O_NOFOLLOW forbids one.
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManySymlinks
  extends Schema.TaggedError<TooManySymlinks>("effect-uring/TooManySymlinks")("TooManySymlinks", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EBUSY or ETXTBSY: the resource is in use (a mount point, an executable being run).
 *
 * @since 0.1.0
 * @category errors
 */
export class Busy extends Schema.TaggedError<Busy>("effect-uring/Busy")("Busy", kernelFields) {
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * ECANCELED or EINTR: the operation was canceled before it completed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Canceled extends Schema.TaggedError<Canceled>("effect-uring/Canceled")("Canceled", kernelFields) {
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * EOPNOTSUPP or ENOSYS: the kernel or the file system does not support the operation.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotSupported
  extends Schema.TaggedError<NotSupported>("effect-uring/NotSupported")("NotSupported", kernelFields)
{
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * Any other errno; `errno` and `code` say which.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unknown extends Schema.TaggedError<Unknown>("effect-uring/Unknown")("Unknown", kernelFields) {
  get message(): string {
    return kernelMessage(this)
  }
}

/**
 * A `readExact` reached end of file before the buffer was full.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnexpectedEof extends Schema.TaggedError<UnexpectedEof>("effect-uring/UnexpectedEof")("UnexpectedEof", {
  operation: Schema.String,
  path: Schema.optional(Schema.String),
  fd: Schema.optional(Schema.Number),
  offset: Schema.Number,
  expected: Schema.Number,
  read: Schema.Number
}) {
  get message(): string {
    return `${where(this)} reached end of file: expected ${this.expected} bytes at offset ${this.offset}, read ${this.read}`
  }
}

/**
 * A write completed with 0 bytes written, so retrying would loop forever.
 *
 * @since 0.1.0
 * @category errors
 */
export class WriteZero extends Schema.TaggedError<WriteZero>("effect-uring/WriteZero")("WriteZero", {
  operation: Schema.String,
  path: Schema.optional(Schema.String),
  fd: Schema.optional(Schema.Number),
  written: Schema.Number,
  expected: Schema.Number
}) {
  get message(): string {
    return `${where(this)} wrote 0 bytes after ${this.written} of ${this.expected}`
  }
}

/**
 * A path confined to a root directory resolved outside it.
 *
 * @since 0.1.0
 * @category errors
 */
export class Escape extends Schema.TaggedError<Escape>("effect-uring/Escape")("Escape", {
  operation: Schema.String,
  path: Schema.String,
  dir: Schema.optional(Schema.String),
  errno: Schema.Number,
  code: Schema.String
}) {
  get message(): string {
    const root = this.dir !== undefined ? ` ${JSON.stringify(this.dir)}` : ""
    return `${this.operation} ${JSON.stringify(this.path)} resolves outside its root directory${root}: ${this.code} (errno ${this.errno})`
  }
}

/**
 * An argument refused before anything was submitted (negative offset, NUL in a path, detached buffer, ...).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument
  extends Schema.TaggedError<InvalidArgument>("effect-uring/InvalidArgument")("InvalidArgument", {
    operation: Schema.String,
    argument: Schema.String,
    reason: Schema.String
  })
{
  get message(): string {
    return `${this.operation}: invalid ${this.argument}: ${this.reason}`
  }
}

/**
 * The ring was used after the scope that owned it ended.
 *
 * @since 0.1.0
 * @category errors
 */
export class RingClosed extends Schema.TaggedError<RingClosed>("effect-uring/RingClosed")("RingClosed", {
  operation: Schema.String
}) {
  get message(): string {
    return `${this.operation}: the io_uring ring is closed (the scope that owned it has ended)`
  }
}

/**
 * The kernel refused to create a ring. Common in containers; the message carries a hint.
 *
 * @since 0.1.0
 * @category errors
 */
export class RingUnavailable extends Schema.TaggedError<RingUnavailable>("effect-uring/RingUnavailable")(
  "RingUnavailable",
  { errno: Schema.Number, code: Schema.String, reason: Schema.String }
) {
  get message(): string {
    const likely = this.code === "ENOMEM"
      ? "ENOMEM usually means the memlock (RLIMIT_MEMLOCK) or memory limits are too low for the ring"
      : this.code === "EPERM" || this.code === "ENOSYS" || this.code === "EACCES"
      ? `${this.code} usually means io_uring is blocked or missing here`
      : "io_uring may be unavailable here"
    return `io_uring ring setup failed: ${this.code} (errno ${this.errno}): ${this.reason}. Hint: ${likely}. ` +
      "io_uring is refused by the default seccomp profile of Docker/containerd, by gVisor, by " +
      "`sysctl kernel.io_uring_disabled` (0 allows all, 1 only members of kernel.io_uring_group, 2 none), " +
      "and by kernels older than 5.19. UringFileSystem.layerWithFallback uses Node's file system in that case."
  }
}

/**
 * A configuration value is out of range or inconsistent.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>("effect-uring/InvalidConfig")("InvalidConfig", {
  setting: Schema.String,
  reason: Schema.String
}) {
  get message(): string {
    return `invalid configuration ${this.setting}: ${this.reason}`
  }
}

/**
 * Every error made from a kernel errno.
 *
 * @since 0.1.0
 * @category models
 */
export type KernelError =
  | NotFound
  | PermissionDenied
  | AlreadyExists
  | NotADirectory
  | IsADirectory
  | DirectoryNotEmpty
  | InvalidInput
  | BadDescriptor
  | NoSpace
  | TooManyOpenFiles
  | CrossDevice
  | ReadOnlyFileSystem
  | NameTooLong
  | TooManySymlinks
  | Busy
  | Canceled
  | NotSupported
  | Unknown

/**
 * Every error an operation on a ring can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type UringError = KernelError | UnexpectedEof | WriteZero | InvalidArgument | RingClosed | Escape

type KernelErrorClass = new(props: {
  readonly operation: string
  readonly path?: string
  readonly fd?: number
  readonly errno: number
  readonly code: string
  readonly written?: number
}, disableValidation?: boolean) => KernelError

// Indexed by code name rather than number so the mapping reads like the design notes.
const classByCode: Readonly<Record<string, KernelErrorClass>> = {
  ENOENT: NotFound,
  EACCES: PermissionDenied,
  EPERM: PermissionDenied,
  EEXIST: AlreadyExists,
  ENOTDIR: NotADirectory,
  EISDIR: IsADirectory,
  ENOTEMPTY: DirectoryNotEmpty,
  EINVAL: InvalidInput,
  EBADF: BadDescriptor,
  ENOSPC: NoSpace,
  EDQUOT: NoSpace,
  EMFILE: TooManyOpenFiles,
  ENFILE: TooManyOpenFiles,
  EXDEV: CrossDevice,
  EROFS: ReadOnlyFileSystem,
  ENAMETOOLONG: NameTooLong,
  ELOOP: TooManySymlinks,
  EBUSY: Busy,
  ETXTBSY: Busy,
  ECANCELED: Canceled,
  EINTR: Canceled,
  EOPNOTSUPP: NotSupported,
  ENOSYS: NotSupported
}

/**
 * The tagged error for an errno. A negative value (as a completion carries it) is taken as its absolute value. It
 * skips schema validation: every field's type is fixed by this signature, and a failed op builds one per error.
 * `context.written` is for ops that write in steps: see the kernel errors' `written` field.
 *
 * @example
 * ```ts
 * import { fromErrno } from "./UringError.js"
 *
 * const e = fromErrno(2, { operation: "openAt", path: "/tmp/x" })
 * // e._tag === "NotFound"
 * // e.message === 'openAt "/tmp/x" failed: ENOENT (errno 2): no such file or directory'
 *
 * const full = fromErrno(28, { operation: "writeAll", fd: 7, written: 65536 })
 * // full._tag === "NoSpace"
 * // full.message === "writeAll fd 7 failed after writing 65536 bytes: ENOSPC (errno 28): no space left on device"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromErrno = (
  errno: number,
  context: {
    readonly operation: string
    readonly path?: string | undefined
    readonly fd?: number | undefined
    readonly written?: number | undefined
  }
): KernelError => {
  const { Class, fields } = kernelErrorOf(errno, context)
  return new Class(fields, true)
}

/**
 * The class and fields `fromErrno` builds an error of. Not part of the package's surface: the index
 * names what it exports from this module.
 *
 * @internal
 */
export const kernelErrorOf = (
  errno: number,
  context: Parameters<typeof fromErrno>[1]
): { readonly Class: KernelErrorClass; readonly fields: ConstructorParameters<KernelErrorClass>[0] } => {
  const n = Math.abs(errno)
  const code = codeOf(n)
  return {
    Class: classByCode[code] ?? Unknown,
    // Optional fields are left out rather than set to undefined (exactOptionalPropertyTypes, and cleaner encodings).
    fields: {
      operation: context.operation,
      ...(context.path !== undefined ? { path: context.path } : {}),
      ...(context.fd !== undefined ? { fd: context.fd } : {}),
      errno: n,
      code,
      ...(context.written !== undefined ? { written: context.written } : {})
    }
  }
}
