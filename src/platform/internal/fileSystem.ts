/**
 * `@effect/platform`'s `FileSystem` on a ring. Members with an io_uring operation go through the ring; the others
 * (directory listing, copyFile, rename, readlink, realpath, chmod, chown, utimes, watch, permission checks) are
 * Node's: io_uring has no operation for them, or does them slower (copyFile, rename).
 *
 * @internal
 */
import * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Either, Option, type Scope, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as OS from "node:os"
import * as Path from "node:path"
import { fromErrno, type UringError } from "../../errors/UringError.js"
import type { Metadata } from "../../services/Metadata.js"
import type { UringShape } from "../../services/Uring.js"
import type { UringFile } from "../UringFileSystem.js"
import { remap, systemError, toPlatformError } from "./errors.js"
import { makeFile, readBuffer, ringData, truncatedLength } from "./file.js"
import { toInfo } from "./info.js"
import { readChunks } from "./stream.js"

/** @internal */
export const UringFileSystemTypeId: unique symbol = Symbol.for("effect-uring/UringFileSystem")

/** Entries removed or copied at once in a tree. */
const TREE_CONCURRENCY = 8
const ENOTDIR = 20
const EPERM = 1
const EINVAL = 22
/** What a path's lookup fails with: errors Node's lstat before a remove reports. */
const LOOKUP_CODES: ReadonlySet<string> = new Set(["ENOENT", "ENOTDIR", "ELOOP", "ENAMETOOLONG"])
const TEMP_ATTEMPTS = 100

const TEMP_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

const randomName = (length: number): string => {
  const bytes = Crypto.randomBytes(length)
  let name = ""
  for (const byte of bytes) name += TEMP_CHARS[byte % TEMP_CHARS.length]
  return name
}

const sameFile = (a: Metadata, b: Metadata): boolean =>
  a.ino === b.ino && a.devMajor === b.devMajor && a.devMinor === b.devMinor

/** Nanoseconds since the epoch as seconds, as `utimes` takes them (a double: within a microsecond). */
const seconds = (nanos: bigint): number => Number(nanos) / 1e9

// Node's cp: whether `dest` is `src` or below it, component by component.
const isSrcSubdir = (src: string, dest: string): boolean => {
  const srcParts = Path.resolve(src).split(Path.sep).filter((part) => part !== "")
  const destParts = Path.resolve(dest).split(Path.sep).filter((part) => part !== "")
  return srcParts.every((part, i) => destParts[i] === part)
}

/**
 * A mode as Node takes it: any uint32, of which the kernel keeps the permission bits (`Uring` refuses the rest, so
 * they are dropped here). Anything else goes on to be refused.
 */
const modeOf = (mode: number | undefined, fallback: number): number => {
  const given = mode ?? fallback
  return given >>> 0 === given ? given & 0o7777 : given
}

/**
 * Builds the file system over one ring, delegating what io_uring cannot do to `node` (Node's implementation).
 *
 * @internal
 */
