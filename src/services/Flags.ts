/**
 * Linux flag values (x86_64 / asm-generic numbering) and the open options built from them.
 *
 * @since 0.1.0
 */

/**
 * `open(2)` flags.
 *
 * @since 0.1.0
 * @category constants
 */
export const OpenFlags = {
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_RDWR: 2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_NOCTTY: 0o400,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_NONBLOCK: 0o4000,
  O_DSYNC: 0o10000,
  O_DIRECT: 0o40000,
  O_LARGEFILE: 0o100000,
  O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000,
  O_NOATIME: 0o1000000,
  O_CLOEXEC: 0o2000000,
  // O_SYNC includes the O_DSYNC bit, as in the kernel headers.
  O_SYNC: 0o4010000,
  O_PATH: 0o10000000,
  // O_TMPFILE includes O_DIRECTORY, as in the kernel headers.
  O_TMPFILE: 0o20200000
} as const

/**
 * Flags of the `*at(2)` calls and of `statx(2)`.
 *
 * @since 0.1.0
 * @category constants
 */
export const AtFlags = {
  AT_FDCWD: -100,
  AT_SYMLINK_NOFOLLOW: 0x100,
  AT_REMOVEDIR: 0x200,
  AT_SYMLINK_FOLLOW: 0x400,
  AT_NO_AUTOMOUNT: 0x800,
  AT_EMPTY_PATH: 0x1000,
  AT_STATX_SYNC_AS_STAT: 0,
  AT_STATX_FORCE_SYNC: 0x2000,
  AT_STATX_DONT_SYNC: 0x4000
} as const

/**
 * `renameat2(2)` flags.
 *
 * @since 0.1.0
 * @category constants
 */
export const RenameFlags = {
  RENAME_NOREPLACE: 1,
  RENAME_EXCHANGE: 2,
  RENAME_WHITEOUT: 4
} as const

/**
 * `posix_fadvise(2)` / `madvise(2)` advice values (POSIX_FADV_*).
 *
 * @since 0.1.0
 * @category constants
 */
export const Advice = {
  Normal: 0,
  Random: 1,
  Sequential: 2,
  WillNeed: 3,
  DontNeed: 4,
  NoReuse: 5
} as const

/**
 * Advice about the expected access pattern, by name.
 *
 * @since 0.1.0
 * @category models
 */
export type Advice = "normal" | "random" | "sequential" | "willNeed" | "dontNeed" | "noReuse"

const adviceValues: Readonly<Record<Advice, number>> = {
  normal: Advice.Normal,
  random: Advice.Random,
  sequential: Advice.Sequential,
  willNeed: Advice.WillNeed,
  dontNeed: Advice.DontNeed,
  noReuse: Advice.NoReuse
}

/**
 * The kernel value of an advice name, e.g. `adviceValue("sequential") === 2`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const adviceValue = (advice: Advice): number => adviceValues[advice]

/**
 * `fallocate(2)` modes (FALLOC_FL_*).
 *
 * @since 0.1.0
 * @category constants
 */
export const FallocateMode = {
  KEEP_SIZE: 1,
  PUNCH_HOLE: 2,
  COLLAPSE_RANGE: 8,
  ZERO_RANGE: 0x10,
  INSERT_RANGE: 0x20
} as const

/**
 * `openat2(2)` resolve flags.
 *
 * @since 0.1.0
 * @category constants
 */
export const ResolveFlags = {
  RESOLVE_NO_XDEV: 1,
  RESOLVE_NO_MAGICLINKS: 2,
  RESOLVE_NO_SYMLINKS: 4,
  RESOLVE_BENEATH: 8,
  RESOLVE_IN_ROOT: 0x10,
  RESOLVE_CACHED: 0x20
} as const

/**
 * Node's open flag strings, with Node's meanings.
 *
 * @since 0.1.0
 * @category models
 */
export type OpenFlag = "r" | "r+" | "w" | "wx" | "w+" | "wx+" | "a" | "ax" | "a+" | "ax+"

