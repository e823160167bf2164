/**
 * Every tagged error, produced by a real kernel failure (CI runs as root: tmpfs mounts and a
 * child process that drops to an unprivileged uid are part of the fixtures).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fromErrno, OpenFlags, Uring, type UringError, UringFileSystem } from "../src/index.js"
import { makeFileOps } from "../src/internal/ops/fileOps.js"
import { makeHandles } from "../src/internal/ops/handles.js"
import { makeRunner } from "../src/internal/ops/runner.js"
import { makeStats } from "../src/internal/ops/stats.js"
import { makeWholeFiles } from "../src/internal/ops/wholeFiles.js"
import { RingClient } from "../src/internal/RingClient.js"
import { fdCount, mkfifo, openFifo, pattern, tempDir, tmpfs } from "./helpers/fixtures.js"
import { makeWithClient } from "./reliability/helpers.js"

/**
 * Runs test/fixtures/run-as-nobody.ts on `path`, as uid and gid 65534 unless `asRoot`, behind
 * `wrap` (a command that runs the rest, e.g. prlimit); its report.
 */
const runFixture = (
  options: { readonly asRoot?: boolean; readonly wrap?: ReadonlyArray<string> },
  path: string,
  ...operations: Array<string>
) => {
  const script = Path.join(import.meta.dirname, "fixtures", "run-as-nobody.ts")
  const [command, ...args] = [...(options.wrap ?? []), process.execPath, "--import", "tsx", script, path, ...operations]
  const child = spawnSync(command!, args, {
    ...(options.asRoot ? {} : { uid: 65534, gid: 65534 }),
    encoding: "utf8",
    cwd: Path.join(import.meta.dirname, "..")
  })
  expect(child.stderr).toBe("")
  return JSON.parse(child.stdout) as { uid: number; outcomes: Record<string, string> }
}

const runAsNobody = (path: string, ...operations: Array<string>) => runFixture({}, path, ...operations)

/** A file only root may read or write, in a directory anyone may search. */
const rootOnly = Effect.gen(function*() {
  const dir = yield* tempDir()
  Fs.chmodSync(dir, 0o755)
  const secret = Path.join(dir, "secret")
  Fs.writeFileSync(secret, "root only")
  Fs.chmodSync(secret, 0o600)
  return { dir, secret }
})

const tagOf = <A, R>(effect: Effect.Effect<A, UringError, R>) =>
  Effect.map(Effect.flip(effect), (error) => ({ tag: error._tag, code: "code" in error ? error.code : undefined }))

