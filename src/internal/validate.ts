/**
 * Argument checks made before anything reaches the kernel. Each returns the normalized value, or an InvalidArgument
 * that says which argument and why. `isPlainOffset` and `bufferProblem` give the per-operation ones without allocating.
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import { Buffer } from "node:buffer"
import { InvalidArgument } from "../errors/UringError.js"
import { type Advice, Advice as AdviceValues, adviceValue, isOpenFlag, type OpenFlag } from "../services/Flags.js"

/**
 * The kernel's per-operation transfer limit (MAX_RW_COUNT): 2 GiB minus 4 KiB. Reads of a given length (`read`,
 * `readExact`, `readBatch` ranges) above it are refused; a larger `write` or `readInto` buffer moves at most this much
 * per op and reports a short count.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_LENGTH = 0x7ffff000

/**
 * PATH_MAX, which counts the terminating NUL: a path may have at most 4095 bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const PATH_MAX = 4096

const MAX_OFF_T = 2n ** 63n - 1n
const MAX_INT32 = 2 ** 31 - 1

const refuse = (operation: string, argument: string, reason: string) =>
  Either.left(new InvalidArgument({ operation, argument, reason }))

/**
 * A refused value as a reason shows it: strings quoted, objects by their type, and never a throw (`JSON.stringify`
 * throws on a bigint, `String` on an object without a prototype).
 *
 * @internal
 */
export const shown = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : typeof value === "bigint" ? `${value}n` : typeof value === "object" && value !== null ? typeof value : String(value)

// The reason a value is not a non-negative integer, or undefined when it is one (number or bigint).
const notNonNegativeInteger = (value: unknown): string | undefined => {
  if (typeof value === "bigint") return value < 0n ? `must not be negative (got ${value})` : undefined
  if (typeof value !== "number") return `must be a number or a bigint (got ${typeof value})`
  if (Number.isNaN(value)) return "must be a number (got NaN)"
  if (!Number.isFinite(value)) return `must be finite (got ${value})`
  if (!Number.isInteger(value)) return `must be an integer (got ${value})`
  if (value < 0) return `must not be negative (got ${value})`
  return undefined
}

/**
 * Whether {@link offset} accepts `value` as it is: a number that is a non-negative safe integer. The common case,
 * checked without the BigInt arithmetic and the Either of the full check (callers run it once per operation).
 *
 * @since 0.1.0
 * @category validation
 */
export const isPlainOffset = (value: unknown): value is number =>
  typeof value === "number" && value >= 0 && value <= Number.MAX_SAFE_INTEGER && Number.isInteger(value)

/**
 * A file offset: a non-negative safe integer, given as a number or a bigint, returned as a number (`-0` becomes 0).
 *
 * @since 0.1.0
 * @category validation
 */
export const offset = (
  operation: string,
  value: number | bigint,
  argument = "offset"
): Either.Either<number, InvalidArgument> => {
  if (isPlainOffset(value)) return Either.right(value + 0)
  const problem = notNonNegativeInteger(value)
  if (problem !== undefined) return refuse(operation, argument, problem)
  // Compare as bigint: a large number is an exact integer, so BigInt(value) cannot throw here.
  const big = BigInt(value)
  if (big > MAX_OFF_T) return refuse(operation, argument, `must not exceed 2^63-1, the largest file offset (got ${value})`)
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
    return refuse(operation, argument, "offsets beyond 2^53 bytes are not supported")
  }
  return Either.right(Number(value) + 0)
}

/**
 * A byte count: a non-negative integer no larger than `max` (by default the kernel's limit, {@link MAX_LENGTH}).
 *
 * @since 0.1.0
 * @category validation
 */
export const length = (
  operation: string,
  value: number | bigint,
  max: number = MAX_LENGTH,
  argument = "length"
): Either.Either<number, InvalidArgument> => {
  const problem = notNonNegativeInteger(value)
  if (problem !== undefined) return refuse(operation, argument, problem)
  if (value > max) {
    const limit = max === MAX_LENGTH ? `${MAX_LENGTH} bytes (2 GiB minus 4 KiB, the kernel's per-operation limit)` : `${max} bytes`
    return refuse(operation, argument, `must not exceed ${limit} (got ${value})`)
  }
  return Either.right(Number(value) + 0)
}

