/**
 * `@effect/platform`'s `FileSystem` on io_uring. Provide `UringFileSystem.layerLive` (or `layer` with your own
 * `Uring`) instead of `NodeFileSystem.layer` and the same program runs its file I/O through a ring.
 *
 * Members with an io_uring operation use the ring (open and the `File` it returns, readFile, writeFile, stat,
 * truncate, remove, makeDirectory, link, symlink, copy, the temp files and directories, stream, sink, exists and
 * access); the others (readDirectory, readLink, realPath, chmod, chown, utimes, watch, access with
 * `readable`/`writable`, copyFile, which libuv does inside the kernel, and rename, which libuv's threads do faster
 * than io_uring's kernel workers) are Node's own implementation from `@effect/platform-node-shared`.
 *
 * @since 0.1.0
 */
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import { Config, Effect, Layer, Option } from "effect"
import type { Scope } from "effect"
import type { InvalidConfig, RingUnavailable } from "../errors/UringError.js"
import type { Advice } from "../services/Flags.js"
import { make as makeRing, Uring, type UringShape } from "../services/Uring.js"
import type { UringConfigInput } from "../services/UringConfig.js"
import * as internalFile from "./internal/file.js"
import * as internal from "./internal/fileSystem.js"

/**
 * The `File` that `open` returns: the platform's `File` (cursor semantics exactly as Node's implementation) plus the
 * ring's positional and hinting operations, none of which moves the cursor.
 *
 * @since 0.1.0
 * @category models
 */
export interface UringFile extends FileSystem.File {
  /** The path the file was opened with. */
  readonly path: string
  /** Reads into `buffer` at `offset`; succeeds with the bytes read (0 at end of file). */
  readonly readAt: (buffer: Uint8Array, offset: FileSystem.SizeInput) => Effect.Effect<FileSystem.Size, PlatformError.PlatformError>
  /** Reads up to `size` bytes at `offset`; `None` at end of file. */
  readonly readAllocAt: (
    size: FileSystem.SizeInput,
    offset: FileSystem.SizeInput
  ) => Effect.Effect<Option.Option<Uint8Array>, PlatformError.PlatformError>
  /** One write of `buffer` at `offset`; succeeds with the bytes written (possibly fewer). */
  readonly writeAt: (buffer: Uint8Array, offset: FileSystem.SizeInput) => Effect.Effect<FileSystem.Size, PlatformError.PlatformError>
  /**
   * Writes all of `buffer` at `offset`, failing with reason `WriteZero` if the kernel writes nothing. A kernel error
   * says in its description how many bytes of `buffer` were written before it (its cause, in `written`).
   */
  readonly writeAllAt: (buffer: Uint8Array, offset: FileSystem.SizeInput) => Effect.Effect<void, PlatformError.PlatformError>
  /** fdatasync: the data (and the metadata needed to read it) reaches the device. */
  readonly datasync: Effect.Effect<void, PlatformError.PlatformError>
  /** fallocate: reserves `length` bytes at `offset`, extending the file unless `keepSize`. */
  readonly allocate: (
    offset: FileSystem.SizeInput,
    length: FileSystem.SizeInput,
    options?: { readonly keepSize?: boolean }
  ) => Effect.Effect<void, PlatformError.PlatformError>
  /** posix_fadvise over `length` bytes at `offset` (0 and 0: the whole file). */
  readonly advise: (
    advice: Advice,
    offset?: FileSystem.SizeInput,
    length?: FileSystem.SizeInput
  ) => Effect.Effect<void, PlatformError.PlatformError>
}

/**
 * Whether a `File` came from the io_uring file system (and so offers the {@link UringFile} extras).
 *
 * @since 0.1.0
 * @category guards
 */
export const isUringFile = (file: FileSystem.File): file is UringFile =>
  typeof file === "object" && file !== null && internalFile.UringFileTypeId in file

/**
 * Whether a `FileSystem` service is the io_uring one (for instance, which one `layerWithFallback` chose).
 *
 * @since 0.1.0
 * @category guards
 */
export const isUringFileSystem: (fileSystem: FileSystem.FileSystem) => boolean = internal.isUringFileSystem