layer(Uring.layer())("kernel errors", (it) => {
  it.scoped("each errno arrives as its tag, with the operation, path and code", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const dir = yield* tempDir()
      const at = (name: string) => Path.join(dir, name)
      Fs.writeFileSync(at("file"), "x")
      Fs.mkdirSync(at("full"))
      Fs.writeFileSync(at("full/inside"), "")
      Fs.symlinkSync(at("loop2"), at("loop1"))
      Fs.symlinkSync(at("loop1"), at("loop2"))
      mkfifo(at("fifo"))
      const file = yield* uring.open(at("file"), { flag: "r+" })
      const fifo = yield* uring.open(at("fifo"), { flag: "r+" })

      const missing = yield* Effect.flip(uring.stat(at("missing")))
      expect(missing._tag).toBe("NotFound")
      expect(missing.message).toContain(at("missing"))
      expect(missing.message).toContain("ENOENT")
      if (missing._tag === "NotFound") {
        expect(missing.operation).toBe("stat")
        expect(missing.errno).toBe(2)
      }

      expect(yield* tagOf(Effect.scoped(uring.open(at("file"), { flag: "wx" })))).toEqual({ tag: "AlreadyExists", code: "EEXIST" })
      expect(yield* tagOf(uring.mkdir(at("full")))).toEqual({ tag: "AlreadyExists", code: "EEXIST" })
      expect(yield* tagOf(uring.stat(at("file/below")))).toEqual({ tag: "NotADirectory", code: "ENOTDIR" })
      expect(yield* tagOf(Effect.scoped(uring.open(dir, { flag: "w" })))).toEqual({ tag: "IsADirectory", code: "EISDIR" })
      expect(yield* tagOf(uring.rmdir(at("full")))).toEqual({ tag: "DirectoryNotEmpty", code: "ENOTEMPTY" })
      expect(yield* tagOf(uring.fallocate(file, 0, 0))).toEqual({ tag: "InvalidInput", code: "EINVAL" })
      expect(yield* tagOf(uring.read(987_654, 0, 8))).toEqual({ tag: "BadDescriptor", code: "EBADF" })
      // Onto a mount of its own: another file system for certain, and removed with it.
      const otherMount = yield* tmpfs("64k")
      expect(yield* tagOf(uring.link(at("file"), Path.join(otherMount, "xdev")))).toEqual({ tag: "CrossDevice", code: "EXDEV" })
      expect(yield* tagOf(uring.stat(at("n".repeat(300))))).toEqual({ tag: "NameTooLong", code: "ENAMETOOLONG" })
      expect(yield* tagOf(Effect.scoped(uring.open(at("loop1"))))).toEqual({ tag: "TooManySymlinks", code: "ELOOP" })
      expect(
        yield* tagOf(Effect.scoped(uring.open("/proc", { flag: "r+", flags: OpenFlags.O_TMPFILE })))
      ).toEqual({ tag: "NotSupported", code: "EOPNOTSUPP" })
      const unknown = yield* Effect.flip(uring.fadvise(fifo, 0, 0, "sequential"))
      expect(unknown._tag).toBe("Unknown")
      if (unknown._tag === "Unknown") expect([unknown.errno, unknown.code]).toEqual([29, "ESPIPE"])
    }))

  it.scoped("a kernel error carries no JavaScript stack (only the ring's dispatch would be in it)", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const limit = Error.stackTraceLimit
      const missing = yield* Effect.flip(uring.stat(Path.join(yield* tempDir(), "missing")))
      expect(missing._tag).toBe("NotFound")
      expect(missing.stack).toBe(`NotFound: ${missing.message}`)
      expect(Error.stackTraceLimit).toBe(limit)
      // Where `Error` is frozen the limit cannot be lowered; the error still arrives, with its stack.
      const script = Path.join(import.meta.dirname, "fixtures", "frozen-error.ts")
      const child = spawnSync(process.execPath, ["--import", "tsx", script, "/nonexistent/effect-uring"], {
        encoding: "utf8",
        timeout: 20_000,
        cwd: Path.join(import.meta.dirname, "..")
      })
      expect(child.stderr).toBe("")
      expect(child.stdout.trim()).toBe(`NotFound; limit ${limit}`)
    }))

  it.scoped("NoSpace on a tmpfs that fills mid-way: what was written before stays, and the error says how much of the data followed", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const mount = yield* tmpfs("64k")
      const path = Path.join(mount, "big")
      const file = yield* uring.open(path, { flag: "w+" })
      const head = new Uint8Array(16 * 1024).fill(0x5a)
      yield* uring.writeAll(file, 0, head)
      // More than the mount holds: the kernel writes what fits (a short write), then refuses the rest.
      const data = pattern(1 << 20)
      const error = yield* Effect.flip(uring.writeAll(file, head.length, data))
      expect(error).toMatchObject({ _tag: "NoSpace", operation: "writeAll", code: "ENOSPC", path })
      if (error._tag !== "NoSpace") return
      const onDisk = Fs.readFileSync(path)
      expect(error.written).toBeGreaterThan(0)
      expect(error.written).toBe(onDisk.length - head.length)
      expect(Buffer.compare(yield* uring.readExact(file, 0, head.length), head)).toBe(0)
      expect(Buffer.compare(onDisk.subarray(head.length), data.subarray(0, error.written))).toBe(0)
      expect(error.message).toBe(
        `writeAll ${JSON.stringify(path)} failed after writing ${error.written} bytes: ENOSPC (errno 28): no space left on device`
      )
      // Rebuilt with the count, it still carries no JavaScript stack.
      expect(error.stack).toBe(`NoSpace: ${error.message}`)
    }))

  it.scoped("writeAll whose first write fails says 0 bytes were written", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const mount = yield* tmpfs("64k")
      // Fills the mount to its last page.
      Fs.writeFileSync(Path.join(mount, "filler"), new Uint8Array(64 * 1024))
      const path = Path.join(mount, "more")
      const file = yield* uring.open(path, { flag: "w+" })
      const full = yield* Effect.flip(uring.writeAll(file, 0, pattern(8192)))
      expect(full).toMatchObject({ _tag: "NoSpace", operation: "writeAll", written: 0 })
      expect(Fs.statSync(path).size).toBe(0)
      // Any kernel error of the first write, not only ENOSPC: a file open only for reading.
      const readOnly = yield* uring.open(Path.join(mount, "filler"), { flag: "r" })
      const refused = yield* Effect.flip(uring.writeAll(readOnly, 0, pattern(10)))
      expect(refused).toMatchObject({ _tag: "BadDescriptor", operation: "writeAll", code: "EBADF", written: 0 })
      expect(refused.message).toContain("failed after writing 0 bytes: EBADF")
      // Other ops' kernel errors do not carry the field.
      const plain = yield* Effect.flip(uring.write(file, 0, pattern(10)))
      expect(plain._tag).toBe("NoSpace")
      expect("written" in plain).toBe(false)
    }))

  it.scoped("writeFile on a full tmpfs: NoSpace from its write step, its fd closed", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const mount = yield* tmpfs("64k")
      const before = fdCount()
      const error = yield* Effect.flip(uring.writeFile(Path.join(mount, "big"), new Uint8Array(1 << 20).fill(1)))
      expect(error._tag).toBe("NoSpace")
      expect(fdCount()).toBe(before)
      // What fitted was written; the file exists with it.
      expect(Fs.statSync(Path.join(mount, "big")).size).toBeGreaterThan(0)
      // Through the platform layer the error names the step that failed, as Node's does.
      const fs = yield* Effect.provide(FileSystem.FileSystem, UringFileSystem.layer)
      const platform = yield* Effect.flip(fs.writeFile(Path.join(mount, "big2"), new Uint8Array(1 << 20)))
      expect(platform).toMatchObject({ _tag: "SystemError", method: "writeFile", syscall: "write" })
      const missing = yield* Effect.flip(fs.writeFile(Path.join(mount, "no/such"), new Uint8Array(1)))
      expect(missing).toMatchObject({ _tag: "SystemError", reason: "NotFound", syscall: "open" })
    }))

  it.scoped("ReadOnlyFileSystem on a read-only mount, Busy on a mount point", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const mount = yield* tmpfs("1m", "ro")
      expect(yield* tagOf(uring.mkdir(Path.join(mount, "d")))).toEqual({ tag: "ReadOnlyFileSystem", code: "EROFS" })
      expect(yield* tagOf(uring.rmdir(mount))).toEqual({ tag: "Busy", code: "EBUSY" })
    }))

  it.scoped("PermissionDenied for an unprivileged process", () =>
    Effect.gen(function*() {
      const { dir, secret } = yield* rootOnly
      const report = runAsNobody(secret, "open", "write", "unlink", "access")
      expect(report.uid).toBe(65534)
      expect(report.outcomes).toEqual({
        open: "PermissionDenied:EACCES",
        write: "PermissionDenied:EACCES",
        unlink: "PermissionDenied:EACCES",
        // Existence needs no read permission on the file itself...
        access: "ok"
      })
      // ...but search permission on every directory on the way.
      const closed = Path.join(dir, "closed")
      Fs.mkdirSync(closed, { mode: 0o700 })
      Fs.writeFileSync(Path.join(closed, "f"), "")
      expect(runAsNobody(Path.join(closed, "f"), "access").outcomes).toEqual({ access: "PermissionDenied:EACCES" })
    }))

  it.scoped("UringFileSystem's EACCES is PermissionDenied, as NodeFileSystem's is", () =>
    Effect.gen(function*() {
      const { secret } = yield* rootOnly
      const members = ["readFile", "writeFileString", "remove"]
      const { outcomes, uid } = runAsNobody(secret, ...members.flatMap((member) => [`uringFs.${member}`, `nodeFs.${member}`]))
      expect(uid).toBe(65534)
      for (const member of members) {
        expect([member, outcomes[`uringFs.${member}`]]).toEqual([member, "SystemError:PermissionDenied"])
        expect(outcomes[`uringFs.${member}`]).toBe(outcomes[`nodeFs.${member}`])
      }
      expect(Fs.readFileSync(secret, "utf8")).toBe("root only")
    }))
})

