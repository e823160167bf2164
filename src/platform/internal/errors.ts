/**
 * Ring errors as `@effect/platform` errors, with the reason mapping of Node's implementation.
 *
 * @internal
 */
import * as PlatformError from "@effect/platform/Error"
import { getSystemErrorMap } from "node:util"
import { describeErrno } from "../../errors/errno.js"
import { fromErrno, type UringError } from "../../errors/UringError.js"
import { pathLengthErrno } from "../../internal/validate.js"
import { withoutStack } from "../../internal/withoutStack.js"

/**
 * Every error here is built from fields whose types the signatures fix, so the constructors skip
 * their schema check: with it, one `SystemError` took about 50 µs, a stat storm's whole
 * budget per missing path. Errors converted from ring errors also skip the stack, as those do.
 */
const SKIP_VALIDATION = true

/** Node's reason for an errno code name (`@effect/platform-node-shared`'s `handleErrnoException`). @internal */
export const reasonOf = (code: string | undefined): PlatformError.SystemErrorReason => {
  switch (code) {
    case "ENOENT":
      return "NotFound"
    case "EACCES":
      return "PermissionDenied"
    case "EEXIST":
      return "AlreadyExists"
    case "EISDIR":
    case "ENOTDIR":
    case "ELOOP":
      return "BadResource"
    case "EBUSY":
      return "Busy"
    default:
      return "Unknown"
  }
}

// The system call Node would name for each ring operation (Node's errors carry `syscall`).
const syscalls: Readonly<Record<string, string>> = {
  open: "open",
  openAt: "open",
  withFile: "open",
  read: "read",
  readInto: "read",
  readExact: "read",
  write: "write",
  writeAll: "write",
  stat: "stat",
  access: "access",
  statAt: "stat",
  fstat: "fstat",
  ftruncate: "ftruncate",
  fsync: "fsync",
  fdatasync: "fdatasync",
  fallocate: "fallocate",
  fadvise: "fadvise",
  close: "close",
  rename: "rename",
  renameAt: "rename",
  unlink: "unlink",
  unlinkAt: "unlink",
  rmdir: "rmdir",
  mkdir: "mkdir",
  mkdirAt: "mkdir",
  symlink: "symlink",
  symlinkAt: "symlink",
  link: "link",
  linkAt: "link"
}

/**
 * The whole-file ops (open, transfer, close as one op): the errors only their transfer step gives, and its syscall;
 * any other error is the open's. EISDIR: a directory opens for reading, then refuses the read.
 */
const transferSteps: Readonly<Record<string, { readonly syscall: string; readonly codes: ReadonlySet<string> }>> = {
  writeFile: { syscall: "write", codes: new Set(["ENOSPC", "EDQUOT", "EFBIG", "EIO", "EBADF", "EPIPE"]) },
  readFile: { syscall: "read", codes: new Set(["EISDIR", "EIO", "EINVAL", "EBADF"]) }
}

/** System calls Node makes on an fd: its errors name no path for them. */
const fdSyscalls: ReadonlySet<string> = new Set([
  "read",
  "write",
  "fstat",
  "ftruncate",
  "fsync",
  "fdatasync",
  "fallocate",
  "fadvise",
  "close"
])

/** Node's own description of an errno (libuv's wording, e.g. "file already exists"), else this library's. */
const nodeMessages = getSystemErrorMap()
const messageOf = (errno: number): string => nodeMessages.get(-errno)?.[1] ?? describeErrno(errno)

/** Node's `syscall` name for a ring operation that failed with `code`. @internal */
export const syscallOf = (operation: string, code: string): string => {
  const step = transferSteps[operation]
  return step === undefined ? syscalls[operation] ?? operation : step.codes.has(code) ? step.syscall : "open"
}

/**
 * Converts a ring error into the platform's error for `method` on `pathOrDescriptor`: kernel errors become a
 * `SystemError` with Node's reason and the ring error (errno and code included) as `cause`; refused arguments become a
 * `BadArgument`.
 *
 * @internal
 */
export const toPlatformError = (
  method: string,
  pathOrDescriptor: string | number,
  paths?: { readonly [argument: string]: string },
  syscall?: string
) =>
(error: UringError): PlatformError.PlatformError =>
  withoutStack(() => convert(method, pathOrDescriptor, error, paths, syscall))