/**
 * Builds the file system over a given ring's operations; the members io_uring has no operation for, or does slower,
 * use Node's implementation.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromUring = (uring: UringShape): Effect.Effect<FileSystem.FileSystem> =>
  Effect.map(
    Effect.provide(FileSystem.FileSystem, NodeFileSystem.layer),
    (node) => internal.make(uring, node)
  )

/**
 * The file system over the `Uring` service in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<FileSystem.FileSystem, never, Uring> = Effect.flatMap(Uring, fromUring)

/**
 * Provides `FileSystem.FileSystem` through the `Uring` service in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<FileSystem.FileSystem, never, Uring> = Layer.effect(FileSystem.FileSystem, make)

/**
 * Provides `FileSystem.FileSystem` on a ring of its own with the given settings (defaults if none), closed when the
 * layer's scope ends. Fails with `RingUnavailable` where io_uring is blocked; see {@link layerWithFallback}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: UringConfigInput = {}
): Layer.Layer<FileSystem.FileSystem, RingUnavailable | InvalidConfig> => layer.pipe(Layer.provide(Uring.layer(config)))

/**
 * Provides `FileSystem.FileSystem` on a default ring (`Uring.layer()`).
 *
 * @example
 * ```ts
 * import { FileSystem } from "@effect/platform"
 * import { Effect } from "effect"
 * import { UringFileSystem } from "effect-uring"
 *
 * const program = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString("/etc/hostname"))
 * Effect.runPromise(program.pipe(Effect.provide(UringFileSystem.layerLive)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLive: Layer.Layer<FileSystem.FileSystem, RingUnavailable | InvalidConfig> = layerConfig()

const truthy = (value: string): boolean => ["1", "true", "yes", "on"].includes(value.trim().toLowerCase())

/**
 * The io_uring file system where a ring can be created with `config`, Node's otherwise; the choice and its reason
 * are logged once, when the layer is built: io_uring unavailable (`RingUnavailable`), or a ring configuration that
 * the settings' Schema or the kernel refuses (`InvalidConfig`). `URING_DISABLE=1` (read through Effect's `Config`)
 * forces Node's.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWithFallback = (
  config: UringConfigInput = {}
): Effect.Effect<FileSystem.FileSystem, never, Scope.Scope> =>
  Effect.gen(function*() {
    const node = Effect.provide(FileSystem.FileSystem, NodeFileSystem.layer)
    const disable = yield* Config.option(Config.string("URING_DISABLE")).pipe(
      Effect.orElseSucceed(() => Option.none<string>())
    )
    if (Option.isSome(disable) && truthy(disable.value)) {
      yield* Effect.logInfo(
        `UringFileSystem: using Node's FileSystem because URING_DISABLE=${disable.value} forces the fallback`
      )
      return yield* node
    }
    const ring = yield* Effect.either(makeRing(config))
    if (ring._tag === "Left") {
      // InvalidConfig falls back too: the engine reports a kernel's EINVAL at setup that way, which
      // kernels before 5.6 give for the default settings. The log says which of the two it was.
      const why = ring.left._tag === "InvalidConfig" ? "the ring configuration is invalid" : "io_uring is unavailable"
      yield* Effect.logWarning(`UringFileSystem: using Node's FileSystem because ${why}: ${ring.left.message}`)
      return yield* node
    }
    yield* Effect.logInfo(`UringFileSystem: using io_uring (ring ${ring.right.ringId})`)
    return yield* fromUring(ring.right)
  })

/**
 * Provides `FileSystem.FileSystem` on io_uring where a ring can be created, and Node's implementation where it cannot
 * (Docker's default seccomp profile, gVisor, `kernel.io_uring_disabled`, old kernels), saying once in the log which it
 * chose and why. Setting `URING_DISABLE=1` forces Node's.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithFallback: Layer.Layer<FileSystem.FileSystem> = Layer.scoped(
  FileSystem.FileSystem,
  makeWithFallback()
)

/**
 * {@link layerWithFallback} with ring settings.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithFallbackConfig = (config: UringConfigInput): Layer.Layer<FileSystem.FileSystem> =>
  Layer.scoped(FileSystem.FileSystem, makeWithFallback(config))