describe("UringFileSystem's remove where permissions refuse it, as NodeFileSystem's", () => {
  it.scoped("a directory in a sticky directory is emptied of what may be removed before its rmdir fails EPERM", () =>
    Effect.gen(function*() {
      const base = yield* tempDir()
      Fs.chmodSync(base, 0o1777)
      // Root's directory, open to all, holding the unprivileged user's files: the sticky bit lets
      // that user remove the files but not the directory.
      const layers = ["uringFs", "nodeFs"] as const
      const outcomes: Record<string, string | undefined> = {}
      for (const layer of layers) {
        const dir = Path.join(base, layer)
        Fs.mkdirSync(dir)
        Fs.chmodSync(dir, 0o777)
        for (const name of ["a", "b"]) {
          Fs.writeFileSync(Path.join(dir, name), name)
          Fs.chownSync(Path.join(dir, name), 65534, 65534)
        }
        outcomes[layer] = runAsNobody(dir, `${layer}.removeRecursive`).outcomes[`${layer}.removeRecursive`]
        expect([layer, Fs.readdirSync(dir)]).toEqual([layer, []])
      }
      expect(outcomes).toEqual({ uringFs: "SystemError:Unknown", nodeFs: "SystemError:Unknown" })
    }))

  it.scoped("a directory whose parent the user may not write is, without recursive, Node's \"Path is a directory\"", () =>
    Effect.gen(function*() {
      const parent = yield* tempDir()
      const dir = Path.join(parent, "d")
      Fs.mkdirSync(dir)
      Fs.chmodSync(parent, 0o555)
      const { outcomes } = runAsNobody(dir, "uringFs.remove", "nodeFs.remove")
      expect(outcomes).toEqual({ "uringFs.remove": "SystemError:Unknown", "nodeFs.remove": "SystemError:Unknown" })
      expect(Fs.existsSync(dir)).toBe(true)
    }))
})