export const make = (uring: UringShape, node: FileSystem.FileSystem): FileSystem.FileSystem => {
  // == open

  const openFactory = (method: string) => (path: string, options?: FileSystem.OpenFileOptions) => {
    const flag = options?.flag ?? "r"
    return uring.open(path, { flag, mode: modeOf(options?.mode, 0o666) }).pipe(
      Effect.mapError(toPlatformError(method, path)),
      Effect.map((handle): UringFile => makeFile(uring, handle, flag.startsWith("a")))
    )
  }
  const open = openFactory("open")

  // == access / stat

  const access = (path: string, options?: FileSystem.AccessFileOptions) =>
    options?.readable || options?.writable
      // Permission checks against the real uid are access(2)'s alone: Node's.
      ? node.access(path, options)
      : uring.access(path).pipe(Effect.mapError(toPlatformError("access", path)))

  const stat = (path: string) => uring.stat(path).pipe(Effect.map(toInfo), Effect.mapError(toPlatformError("stat", path)))

  // == readFile

  // One engine op (open, read, close) for files that fit its first read; larger ones are re-read with room.
  const readFile = (path: string) =>
    uring.readFile(path).pipe(Effect.map(readBuffer), Effect.mapError(toPlatformError("readFile", path)))

  // == writeFile / truncate

  // One engine op (open, write, close), as readFile.
  const writeFile = (path: string, data: Uint8Array, options?: FileSystem.WriteFileOptions) =>
    uring.writeFile(path, ringData(data), { flag: options?.flag ?? "w", mode: modeOf(options?.mode, 0o666) })
      .pipe(Effect.mapError(toPlatformError("writeFile", path)))

  // `withFile`, not a Scope: Effect's scoped acquire/release alone costs about 25 µs per call here.
  const truncate = (path: string, length?: FileSystem.SizeInput) =>
    uring.withFile(path, { flag: "r+" }, (handle) => uring.ftruncate(handle, truncatedLength(length)))
      .pipe(Effect.mapError(toPlatformError("truncate", path)))

  // == rename / link / symlink

  /**
   * Node's, deliberately: rename(2) cannot complete without blocking, so io_uring hands every one to a kernel worker,
   * and those workers finish fewer of them than libuv's four threads. Measured here, a native loop of 20,000 renames
   * of fresh files 16 deep, a ring and four threads alternating (ABBA, 6 rounds): the ring ran 0.61-0.70x the threads'
   * rate (45-73k against 72-109k per second); capping the ring's kernel workers at 1, 2 or 4 did not change it.
   * `Uring.rename` is the ring's.
   */
  const rename = node.rename

  const link = (existingPath: string, newPath: string) =>
    uring.link(existingPath, newPath).pipe(Effect.mapError(toPlatformError("link", existingPath, { from: existingPath, to: newPath })))

  const symlink = (target: string, path: string) =>
    uring.symlink(target, path).pipe(Effect.mapError(toPlatformError("symlink", target, { target, path })))

  // == makeDirectory

  /** mkdir -p: creates missing parents; an existing directory (or a link to one) is fine. */
  const mkdirp = (path: string, mode: number, isParent = false): Effect.Effect<void, UringError> => {
    /**
     * mkdir said EEXIST: done if a directory is there (through symlinks). Else, as Node's mkdirp reports it: for a
     * parent of the path asked for, ENOTDIR; for that path, EEXIST, or what its stat says (a dangling link: ENOENT).
     */
    const existing = (error: UringError) =>
      uring.stat(path).pipe(
        Effect.matchEffect({
          onFailure: (statError) => Effect.fail(isParent ? notADirectory(path) : statError),
          onSuccess: (meta) => meta.isDirectory ? Effect.void : Effect.fail(isParent ? notADirectory(path) : error)
        })
      )
    return uring.mkdir(path, mode).pipe(
      Effect.catchTags({
        AlreadyExists: existing,
        NotFound: (error) => {
          const parent = Path.dirname(path)
          if (parent === path) return Effect.fail(error)
          return mkdirp(parent, mode, true).pipe(
            Effect.zipRight(uring.mkdir(path, mode)),
            Effect.catchTag("AlreadyExists", existing)
          )
        }
      })
    )
  }

  const notADirectory = (path: string): UringError => fromErrno(ENOTDIR, { operation: "mkdir", path })

  const makeDirectory = (path: string, options?: FileSystem.MakeDirectoryOptions) => {
    const mode = modeOf(options?.mode, 0o777)
    return (options?.recursive ? mkdirp(path, mode) : uring.mkdir(path, mode)).pipe(
      Effect.mapError(toPlatformError("makeDirectory", path))
    )
  }

  // == remove

  /** Lists a directory with Node (io_uring has no getdents), reporting errors as `method` on `root`. */
  const list = (dir: string, method: string, root: string) =>
    node.readDirectory(dir).pipe(Effect.mapError(remap(method, root)))

  /** Whether `error` says `path` is not there: ENOENT, or the empty path, which Node's kernel call reports so. */
  const isMissing = (error: UringError, path: string): boolean => {
    const failed = toPlatformError("remove", path)(error)
    return failed._tag === "SystemError" && failed.reason === "NotFound"
  }

  /**
   * A failed unlink or rmdir of `path` as Node reports it: Node lstats the path it is given
   * first, so that lstat is what fails to look the path up.
   */
  const removeFailed = (method: string, root: string, path: string, error: UringError) =>
    toPlatformError(method, root, undefined, path === root && "code" in error && LOOKUP_CODES.has(error.code) ? "lstat" : undefined)(
      error
    )

  /**
   * `error` of a failed unlink or rmdir of `path`, unless an lstat after it tells more: EROFS,
   * EACCES and EPERM come before the kernel looks the name up, where Node, which lstats first,
   * reports a missing path (fine if `missingOk`) or, through `orDirectory`, a directory.
   */
  const unlessMissing = (
    path: string,
    method: string,
    root: string,
    missingOk: boolean,
    error: UringError,
    orDirectory?: () => Effect.Effect<void, PlatformError.PlatformError>
  ): Effect.Effect<void, PlatformError.PlatformError> => {
    const failed = () => Effect.fail(removeFailed(method, root, path, error))
    return isMissing(error, path)
      ? failed()
      : Effect.flatMap(Effect.either(uring.stat(path, { followSymlinks: false })), (found) => {
        if (Either.isRight(found)) return found.right.type === "Directory" ? (orDirectory ?? failed)() : failed()
        if (isMissing(found.left, path)) {
          return missingOk ? Effect.void : Effect.fail(removeFailed(method, root, path, found.left))
        }
        return failed()
      })
  }

  /** Node's error for a directory given to `remove` without `recursive`. */
  const isADirectory = (method: string, root: string) =>
    Effect.fail(systemError(method, root, "Unknown", "rm", `Path is a directory: rm returned EISDIR (is a directory) ${root}`))

  /**
   * unlink(2) of a directory is EISDIR on Linux, so a file or a link goes in one op, with no stat
   * first; a directory is removed with its tree when `recursive`.
   */
  const removeEntry = (
    path: string,
    method: string,
    root: string,
    missingOk: boolean,
    recursive: boolean
  ): Effect.Effect<void, PlatformError.PlatformError> =>
    uring.unlink(path).pipe(Effect.catchAll((error) => {
      if (missingOk && isMissing(error, path)) return Effect.void
      const directory = () => recursive ? removeDir(path, method, root, true, false) : isADirectory(method, root)
      if (error._tag === "IsADirectory") return directory()
      return unlessMissing(path, method, root, missingOk, error, directory)
    }))

  /**
   * rmdir: one op when the directory is empty; a full one is listed and emptied first, and so is
   * one rmdir refuses with EPERM or EEXIST, as Node's rimraf does (a sticky directory whose entries
   * are the caller's to remove). With `orFile`, a file or a link (ENOTDIR) is unlinked instead.
   */
  const removeDir = (
    dir: string,
    method: string,
    root: string,
    missingOk: boolean,
    orFile: boolean
  ): Effect.Effect<void, PlatformError.PlatformError> =>
    uring.rmdir(dir).pipe(Effect.catchAll((error) => {
      if (missingOk && isMissing(error, dir)) return Effect.void
      if (error._tag === "DirectoryNotEmpty" || error._tag === "AlreadyExists" || ("errno" in error && error.errno === EPERM)) {
        return emptyAndRemove(dir, method, root)
      }
      if (error._tag === "NotADirectory" && orFile) return removeEntry(dir, method, root, missingOk, true)
      return unlessMissing(dir, method, root, missingOk, error)
    }))

  /** Removes everything below `dir` and `dir` itself; entries that vanish meanwhile are fine (as in Node's rimraf). */
  const emptyAndRemove = (dir: string, method: string, root: string): Effect.Effect<void, PlatformError.PlatformError> =>
    list(dir, method, root).pipe(
      Effect.catchIf(
        (error) => error._tag === "SystemError" && error.reason === "NotFound",
        () => Effect.succeed<Array<string>>([])
      ),
      Effect.flatMap((names) =>
        Effect.forEach(names, (name) => removeEntry(Path.join(dir, name), method, root, true, true), {
          concurrency: TREE_CONCURRENCY,
          discard: true
        })
      ),
      Effect.zipRight(uring.rmdir(dir).pipe(
        Effect.catchTag("NotFound", () => Effect.void),
        Effect.mapError(toPlatformError(method, root))
      ))
    )

  /**
   * Without `recursive` the path is most likely a file: unlink first. With it, most likely a
   * directory: rmdir first, one op when it is empty.
   */
  const removeFactory = (method: string) => (path: string, options?: FileSystem.RemoveOptions) => {
    if (!options?.recursive) return removeEntry(path, method, path, options?.force ?? false, false)
    // rmdir of `dir/..` fails ENOTEMPTY, and emptying it would remove the tree of the directory
    // above: refused as `dir/.` is (EINVAL), where rm(1) refuses both.
    if (typeof path === "string" && Path.basename(path) === "..") {
      return Effect.fail(toPlatformError(method, path)(fromErrno(EINVAL, { operation: "rmdir", path })))
    }
    return removeDir(path, method, path, options.force ?? false, true)
  }
  const remove = removeFactory("remove")

  // == copyFile

  /**
   * Node's, deliberately: libuv copies with FICLONE, then copy_file_range, inside the kernel, and io_uring has
   * neither, so a copy through the ring moves every byte through this process (with a write punted to a kernel worker
   * per piece). Measured here: small files 0.17x Node's rate, a 64 MiB file 1.5-5x Node's time.
   */
  const copyFile = node.copyFile

  // == copy (Node's fs.cp with recursive: true, errorOnExist: false, dereference: false)

  const copy = (fromPath: string, toPath: string, options?: FileSystem.CopyOptions) => {
    const force = options?.overwrite ?? false
    const preserveTimestamps = options?.preserveTimestamps ?? false
    const fail = toPlatformError("copy", fromPath)
    const again = remap("copy", fromPath)
    const cpError = (title: string, code: string, message: string, path: string) =>
      systemError("copy", fromPath, "Unknown", "cp", `${title}: cp returned ${code} (${message}) ${path}`)

    const lstatFailed = toPlatformError("copy", fromPath, undefined, "lstat")
    const lstat = (path: string) => uring.stat(path, { followSymlinks: false }).pipe(Effect.mapError(lstatFailed))
    const lstatOrNone = (path: string) =>
      uring.stat(path, { followSymlinks: false }).pipe(
        Effect.map(Option.some),
        Effect.catchTag("NotFound", () => Effect.succeed(Option.none<Metadata>())),
        Effect.mapError(lstatFailed)
      )

    const checkPaths = (src: string, dest: string) =>
      Effect.gen(function*() {
        const [srcMeta, destMeta] = yield* Effect.all([lstat(src), lstatOrNone(dest)], { concurrency: 2 })
        if (Option.isSome(destMeta)) {
          if (sameFile(srcMeta, destMeta.value)) {
            return yield* cpError("Invalid src or dest", "EINVAL", "src and dest cannot be the same", dest)
          }
          if (srcMeta.isDirectory && !destMeta.value.isDirectory) {
            return yield* cpError(
              "Cannot overwrite non-directory with directory",
              "EISDIR",
              `cannot overwrite non-directory ${dest} with directory ${src}`,
              dest
            )
          }
          if (!srcMeta.isDirectory && destMeta.value.isDirectory) {
            return yield* cpError(
              "Cannot overwrite directory with non-directory",
              "ENOTDIR",
              `cannot overwrite directory ${dest} with non-directory ${src}`,
              dest
            )
          }
        }
        if (srcMeta.isDirectory && isSrcSubdir(src, dest)) {
          return yield* cpError("Invalid src or dest", "EINVAL", `cannot copy ${src} to a subdirectory of self ${dest}`, dest)
        }
        return { srcMeta, destMeta }
      })

    /**
     * Node's `checkParentPaths`: none of dest's parents that exist, up to src's parent or the
     * root, may be src itself, however reached: a symlink into src would otherwise make the copy
     * recurse into its own output until the path is too long.
     */
    const checkParentPaths = (src: string, srcMeta: Metadata, dest: string): Effect.Effect<void, PlatformError.PlatformError> => {
      const destParent = Path.resolve(Path.dirname(dest))
      if (destParent === Path.resolve(Path.dirname(src)) || destParent === Path.parse(destParent).root) return Effect.void
      return uring.stat(destParent).pipe(
        Effect.matchEffect({
          onFailure: (error) => error._tag === "NotFound" ? Effect.void : Effect.fail(fail(error)),
          onSuccess: (meta) =>
            sameFile(srcMeta, meta)
              ? cpError("Invalid src or dest", "EINVAL", `cannot copy ${src} to a subdirectory of self ${dest}`, dest)
              : checkParentPaths(src, srcMeta, destParent)
        })
      )
    }

    const finishFile = (srcMeta: Metadata, src: string, dest: string) =>
      Effect.gen(function*() {
        if (!preserveTimestamps) return
        if ((srcMeta.mode & 0o200) === 0) yield* node.chmod(dest, srcMeta.permissions | 0o200).pipe(Effect.mapError(again))
        // Fresh times: reading the source has just changed its atime. Given as seconds, kept to
        // within a microsecond where a Date would cut them to the millisecond.
        const fresh = yield* uring.stat(src).pipe(Effect.mapError(fail))
        yield* node.utimes(dest, seconds(fresh.atimeNs), seconds(fresh.mtimeNs)).pipe(Effect.mapError(again))
        yield* node.chmod(dest, srcMeta.permissions).pipe(Effect.mapError(again))
      })

    const copyOneFile = (srcMeta: Metadata, src: string, dest: string) =>
      node.copyFile(src, dest).pipe(
        Effect.mapError(again),
        Effect.zipRight(finishFile(srcMeta, src, dest))
      )

    const onFile = (srcMeta: Metadata, destMeta: Option.Option<Metadata>, src: string, dest: string) =>
      Option.isNone(destMeta)
        ? copyOneFile(srcMeta, src, dest)
        : force
        ? uring.unlink(dest).pipe(Effect.mapError(fail), Effect.zipRight(copyOneFile(srcMeta, src, dest)))
        : Effect.void

    const readLink = (path: string) => node.readLink(path).pipe(Effect.mapError(again))

    const onLink = (destMeta: Option.Option<Metadata>, src: string, dest: string) =>
      Effect.gen(function*() {
        let resolvedSrc = yield* readLink(src)
        if (!Path.isAbsolute(resolvedSrc)) resolvedSrc = Path.resolve(Path.dirname(src), resolvedSrc)
        const makeLink = uring.symlink(resolvedSrc, dest).pipe(Effect.mapError(fail))
        if (Option.isNone(destMeta)) return yield* makeLink
        if (!destMeta.value.isSymbolicLink) {
          // Node's readlink of the existing non-link fails with EINVAL, after which it tries the symlink anyway.
          return yield* makeLink
        }
        let resolvedDest = yield* readLink(dest)
        if (!Path.isAbsolute(resolvedDest)) resolvedDest = Path.resolve(Path.dirname(dest), resolvedDest)
        if (isSrcSubdir(resolvedSrc, resolvedDest)) {
          return yield* cpError(
            "Invalid src or dest",
            "EINVAL",
            `cannot copy ${resolvedSrc} to a subdirectory of self ${resolvedDest}`,
            dest
          )
        }
        const target = yield* uring.stat(src).pipe(Effect.mapError(fail))
        if (target.isDirectory && isSrcSubdir(resolvedDest, resolvedSrc)) {
          return yield* cpError(
            "Cannot overwrite symlink in subdirectory of self",
            "EINVAL",
            `cannot overwrite ${resolvedDest} with ${resolvedSrc}`,
            dest
          )
        }
        yield* uring.unlink(dest).pipe(Effect.mapError(fail))
        yield* makeLink
      })

    const copyDir = (src: string, dest: string): Effect.Effect<void, PlatformError.PlatformError> =>
      list(src, "copy", fromPath).pipe(
        Effect.flatMap((names) =>
          Effect.forEach(names, (name) => {
            const srcItem = Path.join(src, name)
            const destItem = Path.join(dest, name)
            return checkPaths(srcItem, destItem).pipe(
              Effect.flatMap(({ destMeta, srcMeta }) => copyEntry(srcMeta, destMeta, srcItem, destItem))
            )
          }, { concurrency: TREE_CONCURRENCY, discard: true })
        )
      )

    const onDir = (srcMeta: Metadata, destMeta: Option.Option<Metadata>, src: string, dest: string) =>
      Option.isSome(destMeta)
        ? copyDir(src, dest)
        : uring.mkdir(dest).pipe(
          Effect.mapError(fail),
          Effect.zipRight(copyDir(src, dest)),
          Effect.zipRight(node.chmod(dest, srcMeta.permissions).pipe(Effect.mapError(again)))
        )

    const copyEntry = (
      srcMeta: Metadata,
      destMeta: Option.Option<Metadata>,
      src: string,
      dest: string
    ): Effect.Effect<void, PlatformError.PlatformError> => {
      switch (srcMeta.type) {
        case "Directory":
          return onDir(srcMeta, destMeta, src, dest)
        case "File":
        case "CharacterDevice":
        case "BlockDevice":
          return onFile(srcMeta, destMeta, src, dest)
        case "SymbolicLink":
          return onLink(destMeta, src, dest)
        case "Socket":
          return cpError("Cannot copy a socket file", "EINVAL", `cannot copy a socket file: ${dest}`, dest)
        case "FIFO":
          return cpError("Cannot copy a FIFO pipe", "EINVAL", `cannot copy a FIFO pipe: ${dest}`, dest)
        default:
          return cpError("Cannot copy an unknown file type", "EINVAL", `cannot copy an unknown file type: ${dest}`, dest)
      }
    }

    return Effect.gen(function*() {
      const { destMeta, srcMeta } = yield* checkPaths(fromPath, toPath)
      yield* checkParentPaths(fromPath, srcMeta, toPath)
      const parent = Path.dirname(toPath)
      const parentExists = yield* uring.stat(parent).pipe(
        Effect.as(true),
        Effect.catchAll(() => Effect.succeed(false))
      )
      if (!parentExists) yield* mkdirp(parent, 0o777).pipe(Effect.mapError(fail))
      yield* copyEntry(srcMeta, destMeta, fromPath, toPath)
    })
  }

  // == temporary files and directories

  const makeTempDirectoryFactory = (method: string) => (options?: FileSystem.MakeTempDirectoryOptions) =>
    Effect.suspend(() => {
      const prefix = options?.prefix ?? ""
      const directory = typeof options?.directory === "string" ? Path.join(options.directory, ".") : OS.tmpdir()
      const template = prefix ? Path.join(directory, prefix) : directory + "/"
      const attempt = (left: number): Effect.Effect<string, UringError> => {
        const path = template + randomName(6)
        return uring.mkdir(path, 0o700).pipe(
          Effect.as(path),
          Effect.catchTag("AlreadyExists", (error) => left > 1 ? attempt(left - 1) : Effect.fail(error))
        )
      }
      return attempt(TEMP_ATTEMPTS).pipe(Effect.mapError(toPlatformError(method, template, undefined, "mkdtemp")))
    })
  const makeTempDirectory = makeTempDirectoryFactory("makeTempDirectory")

  /**
   * A temporary directory removed with all it holds: through the ring, or through Node once the
   * ring is closed (a runtime disposed while a scope holding the directory was still open), so
   * the directory goes as it would with Node's layer rather than stay behind a defect.
   */
  const removeTemp = (method: string) => (directory: string): Effect.Effect<void, PlatformError.PlatformError> =>
    removeFactory(method)(directory, { recursive: true }).pipe(
      Effect.catchIf(
        (error) => error._tag === "SystemError" && (error.cause as { readonly _tag?: unknown } | undefined)?._tag === "RingClosed",
        () => node.remove(directory, { recursive: true })
      )
    )

  const makeTempDirectoryScoped = (
    options?: FileSystem.MakeTempDirectoryOptions
  ): Effect.Effect<string, PlatformError.PlatformError, Scope.Scope> =>
    Effect.acquireRelease(
      makeTempDirectoryFactory("makeTempDirectoryScoped")(options),
      (directory) => Effect.orDie(removeTemp("makeTempDirectoryScoped")(directory))
    )

  // The directory is this call's alone: one whose file could not be made (or whose making was
  // interrupted) is removed rather than left behind, where Node's layer leaves it.
  const makeTempFileFactory = (method: string) => (options?: FileSystem.MakeTempFileOptions) =>
    Effect.flatMap(makeTempDirectoryFactory(method)(options), (directory) => {
      const path = Path.join(directory, Crypto.randomBytes(6).toString("hex") + (options?.suffix ?? ""))
      return Effect.scoped(openFactory(method)(path, { flag: "w+" })).pipe(
        Effect.onError(() => Effect.ignore(removeTemp(method)(directory))),
        Effect.as(path)
      )
    })
  const makeTempFile = makeTempFileFactory("makeTempFile")

  const makeTempFileScoped = (
    options?: FileSystem.MakeTempFileOptions
  ): Effect.Effect<string, PlatformError.PlatformError, Scope.Scope> =>
    Effect.acquireRelease(
      makeTempFileFactory("makeTempFileScoped")(options),
      (file) => Effect.orDie(removeTemp("makeTempFileScoped")(Path.dirname(file)))
    )

  /**
   * `exists` as the platform derives it from `access` (true; false where the error's reason is NotFound; any other
   * error fails), but a missing path's kernel error is caught as it is, not first converted to a `SystemError` only to
   * be caught: the usual answer for a missing path costs one ring op and one kernel error.
   */
  const exists = (path: string): Effect.Effect<boolean, PlatformError.PlatformError> =>
    uring.access(path).pipe(
      Effect.as(true),
      Effect.catchTag("NotFound", () => Effect.succeed(false)),
      Effect.mapError(toPlatformError("access", path)),
      Effect.catchTag("SystemError", (error) => error.reason === "NotFound" ? Effect.succeed(false) : Effect.fail(error))
    )

  // == stream

  const stream = (path: string, options?: FileSystem.StreamOptions): Stream.Stream<Uint8Array, PlatformError.PlatformError> =>
    Stream.unwrapScoped(
      uring.open(path, { flag: "r" }).pipe(
        Effect.mapError(toPlatformError("open", path)),
        Effect.flatMap((handle) => readChunks(uring, handle, options))
      )
    )

  const fileSystem = FileSystem.make({
    access,
    chmod: node.chmod,
    chown: node.chown,
    copy,
    copyFile,
    link,
    makeDirectory,
    makeTempDirectory,
    makeTempDirectoryScoped,
    makeTempFile,
    makeTempFileScoped,
    open,
    readDirectory: node.readDirectory,
    readFile,
    readLink: node.readLink,
    realPath: node.realPath,
    remove,
    rename,
    stat,
    symlink,
    truncate,
    utimes: node.utimes,
    watch: node.watch,
    writeFile
  })
  return Object.assign({ ...fileSystem, exists, stream }, { [UringFileSystemTypeId]: UringFileSystemTypeId })
}

/** Whether a FileSystem service is this ring-backed one. @internal */
export const isUringFileSystem = (fs: FileSystem.FileSystem): boolean =>
  typeof fs === "object" && fs !== null && UringFileSystemTypeId in fs