/**
 * `paths` names the path arguments of a member with more than one (`link`'s `from` and `to`, in
 * the order Node's description gives them); otherwise the refused argument `path` is
 * `pathOrDescriptor`. `syscall` is Node's where the op's own is not (an lstat made as a stat).
 */
const convert = (
  method: string,
  pathOrDescriptor: string | number,
  error: UringError,
  paths?: { readonly [argument: string]: string },
  syscallOverride?: string
): PlatformError.PlatformError => {
  switch (error._tag) {
    case "InvalidArgument": {
      // The service refuses these paths before the kernel sees them; Node reports the kernel's error.
      const path = paths !== undefined
        ? paths[error.argument]
        : error.argument === "path" && typeof pathOrDescriptor === "string"
        ? pathOrDescriptor
        : undefined
      const errno = path === undefined ? undefined : pathLengthErrno(path)
      if (errno !== undefined) {
        return convert(method, pathOrDescriptor, fromErrno(errno, { operation: error.operation, path }), paths, syscallOverride)
      }
      return new PlatformError.BadArgument({
        module: "FileSystem",
        method,
        description: error.message,
        cause: error
      }, SKIP_VALIDATION)
    }
    case "WriteZero":
      return new PlatformError.SystemError({
        module: "FileSystem",
        method,
        reason: "WriteZero",
        pathOrDescriptor,
        description: "write returned 0 bytes written",
        cause: error
      }, SKIP_VALIDATION)
    case "UnexpectedEof":
      return new PlatformError.SystemError({
        module: "FileSystem",
        method,
        reason: "UnexpectedEof",
        pathOrDescriptor,
        description: error.message,
        cause: error
      }, SKIP_VALIDATION)
    case "RingClosed":
      return new PlatformError.SystemError({
        module: "FileSystem",
        method,
        reason: "BadResource",
        pathOrDescriptor,
        description: error.message,
        cause: error
      }, SKIP_VALIDATION)
    default: {
      const syscall = syscallOverride ?? syscallOf(error.operation, error.code)
      // Node's description: the path for a call on one, and a second path's destination; for a
      // write in steps (`writeAll`), how much of the data went before the error.
      const [path = error.path, dest] = paths === undefined ? [] : Object.values(paths)
      const where = fdSyscalls.has(syscall) || path === undefined ? "" : ` '${path}'${dest === undefined ? "" : ` -> '${dest}'`}`
      const after = "written" in error && error.written !== undefined ? `, after writing ${error.written} bytes` : ""
      return new PlatformError.SystemError({
        module: "FileSystem",
        method,
        reason: reasonOf(error.code),
        pathOrDescriptor,
        syscall,
        description: `${error.code}: ${messageOf(error.errno)}, ${syscall}${where}${after}`,
        cause: error
      }, SKIP_VALIDATION)
    }
  }
}

/** The same error, reported for another method and path (a member built on another one, as Node's are). @internal */
export const remap = (method: string, pathOrDescriptor: string | number) =>
(error: PlatformError.PlatformError): PlatformError.PlatformError =>
  withoutStack(() => error._tag === "SystemError"
    ? new PlatformError.SystemError({
      module: "FileSystem",
      method,
      reason: error.reason,
      pathOrDescriptor,
      ...(error.syscall !== undefined ? { syscall: error.syscall } : {}),
      ...(error.description !== undefined ? { description: error.description } : {}),
      cause: error.cause
    }, SKIP_VALIDATION)
    : new PlatformError.BadArgument({
      module: "FileSystem",
      method,
      ...(error.description !== undefined ? { description: error.description } : {}),
      cause: error.cause
    }, SKIP_VALIDATION))

/** A `SystemError` raised by this layer itself, mirroring one of Node's `ERR_FS_*` errors. @internal */
export const systemError = (
  method: string,
  pathOrDescriptor: string | number,
  reason: PlatformError.SystemErrorReason,
  syscall: string,
  description: string,
  cause?: unknown
): PlatformError.SystemError =>
  new PlatformError.SystemError({
    module: "FileSystem",
    method,
    reason,
    pathOrDescriptor,
    syscall,
    description,
    ...(cause !== undefined ? { cause } : {})
  }, SKIP_VALIDATION)