/**
 * Options of an open.
 *
 * @since 0.1.0
 * @category models
 */
export interface OpenOptions {
  /** Access and creation, as in Node. Default `"r"`. */
  readonly flag?: OpenFlag
  /** Permission bits of a created file, before the umask. Default `0o666`. */
  readonly mode?: number
  /** O_DIRECT: bypass the page cache (buffers, offsets and lengths must then be aligned). */
  readonly direct?: boolean
  /** O_SYNC: each write waits for data and metadata to reach the device. */
  readonly sync?: boolean
  /** O_DSYNC: each write waits for data (and the metadata needed to read it) to reach the device. */
  readonly dsync?: boolean
  /** O_NOFOLLOW: fail with TooManySymlinks if the last component is a symbolic link. */
  readonly noFollow?: boolean
  /** O_DIRECTORY: fail with NotADirectory unless the path is a directory. */
  readonly directory?: boolean
  /** O_NOATIME: do not update the access time (owner or CAP_FOWNER only). */
  readonly noAtime?: boolean
  /** Raw O_* bits OR-ed into the result, for experts. */
  readonly flags?: number
}

/**
 * The permission bits of a created file when {@link OpenOptions} gives no `mode` (Node's default).
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_OPEN_MODE = 0o666

const O = OpenFlags

const flagBits: Readonly<Record<OpenFlag, number>> = {
  "r": O.O_RDONLY,
  "r+": O.O_RDWR,
  "w": O.O_TRUNC | O.O_CREAT | O.O_WRONLY,
  "wx": O.O_TRUNC | O.O_CREAT | O.O_WRONLY | O.O_EXCL,
  "w+": O.O_TRUNC | O.O_CREAT | O.O_RDWR,
  "wx+": O.O_TRUNC | O.O_CREAT | O.O_RDWR | O.O_EXCL,
  "a": O.O_APPEND | O.O_CREAT | O.O_WRONLY,
  "ax": O.O_APPEND | O.O_CREAT | O.O_WRONLY | O.O_EXCL,
  "a+": O.O_APPEND | O.O_CREAT | O.O_RDWR,
  "ax+": O.O_APPEND | O.O_CREAT | O.O_RDWR | O.O_EXCL
}

/**
 * Whether a value is one of the {@link OpenFlag} strings.
 *
 * @since 0.1.0
 * @category guards
 */
export const isOpenFlag = (value: unknown): value is OpenFlag =>
  typeof value === "string" && Object.prototype.hasOwnProperty.call(flagBits, value)

/**
 * The {@link OpenOptions} fields that are switches: each is a boolean or absent.
 *
 * @since 0.1.0
 * @category constants
 */
export const openSwitches: ReadonlyArray<keyof OpenOptions & string> = ["direct", "sync", "dsync", "noFollow", "directory", "noAtime"]

/**
 * The `open(2)` flags for some options. O_CLOEXEC is always added: a descriptor of this library should not leak into
 * child processes. An unknown `flag` string throws a TypeError (check untrusted input with {@link isOpenFlag} first).
 *
 * @since 0.1.0
 * @category constructors
 */
export const openFlagsOf = (options: OpenOptions = {}): number => {
  const flag = options.flag ?? "r"
  if (!isOpenFlag(flag)) {
    throw new TypeError(`unknown open flag ${JSON.stringify(flag)}`)
  }
  let bits = flagBits[flag] | O.O_CLOEXEC
  if (options.direct === true) bits |= O.O_DIRECT
  if (options.sync === true) bits |= O.O_SYNC
  if (options.dsync === true) bits |= O.O_DSYNC
  if (options.noFollow === true) bits |= O.O_NOFOLLOW
  if (options.directory === true) bits |= O.O_DIRECTORY
  if (options.noAtime === true) bits |= O.O_NOATIME
  if (options.flags !== undefined) bits |= options.flags
  return bits
}