describe("errno mapping of kernel results", () => {
  layer(Uring.layer())("TooManyOpenFiles and Canceled", (it) => {
    it.effect("EMFILE from a process whose fd limit is reached", () =>
      Effect.sync(() => {
        // prlimit caps the child's fds; the child opens through the ring until the kernel refuses.
        const report = runFixture({ asRoot: true, wrap: ["prlimit", "--nofile=256:256"] }, "/etc/hostname", "exhaust")
        expect(report.outcomes).toEqual({ exhaust: "TooManyOpenFiles:EMFILE" })
      }))

    it.scoped("EFBIG past RLIMIT_FSIZE: writeAll says it wrote up to the limit", () =>
      Effect.gen(function*() {
        // prlimit caps the child's file size; the kernel writes a short piece up to it, then refuses the rest (Node
        // ignores the SIGXFSZ that comes with it).
        const path = Path.join(yield* tempDir(), "capped")
        const report = runFixture({ asRoot: true, wrap: ["prlimit", "--fsize=100000"] }, path, "writeAll")
        expect(report.outcomes).toEqual({ writeAll: "Unknown:EFBIG after 100000" })
        expect(Fs.statSync(path).size).toBe(100_000)
      }))

    it.scoped("a cancelled op's ECANCELED maps to Canceled", () =>
      Effect.gen(function*() {
        const fd = yield* openFifo(yield* tempDir())
        const client = yield* Effect.acquireRelease(
          Effect.sync(() => new RingClient({ entries: 8 })),
          (client) => Effect.sync(() => client.shutdown())
        )
        const buffer = new Uint8Array(8)
        // A read of an empty FIFO: it completes only by being cancelled.
        const op = client.submit((native, id) => native.read(id, fd, false, buffer, 0, false), () => {}, buffer)
        const result = yield* Effect.async<number>((resume) => client.cancel(op, (result) => resume(Effect.succeed(result))))
        expect(result).toBe(-125)
        expect(fromErrno(-result, { operation: "read" })._tag).toBe("Canceled")
      }))
  })
})

describe("writeFile of data too large for one op", () => {
  // Over 2 GiB `writeFile` writes in pieces on an fd of its own; that path is run here with a
  // small buffer. Its close fails for real (EBADF), as a file system that reports write-back
  // errors at close would fail it: once the data is written, the test closes the file itself and
  // points the handle at a number no open in this process reaches, so no reused fd is closed.
  it.scoped("an error from its close is the write's", () =>
    Effect.gen(function*() {
      const { client } = yield* makeWithClient({ ringSize: 8 })
      const runner = makeRunner(client, { tracing: false })
      const { closeFd, releaseFd, withFile } = makeHandles(runner, false)
      const { writeAll } = makeFileOps(runner, () => Effect.die("no size here"))
      const { writeInPieces } = makeWholeFiles(runner, {
        closeFd,
        fstat: makeStats(runner, false).fstat,
        readExact: () => Effect.die("not read here"),
        releaseFd,
        withFile,
        writeAll: (file, offset, data) =>
          Effect.zipRight(
            writeAll(file, offset, data),
            Effect.sync(() => {
              const handle = file as { fd: number }
              Fs.closeSync(handle.fd)
              handle.fd = 999_999
            })
          )
      })
      const path = Path.join(yield* tempDir(), "big")
      const error = yield* Effect.flip(writeInPieces(path, pattern(1 << 16), { flag: "w" }))
      expect(error).toMatchObject({ _tag: "BadDescriptor", operation: "close" })
      expect(Fs.statSync(path).size).toBe(1 << 16)
    }))
})