/**
 * A path: a non-empty string without NUL whose UTF-8 encoding fits in PATH_MAX with its terminating NUL.
 *
 * @since 0.1.0
 * @category validation
 */
export const path = (operation: string, value: string, argument = "path"): Either.Either<string, InvalidArgument> => {
  if (typeof value !== "string") return refuse(operation, argument, `must be a string (got ${typeof value})`)
  if (value.length === 0) return refuse(operation, argument, "must not be empty")
  // The kernel reads a C string: everything after a NUL would be dropped silently.
  if (value.includes("\u0000")) return refuse(operation, argument, "must not contain a NUL character (\\u0000)")
  if (pathLengthErrno(value) !== undefined) {
    return refuse(operation, argument, `must be shorter than PATH_MAX (${PATH_MAX} bytes in UTF-8, got ${Buffer.byteLength(value, "utf8")})`)
  }
  return Either.right(value)
}

/**
 * The errno the kernel would give a path `path` refuses for its length: ENOENT for an empty one,
 * ENAMETOOLONG for one of PATH_MAX bytes or more; undefined otherwise. For layers that promise
 * the kernel's errors (the platform FileSystem reports these as Node does).
 *
 * @internal
 */
export const pathLengthErrno = (value: string): number | undefined => {
  if (value.length === 0) return ENOENT
  // A UTF-16 unit is at most 3 bytes of UTF-8: only a long string needs its bytes counted.
  return 3 * value.length >= PATH_MAX && Buffer.byteLength(value, "utf8") >= PATH_MAX ? ENAMETOOLONG : undefined
}

const ENOENT = 2
const ENAMETOOLONG = 36

/**
 * A file descriptor: a non-negative 32-bit integer.
 *
 * @since 0.1.0
 * @category validation
 */
export const fd = (operation: string, value: number, argument = "fd"): Either.Either<number, InvalidArgument> => {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return refuse(operation, argument, `must be an integer (got ${shown(value)})`)
  }
  if (value < 0) return refuse(operation, argument, `must not be negative (got ${value})`)
  if (value > MAX_INT32) return refuse(operation, argument, `must fit in a 32-bit signed integer (got ${value})`)
  return Either.right(value + 0)
}

/**
 * A `fallocate(2)` mode: `FallocateMode` bits, as a non-negative 32-bit integer. Which bits and
 * combinations a file system supports is the kernel's to say (`NotSupported`, `InvalidInput`).
 *
 * @since 0.1.0
 * @category validation
 */
export const fallocateMode = (operation: string, value: number, argument = "mode"): Either.Either<number, InvalidArgument> =>
  fd(operation, value, argument)

/**
 * `fadvise` advice: an `Advice` name or a `POSIX_FADV_*` number (0-5); returns the kernel's value.
 *
 * @since 0.1.0
 * @category validation
 */
export const advice = (operation: string, value: Advice | number, argument = "advice"): Either.Either<number, InvalidArgument> => {
  // An unknown name gives undefined, a prototype member ("toString") a function: neither is a number.
  const kernel: unknown = typeof value === "string" ? adviceValue(value) : value
  return typeof kernel === "number" && Number.isInteger(kernel) && kernel >= 0 && kernel <= AdviceValues.NoReuse
    ? Either.right(kernel)
    : refuse(
      operation,
      argument,
      `must be one of normal, random, sequential, willNeed, dontNeed, noReuse or 0-5 (got ${shown(value)})`
    )
}

// Node 20's V8 has no ArrayBuffer.prototype.detached. A detached buffer reports byteLength 0, and constructing a new
// view on it throws, which tells it apart from a genuinely empty buffer.
const isDetached = (buffer: ArrayBuffer): boolean => {
  const flag = (buffer as { readonly detached?: unknown }).detached
  if (typeof flag === "boolean") return flag
  if (buffer.byteLength !== 0) return false
  try {
    new Uint8Array(buffer)
    return false
  } catch {
    return true
  }
}

/**
 * Why the kernel may not use `value` as a buffer, or undefined when it may: a Uint8Array (Buffer included) over a
 * plain ArrayBuffer that is neither detached, shared nor resizable. Checked once per operation, without an Either.
 *
 * Shared memory is refused because other threads could use it while the kernel does; resizable memory because it could
 * shrink under a pending operation.
 *
 * @since 0.1.0
 * @category validation
 */
