/**
 * effect-uring: Linux io_uring file I/O for Effect programs.
 *
 * @since 0.1.0
 */
export {
  AlreadyExists,
  BadDescriptor,
  Busy,
  Canceled,
  CrossDevice,
  DirectoryNotEmpty,
  Escape,
  fromErrno,
  InvalidArgument,
  InvalidConfig,
  InvalidInput,
  IsADirectory,
  type KernelError,
  NameTooLong,
  NoSpace,
  NotADirectory,
  NotFound,
  NotSupported,
  PermissionDenied,
  ReadOnlyFileSystem,
  RingClosed,
  RingUnavailable,
  TooManyOpenFiles,
  TooManySymlinks,
  UnexpectedEof,
  Unknown,
  type UringError,
  WriteZero
} from "./errors/UringError.js"
export { codeOf, errnoOf } from "./errors/errno.js"
export type { ConfinedDir } from "./services/ConfinedDir.js"
export * from "./services/Flags.js"
export * from "./services/Handles.js"
export { FileType, fromStatx, Metadata, STATX_ALL_MASK, STATX_BASIC_STATS, STATX_BTIME, STATX_SIZE } from "./services/Metadata.js"
export { make, type RenameOptions, Uring, type UringShape } from "./services/Uring.js"
export { fromEnv as uringConfigFromEnv, UringConfig, type UringConfigInput, validate as validateUringConfig } from "./services/UringConfig.js"
export * as UringFileSystem from "./platform/UringFileSystem.js"