export const bufferProblem = (value: Uint8Array): string | undefined => {
  if (!(value instanceof Uint8Array)) return "must be a Uint8Array"
  const backing = backingOf(value)
  if (backing === undefined) return "must be a Uint8Array"
  if (isShared(backing)) return "must not be backed by a SharedArrayBuffer"
  if (isResizable(backing)) return "must not be backed by a resizable ArrayBuffer"
  if (isDetached(backing as ArrayBuffer)) return "its ArrayBuffer is detached (transferred or released)"
  return undefined
}

// The built-in accessors, not the properties: a subclass or an own property could answer for
// `buffer` or `resizable` with something other than the memory the kernel would get.
const viewBuffer = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), "buffer")!.get!
const plainByteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength")!.get!
const plainResizable = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "resizable")?.get

/** The memory behind `view`, read through the built-in accessor (undefined if `view` is no typed array). @internal */
export const backingOf = (view: Uint8Array): ArrayBufferLike | undefined => {
  try {
    return viewBuffer.call(view) as ArrayBufferLike
  } catch {
    return undefined
  }
}

/** Whether `backing` is a SharedArrayBuffer (refused by `bufferProblem`): the plain accessor refuses those. @internal */
export const isShared = (backing: ArrayBufferLike): boolean => {
  try {
    plainByteLength.call(backing)
    return false
  } catch {
    return true
  }
}

/** Whether `backing`, a plain ArrayBuffer, is resizable (refused by `bufferProblem`). @internal */
export const isResizable = (backing: ArrayBufferLike): boolean => plainResizable?.call(backing) === true

/**
 * Permission bits: an integer in 0..0o7777.
 *
 * @since 0.1.0
 * @category validation
 */
export const mode = (operation: string, value: number, argument = "mode"): Either.Either<number, InvalidArgument> => {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return refuse(operation, argument, `must be an integer (got ${shown(value)})`)
  }
  if (value < 0 || value > 0o7777) {
    return refuse(operation, argument, `must be between 0 and 0o7777 (got ${value < 0 ? value : `0o${value.toString(8)}`})`)
  }
  return Either.right(value + 0)
}

// Shared by every call without options (a stat storm's): nothing reads it but to look a field up.
const noOptions: Either.Either<{}, never> = Either.right(Object.freeze({}))

/**
 * An options argument: an object, or `undefined` / `null` for the defaults. Anything else is refused rather than
 * read as the defaults: a Node habit such as `open(path, "w")` would otherwise open for reading.
 *
 * Each field named in `booleans` must be absent or a boolean: `{ sync: 1 }` or `{ followSymlinks: "false" }`
 * would otherwise be read as something the caller did not mean (no O_SYNC, a followed link).
 *
 * @since 0.1.0
 * @category validation
 */
export const options = <A extends object>(
  operation: string,
  value: A | null | undefined,
  booleans: ReadonlyArray<keyof A & string> = []
): Either.Either<Partial<A>, InvalidArgument> => {
  if (value === undefined || value === null) return noOptions
  if (typeof value !== "object") {
    return refuse(operation, "options", `must be an object (got ${shown(value)})`)
  }
  for (const key of booleans) {
    const field: unknown = value[key]
    if (field !== undefined && typeof field !== "boolean") {
      return refuse(operation, key, `must be a boolean (got ${shown(field)})`)
    }
  }
  return Either.right(value)
}

/**
 * Raw `O_*` bits for open(2): a non-negative 32-bit integer. Which bits the kernel accepts is its to say.
 *
 * @since 0.1.0
 * @category validation
 */
export const openBits = (operation: string, value: number, argument = "flags"): Either.Either<number, InvalidArgument> =>
  fd(operation, value, argument)

/**
 * One of Node's open flag strings (`"r"`, `"w+"`, `"ax"`, ...).
 *
 * @since 0.1.0
 * @category validation
 */
export const openFlag = (operation: string, value: string, argument = "flag"): Either.Either<OpenFlag, InvalidArgument> =>
  isOpenFlag(value)
    ? Either.right(value)
    : refuse(operation, argument, `must be one of r, r+, w, wx, w+, wx+, a, ax, a+, ax+ (got ${shown(value)})`)
