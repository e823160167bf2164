import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Clock, Effect, Either, Equal, Exit, Fiber, Schema, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { AtFlags, FallocateMode, make, Metadata, OpenFlags, OwnedFd, RegisteredFile, Uring } from "../src/index.js"
import { nextCapacity, WHOLE_FILE_MAX } from "../src/internal/ops/wholeFiles.js"
import { fdCount, mkfifo, openFifo, pattern, tempDir } from "./helpers/fixtures.js"
import { makeWithClient, realSleep, waitUntil } from "./reliability/helpers.js"
import type { UringShape } from "../src/services/Uring.js"

const encode = (s: string) => new TextEncoder().encode(s)
const decode = (b: Uint8Array) => new TextDecoder().decode(b)
/** A FIFO in a fresh temp dir, opened through `uring` for reading and writing (so opening never blocks). */
const ringFifo = (uring: UringShape) =>
  Effect.gen(function*() {
    const dir = yield* tempDir()
    const path = Path.join(dir, "fifo")
    mkfifo(path)
    return { path, fifo: yield* uring.open(path, { flag: "r+" }) }
  })

layer(Uring.layer())("Uring", (it) => {
  describe("reads and writes", () => {
    it.scoped("write, read, readInto, readExact and writeAll at offsets", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const file = yield* uring.open(Path.join(dir, "data"), { flag: "w+" })
        expect(yield* uring.write(file, 0, encode("hello world"))).toBe(11)
        expect(yield* uring.write(file, 6n, encode("WORLD"))).toBe(5)
        expect(decode(yield* uring.read(file, 0, 100))).toBe("hello WORLD")
        expect(decode(yield* uring.read(file, 6, 3))).toBe("WOR")
        expect((yield* uring.read(file, 11, 10)).length).toBe(0)

        const buffer = new Uint8Array(5)
        expect(yield* uring.readInto(file, 0, buffer)).toBe(5)
        expect(decode(buffer)).toBe("hello")

        const big = pattern(3 * 1024 * 1024 + 17)
        yield* uring.writeAll(file, 100, big)
        const back = yield* uring.readExact(file, 100, big.length)
        expect(Buffer.compare(back, big)).toBe(0)
        expect(Fs.statSync(Path.join(dir, "data")).size).toBe(100 + big.length)

        const eof = yield* Effect.flip(uring.readExact(file, 100 + big.length - 10, 20))
        expect(eof._tag).toBe("UnexpectedEof")
        if (eof._tag === "UnexpectedEof") {
          expect(eof.read).toBe(10)
          expect(eof.expected).toBe(20)
        }
      }))

    it.scoped("readBatch reads many ranges in one crossing, in order, short only at end of file", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const path = Path.join(dir, "batch")
        const data = pattern(1 << 20, 11)
        Fs.writeFileSync(path, data)
        const file = yield* uring.register(yield* uring.open(path))
        const ranges = Array.from({ length: 2000 }, (_, i) => ({ offset: (i * 7919) % (data.length - 100), length: 1 + (i % 300) }))
        ranges.push({ offset: data.length - 10, length: 50 }, { offset: data.length + 5, length: 8 })
        const slices = yield* uring.readBatch(file, ranges)
        expect(slices.length).toBe(ranges.length)
        ranges.forEach((range, i) => {
          const expected = data.subarray(range.offset, range.offset + range.length)
          expect(Buffer.compare(slices[i]!, expected)).toBe(0)
        })
        expect(slices.at(-2)!.length).toBe(10)
        expect(slices.at(-1)!.length).toBe(0)
        expect(yield* uring.readBatch(file, [])).toEqual([])
        // Into a caller's buffer: slices of it, in order.
        const reused = new Uint8Array(64 * 1024)
        const into = yield* uring.readBatch(file, ranges.slice(0, 100), { buffer: reused })
        expect(into[0]!.buffer).toBe(reused.buffer)
        ranges.slice(0, 100).forEach((range, i) => {
          expect(Buffer.compare(into[i]!, data.subarray(range.offset, range.offset + range.length))).toBe(0)
        })
        const tooSmall = yield* Effect.flip(uring.readBatch(file, [{ offset: 0, length: 100 }], { buffer: new Uint8Array(10) }))
        expect(tooSmall._tag).toBe("InvalidArgument")
        expect((yield* Effect.flip(uring.readBatch(987_654, [{ offset: 0, length: 4 }])))._tag).toBe("BadDescriptor")
        expect((yield* Effect.flip(uring.readBatch(file, [{ offset: 0, length: 4 }, { offset: -1, length: 4 }])))._tag).toBe(
          "InvalidArgument"
        )
        const badLength = yield* Effect.flip(uring.readBatch(file, [{ offset: 0, length: 2 ** 31 }]))
        expect(badLength._tag === "InvalidArgument" && badLength.argument).toBe("length")
        // Bigint positions take the full check's path and still read.
        const [big] = yield* uring.readBatch(file, [{ offset: 8n, length: 4n }])
        expect(Buffer.compare(big!, data.subarray(8, 12))).toBe(0)
      }))

    it.scoped("an interrupted readBatch cancels what is still pending and waits for it", () =>
      Effect.gen(function*() {
        const { client, uring } = yield* makeWithClient({ ringSize: 64 })
        const { fifo, path: fifoPath } = yield* ringFifo(uring)
        Fs.writeFileSync(fifoPath, Buffer.alloc(8, 1))
        const fiber = yield* Effect.fork(uring.readBatch(fifo, Array.from({ length: 32 }, () => ({ offset: 0, length: 8 }))))
        // One range takes the 8 bytes; the other 31 wait in the kernel.
        expect(yield* waitUntil(() => client.native.inFlight === 31, 5_000)).toBe(true)
        yield* Fiber.interrupt(fiber)
        expect(client.native.inFlight).toBe(0)
        // The ring still serves reads from the same FIFO afterwards.
        Fs.writeFileSync(fifoPath, Buffer.alloc(8, 2))
        expect(Array.from(yield* uring.read(fifo, 0, 8))).toEqual(Array(8).fill(2))
      }))

    it.scoped("batches of one size share arrays only once each is done: one waiting on a FIFO keeps its own", () =>
      Effect.gen(function*() {
        const { client, uring } = yield* makeWithClient({ ringSize: 64 })
        const dir = yield* tempDir()
        const fifo = yield* openFifo(dir)
        const path = Path.join(dir, "data")
        const data = pattern(4096, 5)
        Fs.writeFileSync(path, data)
        const file = yield* uring.open(path)
        const waiting = yield* Effect.fork(uring.readBatch(fifo, [{ offset: 0, length: 3 }, { offset: 0, length: 5 }]))
        expect(yield* waitUntil(() => client.native.inFlight === 2, 5_000)).toBe(true)
        // Same-size batches done meanwhile, their own results and lengths in every place.
        for (let i = 0; i < 100; i++) {
          const at = i * 16
          const [a, b] = yield* uring.readBatch(file, [{ offset: at, length: 7 }, { offset: at + 7, length: 9 }])
          expect(Buffer.compare(a!, data.subarray(at, at + 7))).toBe(0)
          expect(Buffer.compare(b!, data.subarray(at + 7, at + 16))).toBe(0)
        }
        Fs.writeSync(fifo, "abcdefgh")
        const [first, second] = yield* Fiber.join(waiting)
        // Which read the pipe serves first is the kernel's choice; each got its own length.
        expect([first!.length, second!.length]).toEqual([3, 5])
        expect([...decode(first!) + decode(second!)].sort().join("")).toBe("abcdefgh")
      }))

    it.scoped("readBatch into one buffer again hands back its views when the lengths match, never the caller's objects", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const path = Path.join(dir, "data")
        const data = pattern(4096, 9)
        Fs.writeFileSync(path, data)
        const file = yield* uring.open(path)
        // A view into a larger buffer, so the views' offsets include its own.
        const buffer = new Uint8Array(new ArrayBuffer(64), 8, 48)
        const read = (offsets: Array<number>, length = 8) =>
          uring.readBatch(file, offsets.map((offset) => ({ offset, length })), { buffer })
        const expectBytes = (slices: Array<Uint8Array>, offsets: Array<number>) =>
          offsets.forEach((offset, i) => {
            expect(slices[i]!.byteOffset).toBe(8 + 8 * i)
            expect(Buffer.compare(slices[i]!, data.subarray(offset, offset + 8))).toBe(0)
          })
        const first = yield* read([0, 100, 200])
        expectBytes(first, [0, 100, 200])
        const second = yield* read([300, 400, 500])
        expectBytes(second, [300, 400, 500])
        expect(second).not.toBe(first)
        second.forEach((view, i) => expect(view).toBe(first[i]))
        // What the caller puts in a returned array is never handed back.
        const foreign = new Uint8Array(buffer.buffer, 8, 8)
        second[0] = foreign
        const third = yield* read([600, 700, 800])
        expectBytes(third, [600, 700, 800])
        expect(third[0]).not.toBe(foreign)
        expect(third[1]).toBe(first[1])
        // A short read at the end of the file gets a view of its own length.
        const fourth = yield* read([900, 4092, 1000])
        expect(fourth[1]!.length).toBe(4)
        expect(fourth[1]).not.toBe(first[1])
        expect(Buffer.compare(fourth[1]!, data.subarray(4092))).toBe(0)
        expect(fourth[0]).toBe(third[0])
        // Without a buffer of the caller's, every batch has fresh memory and fresh views.
        const [a] = yield* uring.readBatch(file, [{ offset: 0, length: 8 }])
        const [b] = yield* uring.readBatch(file, [{ offset: 0, length: 8 }])
        expect(a!.buffer).not.toBe(b!.buffer)
      }))

    it.scoped("a cached read, a batch of them or a write with room completes without suspending the fiber; failures alike", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        Fs.writeFileSync(Path.join(dir, "now"), "inline")
        const file = yield* uring.open(Path.join(dir, "now"))
        const writeOnly = yield* uring.open(Path.join(dir, "now"), { flag: "a" })
        // A pipe with room takes a write at once. A write to a regular file may not: the kernel
        // hands it to a worker whenever it must update the file's times or wait for its lock
        // (so may a read of a directory). Reading a write-only file fails at once.
        const fifo = yield* openFifo(dir)
        // `runSyncExit` dies with an AsyncFiberException if the effect suspends. The JS thread
        // submits only while the ring's submission thread is idle: wait for a turn where it is.
        const now = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.gen(function*() {
            for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
              const exit = Effect.runSyncExit(effect)
              if (!(Exit.isFailure(exit) && Cause.isDie(exit.cause))) return exit
              yield* realSleep(1)
            }
            return yield* Effect.dieMessage("never completed without suspending")
          })
        const buffer = new Uint8Array(6)
        expect(yield* now(uring.readInto(file, 0, buffer))).toEqual(Exit.succeed(6))
        expect(decode(buffer)).toBe("inline")
        const batch = yield* now(uring.readBatch(file, [{ offset: 3, length: 3 }, { offset: 0, length: 3 }, { offset: 5, length: 9 }]))
        expect(Exit.map(batch, (slices) => slices.map(decode))).toEqual(Exit.succeed(["ine", "inl", "e"]))
        expect(yield* now(uring.write(fifo, 0, encode("piped")))).toEqual(Exit.succeed(5))
        const piped = Buffer.alloc(5)
        expect(Fs.readSync(fifo, piped)).toBe(5)
        expect(piped.toString()).toBe("piped")
        const failed = yield* now(uring.readInto(writeOnly, 0, buffer))
        const tagOf = (exit: Exit.Exit<unknown, { readonly _tag: string }>) =>
          Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe((e) => e._tag === "Some" && e.value._tag)
        expect(tagOf(failed)).toBe("BadDescriptor")
        expect(tagOf(yield* now(uring.readBatch(writeOnly, [{ offset: 0, length: 2 }, { offset: 2, length: 2 }])))).toBe("BadDescriptor")
        // A path in the dentry cache: its O_PATH open and close run inline (a missing one once
        // its negative entry is cached, after the first try).
        expect(yield* now(uring.access(Path.join(dir, "now")))).toEqual(Exit.void)
        expect(tagOf(yield* now(uring.access(Path.join(dir, "missing"))))).toBe("NotFound")
      }))

    it.scoped("small reads that may complete at once stay correct while large ones keep the submission thread busy", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const path = Path.join(yield* tempDir(), "mixed")
        const data = pattern(24 * 1024 * 1024 + 11, 5)
        Fs.writeFileSync(path, data)
        const file = yield* uring.open(path)
        // Reads over the inline copy budget (4 MiB) go to the submission thread; while it works,
        // the small reads' flushes cannot submit on this thread and must take the thread path too.
        const large = Effect.forEach([0, 1, 2], (i) =>
          Effect.map(uring.readExact(file, i * 8 * 1024 * 1024, 8 * 1024 * 1024), (bytes) =>
            Buffer.compare(bytes, data.subarray(i * 8 * 1024 * 1024, (i + 1) * 8 * 1024 * 1024)) === 0), {
          concurrency: "unbounded"
        })
        const small = Effect.forEach(Array.from({ length: 2000 }, (_, i) => i), (i) => {
          const at = (i * 12_289) % (data.length - 512)
          const buffer = new Uint8Array(512)
          return Effect.map(uring.readInto(file, at, buffer), (n) => n === 512 && Buffer.compare(buffer, data.subarray(at, at + 512)) === 0)
        }, { concurrency: 8 })
        const [bigOk, smallOk] = yield* Effect.all([large, small], { concurrency: "unbounded" })
        expect(bigOk).toEqual([true, true, true])
        expect(smallOk.every((ok) => ok)).toBe(true)
      }))

    it.scoped("fsync, fdatasync, fallocate, fadvise, ftruncate", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const path = Path.join(dir, "f")
        const file = yield* uring.open(path, { flag: "w+" })
        yield* uring.writeAll(file, 0, pattern(8192))
        yield* uring.fsync(file)
        yield* uring.fdatasync(file)
        yield* uring.fallocate(file, 0, 1 << 20)
        expect(Fs.statSync(path).size).toBe(1 << 20)
        yield* uring.fallocate(file, 0, 4096, FallocateMode.KEEP_SIZE | FallocateMode.PUNCH_HOLE)
        expect(Array.from(yield* uring.read(file, 0, 4096)).every((b) => b === 0)).toBe(true)
        expect(Buffer.compare(yield* uring.read(file, 4096, 4096), pattern(8192).subarray(4096))).toBe(0)
        yield* uring.fadvise(file, 0, 0, "sequential")
        yield* uring.fadvise(file, 0, 4096, "dontNeed")
        yield* uring.ftruncate(file, 1000n)
        expect(Fs.statSync(path).size).toBe(1000)
      }))
  })

  describe("metadata", () => {
    it.scoped("stat, statAt and fstat agree with the kernel's lstat", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const path = Path.join(dir, "m")
        Fs.writeFileSync(path, "x".repeat(12345))
        Fs.chmodSync(path, 0o640)
        Fs.symlinkSync(path, Path.join(dir, "link"))
        const expected = Fs.lstatSync(path, { bigint: true })

        const checkAgainst = (meta: typeof byPath, stats: Fs.BigIntStats) => {
          expect(meta.size).toBe(stats.size)
          expect(meta.ino).toBe(stats.ino)
          expect(BigInt(meta.mode)).toBe(stats.mode)
          expect(BigInt(meta.nlink)).toBe(stats.nlink)
          expect(BigInt(meta.uid)).toBe(stats.uid)
          expect(BigInt(meta.gid)).toBe(stats.gid)
          expect(meta.blocks).toBe(stats.blocks)
          expect(BigInt(meta.blksize)).toBe(stats.blksize)
          expect(meta.mtimeNs).toBe(stats.mtimeNs)
          expect(meta.atimeNs).toBe(stats.atimeNs)
          expect(meta.ctimeNs).toBe(stats.ctimeNs)
          expect(meta.mtime.getTime()).toBe(Number(stats.mtimeMs))
        }

        const byPath = yield* uring.stat(path)
        checkAgainst(byPath, expected)
        expect(byPath.type).toBe("File")
        expect(byPath.isFile).toBe(true)
        expect(byPath.permissions).toBe(0o640)

        const file = yield* uring.open(path)
        checkAgainst(yield* uring.fstat(file), expected)
        const registered = yield* uring.register(file)
        checkAgainst(yield* uring.fstat(registered), expected)

        const dirFd = yield* uring.open(dir, { directory: true })
        const link = yield* uring.statAt(dirFd, "link", AtFlags.AT_SYMLINK_NOFOLLOW)
        expect(link.type).toBe("SymbolicLink")
        expect(link.isSymbolicLink).toBe(true)
        checkAgainst(yield* uring.statAt(dirFd, "link"), expected)
        expect((yield* uring.stat(Path.join(dir, "link"), { followSymlinks: false })).type).toBe("SymbolicLink")
        const dirMeta = yield* uring.stat(dir)
        expect(dirMeta.type).toBe("Directory")
        expect(dirMeta.isDirectory).toBe(true)
        const itself = yield* uring.statAt(dirFd, "", AtFlags.AT_EMPTY_PATH)
        expect([itself.type, itself.ino]).toEqual(["Directory", dirMeta.ino])
        checkAgainst(yield* uring.statAt(file, "", AtFlags.AT_EMPTY_PATH), expected)
        const noFlag = yield* Effect.flip(uring.statAt(dirFd, ""))
        expect([noFlag._tag, noFlag._tag === "InvalidArgument" && noFlag.argument]).toEqual(["InvalidArgument", "path"])
        const badFlags = yield* Effect.flip(uring.statAt(dirFd, "m", 1.5))
        expect([badFlags._tag, badFlags._tag === "InvalidArgument" && badFlags.argument]).toEqual(["InvalidArgument", "flags"])
      }))

    it.scoped("access: files, directories and FIFOs exist without being opened; failures are typed; no fd is left", () =>
      Effect.gen(function*() {
        const uring = yield* make({ ringSize: 64 })
        const dir = yield* tempDir()
        const at = (name: string) => Path.join(dir, name)
        Fs.writeFileSync(at("f"), "x")
        Fs.chmodSync(at("f"), 0)
        mkfifo(at("fifo"))
        Fs.symlinkSync("nowhere", at("dangling"))
        Fs.symlinkSync("loop", at("loop"))
        const before = fdCount()
        const outcomes = yield* Effect.forEach(
          ["f", "fifo", "", "missing", "dangling", "loop", "f/below", "nul\0"],
          (name) => Effect.match(uring.access(at(name)), { onSuccess: () => "ok", onFailure: (e) => e._tag })
        )
        expect(outcomes).toEqual(["ok", "ok", "ok", "NotFound", "NotFound", "TooManySymlinks", "NotADirectory", "InvalidArgument"])
        expect(fdCount()).toBe(before)
      }))

    it.scoped("pooled statx buffers never mix files, whether stats complete, fail or are interrupted", () =>
      Effect.gen(function*() {
        const uring = yield* make({ ringSize: 64 })
        const dir = yield* tempDir()
        // A size per file, so a buffer shared by two stats in flight shows as a wrong size.
        const paths = Array.from({ length: 150 }, (_, i) => {
          const path = Path.join(dir, `f${i}`)
          Fs.writeFileSync(path, new Uint8Array(i * 7 + 1))
          return path
        })
        const missing = Path.join(dir, "missing")
        for (let round = 0; round < 3; round++) {
          const interrupted = yield* Effect.forEach(paths.slice(0, 40), (path) => Effect.fork(uring.stat(path)))
          yield* Effect.forEach(interrupted, Fiber.interrupt, { discard: true })
          const results = yield* Effect.forEach(
            paths.flatMap((path, i) => i % 5 === 0 ? [path, missing] : [path]),
            (path) => Effect.either(uring.stat(path)),
            { concurrency: 48 }
          )
          const sizes = results.map((result) => Either.isRight(result) ? result.right.size : result.left._tag)
          expect(sizes).toEqual(paths.flatMap((_, i) => i % 5 === 0 ? [BigInt(i * 7 + 1), "NotFound"] : [BigInt(i * 7 + 1)]))
        }
      }))
  })

  describe("paths", () => {
    it.scoped("open/openAt, rename/renameAt, unlink/unlinkAt, rmdir, mkdir/mkdirAt, symlink/symlinkAt, link/linkAt", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const at = (name: string) => Path.join(dir, name)
        const dirFd = yield* uring.open(dir, { directory: true })

        const made = yield* uring.openAt(dirFd, "a", { flag: "wx", mode: 0o600 })
        yield* uring.writeAll(made, 0, encode("A"))
        expect(Fs.statSync(at("a")).mode & 0o777).toBe(0o600)
        Fs.writeFileSync(at("b"), "B")

        expect((yield* Effect.flip(uring.rename(at("a"), at("b"), { noReplace: true })))._tag).toBe("AlreadyExists")
        yield* uring.rename(at("a"), at("b"), { exchange: true })
        expect(Fs.readFileSync(at("a"), "utf8")).toBe("B")
        yield* uring.renameAt(dirFd, "a", dirFd, "c")
        expect(Fs.existsSync(at("a"))).toBe(false)
        expect(Fs.readFileSync(at("c"), "utf8")).toBe("B")

        yield* uring.mkdir(at("sub"), 0o750)
        expect(Fs.statSync(at("sub")).isDirectory()).toBe(true)
        yield* uring.mkdirAt(dirFd, "sub/inner")
        expect(Fs.statSync(at("sub/inner")).isDirectory()).toBe(true)
        expect((yield* Effect.flip(uring.rmdir(at("sub"))))._tag).toBe("DirectoryNotEmpty")
        yield* uring.unlinkAt(dirFd, "sub/inner", { removeDir: true })
        yield* uring.rmdir(at("sub"))
        expect(Fs.existsSync(at("sub"))).toBe(false)

        yield* uring.symlink("c", at("s1"))
        yield* uring.symlinkAt("c", dirFd, "s2")
        expect(Fs.readlinkSync(at("s1"))).toBe("c")
        expect(Fs.readFileSync(at("s2"), "utf8")).toBe("B")
        yield* uring.link(at("c"), at("h1"))
        yield* uring.linkAt(dirFd, "s1", dirFd, "h2", { followSymlinks: true })
        expect(Fs.statSync(at("c")).nlink).toBe(3)
        yield* uring.unlink(at("h1"))
        yield* uring.unlinkAt(dirFd, "h2")
        expect(Fs.statSync(at("c")).nlink).toBe(1)

        const raw = yield* uring.open(at("c"), { flags: OpenFlags.O_RDONLY | OpenFlags.O_NOATIME })
        expect(decode(yield* uring.read(raw, 0, 10))).toBe("B")
      }))
  })

  describe("handles", () => {
    it.scoped("open options reach the kernel: sync, dsync and noAtime on the fd, directory and noFollow refused", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const path = Path.join(dir, "f")
        Fs.writeFileSync(path, "content")
        Fs.symlinkSync(path, Path.join(dir, "link"))
        /** The open file's status flags as the kernel keeps them (octal in /proc). */
        const flagsOf = (fd: number) =>
          Number.parseInt(/flags:\s+([0-7]+)/.exec(Fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8)
        const cases = [
          [{ sync: true }, OpenFlags.O_SYNC],
          [{ dsync: true }, OpenFlags.O_DSYNC],
          [{ noAtime: true }, OpenFlags.O_NOATIME]
        ] as const
        for (const [options, bits] of cases) {
          const file = yield* uring.open(path, options)
          expect(flagsOf(file.fd) & OpenFlags.O_SYNC, JSON.stringify(options)).toBe(bits & OpenFlags.O_SYNC)
          expect(flagsOf(file.fd) & OpenFlags.O_NOATIME, JSON.stringify(options)).toBe(bits & OpenFlags.O_NOATIME)
        }
        expect((yield* Effect.flip(uring.open(path, { directory: true })))._tag).toBe("NotADirectory")
        expect((yield* Effect.flip(uring.open(Path.join(dir, "link"), { noFollow: true })))._tag).toBe("TooManySymlinks")
        expect(decode(yield* uring.read(yield* uring.open(Path.join(dir, "link")), 0, 7))).toBe("content")
      }))

    it.scoped("null options are the defaults; an open's or a rename's errors name the method called", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const path = Path.join(dir, "f")
        Fs.writeFileSync(path, "content")
        const none = null as any
        expect(decode(yield* uring.read(yield* uring.open(path, none), 0, 7))).toBe("content")
        expect(decode(yield* uring.read(yield* uring.openAt(AtFlags.AT_FDCWD, path, none), 0, 7))).toBe("content")
        expect(decode(yield* uring.withFile(path, none, (file) => uring.read(file, 0, 7)))).toBe("content")
        // writeFile's default flag is "w": created or truncated.
        yield* uring.writeFile(path, encode("new"), none)
        expect(Fs.readFileSync(path, "utf8")).toBe("new")
        yield* uring.rename(path, `${path}2`, none)
        expect(Fs.readFileSync(`${path}2`, "utf8")).toBe("new")
        const confined = yield* uring.openDir(dir)
        expect(decode(yield* uring.read(yield* confined.open("f2", none), 0, 3))).toBe("new")
        const opens = [
          [uring.open(path), "open"],
          [uring.openAt(AtFlags.AT_FDCWD, path), "openAt"],
          [uring.withFile(path, {}, () => Effect.void), "withFile"],
          [uring.rename(path, `${path}3`), "rename"],
          [uring.renameAt(AtFlags.AT_FDCWD, path, AtFlags.AT_FDCWD, `${path}3`), "renameAt"]
        ] as const
        for (const [effect, operation] of opens) {
          expect(yield* Effect.flip(effect)).toMatchObject({ _tag: "NotFound", operation, path })
        }
      }))

    it.scoped("scoped opens and registrations are released when the scope ends, even on failure", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const path = Path.join(dir, "f")
        Fs.writeFileSync(path, "content")
        const before = fdCount()
        for (let i = 0; i < 50; i++) {
          const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
            const file = yield* uring.open(path)
            const registered = yield* uring.register(file)
            expect(decode(yield* uring.read(registered, 0, 7))).toBe("content")
            expect(fdCount()).toBe(before + 1)
            return yield* Effect.fail("boom" as const)
          })))
          expect(Exit.isFailure(exit)).toBe(true)
        }
        expect(fdCount()).toBe(before)
        // 5000 registrations in sequence: a leaked slot would exhaust the 4096-slot table.
        for (let i = 0; i < 5000; i++) {
          yield* Effect.scoped(Effect.flatMap(uring.open(path), uring.register))
        }
        expect(fdCount()).toBe(before)
      }))

    it.scoped("explicit close reports errors; closed, released and foreign handles are refused", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const path = Path.join(dir, "f")
        Fs.writeFileSync(path, "x")
        const file = yield* uring.open(path)
        expect(file).toBeInstanceOf(OwnedFd)
        yield* uring.close(file)
        expect(file.isClosed).toBe(true)
        const closed = yield* Effect.flip(uring.read(file, 0, 1))
        expect(closed._tag).toBe("InvalidArgument")
        expect(closed.message).toContain("closed")
        expect((yield* Effect.flip(uring.close(file)))._tag).toBe("InvalidArgument")
        // A raw fd that is not open.
        expect((yield* Effect.flip(uring.close(987654)))._tag).toBe("BadDescriptor")

        const open = yield* uring.open(path)
        const registered = yield* Effect.scoped(uring.register(open))
        expect(registered).toBeInstanceOf(RegisteredFile)
        expect(registered.isReleased).toBe(true)
        const released = yield* Effect.flip(uring.read(registered, 0, 1))
        expect(released._tag).toBe("InvalidArgument")
        expect(released.message).toContain("released")

        const foreign = new RegisteredFile(0, open.fd, uring.ringId + 1000)
        const other = yield* Effect.flip(uring.read(foreign, 0, 1))
        expect(other.message).toContain("another ring")
      }))

    it.scoped("a RegisteredFile whose OwnedFd was closed refuses fstat once its number names another file; its slot still reads the first", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        Fs.writeFileSync(Path.join(dir, "first"), "first")
        Fs.writeFileSync(Path.join(dir, "second"), "second file")
        const first = yield* uring.open(Path.join(dir, "first"))
        const registered = yield* uring.register(first)
        yield* uring.close(first)
        // The kernel hands out the lowest free number: the second file gets the first one's, once
        // any lower number freed meanwhile (a closed ring's, when the GC frees it) is taken.
        let second = yield* uring.open(Path.join(dir, "second"))
        for (let more = 0; more < 64 && second.fd < first.fd; more++) second = yield* uring.open(Path.join(dir, "second"))
        expect(second.fd).toBe(first.fd)
        expect(registered.fd).toBe(second.fd)
        // Every raw-fd op is refused (bad-input.test.ts); here the refusal keeps fstat off the second file.
        const error = yield* Effect.flip(uring.fstat(registered))
        expect(error._tag).toBe("InvalidArgument")
        expect(error.message).toContain("closed")
        // The slot still holds the first file.
        expect(decode(yield* uring.read(registered, 0, 64))).toBe("first")
        expect((yield* uring.fstat(second)).size).toBe(11n)
      }))

    it.scoped("a RegisteredFile of another ring is refused", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const path = Path.join(yield* tempDir(), "other")
        Fs.writeFileSync(path, "x")
        const registered = yield* Effect.scoped(Effect.gen(function*() {
          const other = yield* make({ ringSize: 8 })
          expect(other.ringId).not.toBe(uring.ringId)
          const file = yield* other.open(path)
          const reg = yield* other.register(file)
          const error = yield* Effect.flip(uring.read(reg, 0, 1))
          expect(error._tag).toBe("InvalidArgument")
          expect(error.message).toContain("another ring")
          return reg
        }))
        expect(registered.isReleased).toBe(true)
      }))
  })

  describe("interruption", () => {
    it.scoped("an interrupted readInto waits for the kernel: the buffer is never written afterwards", () =>
      Effect.gen(function*() {
        const { client, uring } = yield* makeWithClient({ ringSize: 256 })
        const { fifo, path: fifoPath } = yield* ringFifo(uring)
        const buffers = Array.from({ length: 64 }, () => new Uint8Array(16).fill(0xaa))
        const fibers = yield* Effect.forEach(buffers, (buffer) => Effect.fork(uring.readInto(fifo, 0, buffer)))
        expect(yield* waitUntil(() => client.native.inFlight === buffers.length, 5_000)).toBe(true)
        yield* Fiber.interruptAll(fibers)
        // Every interruption has completed, and with it every read the kernel had.
        expect([client.pending, client.native.inFlight]).toEqual([0, 0])
        const sent = Buffer.alloc(16 * 64, 0x55)
        const writer = Fs.openSync(fifoPath, "w")
        Fs.writeSync(writer, sent)
        Fs.closeSync(writer)
        // All of it is still there for the next reader: a cancelled read still in the kernel would take its
        // share first (and write it into its buffer), and this read would wait for bytes that never come.
        const next = yield* uring.readExact(fifo, 0, sent.length).pipe(
          Effect.timeoutFail({ duration: 5_000, onTimeout: () => new Error("bytes written to the FIFO went to a cancelled read") }),
          // The test runs on the TestClock, where this timeout would never fire.
          Effect.withClock(Clock.make())
        )
        expect(Buffer.compare(next, sent)).toBe(0)
        for (const buffer of buffers) expect(Array.from(buffer).every((b) => b === 0xaa)).toBe(true)
      }))

    it.scoped("interrupted writes and reads of regular files complete or cancel, and the ring keeps working", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const file = yield* uring.open(Path.join(dir, "f"), { flag: "w+" })
        const data = pattern(1 << 16)
        for (let round = 0; round < 20; round++) {
          const fiber = yield* Effect.fork(Effect.forEach(
            Array.from({ length: 64 }, (_, i) => i),
            (i) => uring.writeAll(file, i * data.length, data),
            { concurrency: "unbounded" }
          ))
          yield* Effect.yieldNow()
          yield* Fiber.interrupt(fiber)
        }
        yield* uring.writeAll(file, 0, data)
        expect(Buffer.compare(yield* uring.readExact(file, 0, data.length), data)).toBe(0)
      }))
  })

  describe("refused arguments", () => {
    it.scoped("bad offsets, lengths, paths and buffers fail with InvalidArgument before submission", () =>
      Effect.gen(function*() {
        const uring = yield* Uring
        const dir = yield* tempDir()
        const file = yield* uring.open(Path.join(dir, "f"), { flag: "w+" })
        const refused = [
          uring.read(file, -1, 1),
          uring.read(file, 1.5, 1),
          uring.read(file, Number.NaN, 1),
          uring.read(file, 2n ** 63n, 1),
          uring.read(file, 0, -4),
          uring.read(file, 0, 0x7ffff001),
          uring.write(file, -1n, new Uint8Array(1)),
          uring.stat("a\0b"),
          uring.stat(""),
          uring.stat("x".repeat(5000)),
          uring.mkdir(Path.join(dir, "d"), 0o1000000),
          uring.read(-5, 0, 1),
          uring.ftruncate(file, -1)
        ]
        for (const effect of refused) {
          const error = yield* Effect.flip(Effect.scoped(effect))
          expect(error._tag).toBe("InvalidArgument")
        }
        const backing = new ArrayBuffer(8)
        const view = new Uint8Array(backing)
        structuredClone(backing, { transfer: [backing] })
        expect((yield* Effect.flip(uring.readInto(file, 0, view)))._tag).toBe("InvalidArgument")
      }))
  })
})

describe("Uring layer lifecycle", () => {
  it.effect("use after the layer's scope ended fails with RingClosed", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const uring = yield* Scope.extend(make(), scope)
      expect((yield* uring.stat("/")).type).toBe("Directory")
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(uring.stat("/"))
      expect(error._tag).toBe("RingClosed")
    }))

  it.effect("closing the layer releases the ring's fd and mappings at once, not when the collector takes its handle", () =>
    Effect.gen(function*() {
      const rings = () =>
        Fs.readdirSync("/proc/self/fd").filter((fd) => {
          try {
            return Fs.readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:[io_uring]"
          } catch {
            return false // the directory's own fd, gone by now
          }
        }).length
      const before = rings()
      // Every service is kept reachable, so nothing here depends on the collector.
      const kept: Array<UringShape> = []
      for (let i = 0; i < 20; i++) {
        const scope = yield* Scope.make()
        kept.push(yield* Scope.extend(make({ ringSize: 8 }), scope))
        expect(rings()).toBe(before + 1)
        yield* Scope.close(scope, Exit.void)
        expect(rings()).toBe(before)
      }
      expect((yield* Effect.flip(kept[0]!.stat("/")))._tag).toBe("RingClosed")
    }))

  it.scoped("an OwnedFd whose scope outlives the ring is closed when that scope ends", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const path = Path.join(dir, "f")
      Fs.writeFileSync(path, "x")
      const ringScope = yield* Scope.make()
      const fileScope = yield* Scope.make()
      const uring = yield* Scope.extend(make({ ringSize: 8 }), ringScope)
      const file = yield* Scope.extend(uring.open(path), fileScope)
      yield* Scope.close(ringScope, Exit.void)
      const withFile = fdCount()
      expect(Fs.readlinkSync(`/proc/self/fd/${file.fd}`)).toBe(path)
      yield* Scope.close(fileScope, Exit.void)
      expect(file.isClosed).toBe(true)
      expect(fdCount()).toBe(withFile - 1)
      expect(() => Fs.readlinkSync(`/proc/self/fd/${file.fd}`)).toThrow()
    }))

  it.live("closing the layer with reads in flight resolves every waiting fiber", () =>
    Effect.scoped(Effect.gen(function*() {
      const fd = yield* openFifo(yield* tempDir())
      const scope = yield* Scope.make()
      const uring = yield* Scope.extend(make(), scope)
      const fibers = yield* Effect.forEach(Array.from({ length: 500 }), () => Effect.fork(Effect.either(uring.read(fd, 0, 8))))
      yield* realSleep(20)
      yield* Scope.close(scope, Exit.void)
      const results = yield* Fiber.joinAll(fibers)
      for (const result of results) {
        expect(Either.isLeft(result) && result.left._tag).toBe("RingClosed")
      }
    })))
})

describe("Metadata.fromStatx", () => {
  it.effect("builds the same value the Schema class constructor builds", () =>
    Effect.gen(function*() {
      const meta = yield* Effect.flatMap(Uring, (uring) => uring.stat("/")).pipe(Effect.provide(Uring.layer({ ringSize: 8 })))
      expect(meta).toBeInstanceOf(Metadata)
      const rebuilt = new Metadata({ ...meta })
      expect(Equal.equals(meta, rebuilt)).toBe(true)
      expect(Equal.equals(meta, new Metadata({ ...meta, nlink: meta.nlink + 1 }))).toBe(false)
      expect(Schema.is(Metadata)(meta)).toBe(true)
    }))
})

describe("Uring.readFile", () => {
  // Reading a file of nearly 2 GiB for real takes seconds and GiBs of memory: the sizing alone.
  it("a file that fits gets a buffer that fits it; only a file too large for one op is refused", () => {
    const MiB = 1 << 20
    // Grows at least twofold, with room for the file and a byte more to see its end.
    expect(nextCapacity(100_000, 16 * 1024)).toBe(100_000 + 4096)
    expect(nextCapacity(20_000, 16 * 1024)).toBe(32 * 1024)
    // Twice a large first read (a sizeHint) would pass the limit, the file does not.
    expect(nextCapacity(1600 * MiB, 1536 * MiB + 1)).toBe(WHOLE_FILE_MAX)
    // A file within 4096 bytes of the limit.
    expect(nextCapacity(WHOLE_FILE_MAX - 1, 16 * 1024)).toBe(WHOLE_FILE_MAX)
    expect(nextCapacity(WHOLE_FILE_MAX - 4096, 16 * 1024)).toBe(WHOLE_FILE_MAX)
    // Too large: its size, or a full buffer of the largest size already.
    expect(nextCapacity(WHOLE_FILE_MAX, 16 * 1024)).toBeUndefined()
    expect(nextCapacity(4 * 1024 * MiB, 16 * 1024)).toBeUndefined()
    expect(nextCapacity(100, WHOLE_FILE_MAX)).toBeUndefined()
  })

  // Cached files are read on the calling thread (`readFileCached`), others through the ring's
  // whole-file op: both paths, each test.
  for (const cachedReads of [true, false]) {
    describe(cachedReads ? "cached files read here first" : "every file through the ring", () => {
      it.scoped("reads small, empty, large and missing files (one op each up to 16 KiB), closing every fd", () =>
        Effect.gen(function*() {
          const uring = yield* make({ ringSize: 64, cachedReads })
          const dir = yield* tempDir()
          const small = pattern(4096, 3)
          const large = pattern(200_000, 5)
          Fs.writeFileSync(Path.join(dir, "small"), small)
          Fs.writeFileSync(Path.join(dir, "large"), large)
          Fs.writeFileSync(Path.join(dir, "empty"), "")
          const before = fdCount()
          expect(Buffer.compare(yield* uring.readFile(Path.join(dir, "small")), small)).toBe(0)
          expect(Buffer.compare(yield* uring.readFile(Path.join(dir, "large")), large)).toBe(0)
          expect(Buffer.compare(yield* uring.readFile(Path.join(dir, "large"), { sizeHint: 10 }), large)).toBe(0)
          expect((yield* uring.readFile(Path.join(dir, "empty"))).length).toBe(0)
          expect((yield* Effect.flip(uring.readFile(Path.join(dir, "missing"))))._tag).toBe("NotFound")
          expect((yield* Effect.flip(uring.readFile(dir)))._tag).toBe("IsADirectory")
          expect((yield* Effect.flip(uring.readFile(Path.join(dir, "small"), { sizeHint: -1 })))._tag).toBe("InvalidArgument")
          expect(fdCount()).toBe(before)
          const many = yield* Effect.forEach(Array.from({ length: 500 }), () => uring.readFile(Path.join(dir, "small")), {
            concurrency: 64
          })
          expect(many.every((bytes) => Buffer.compare(bytes, small) === 0)).toBe(true)
          expect(fdCount()).toBe(before)
        }))

      it.scoped("a FIFO larger than the first read is read whole: its bytes can be read only once", () =>
        Effect.gen(function*() {
          const uring = yield* make({ ringSize: 64, cachedReads })
          const dir = yield* tempDir()
          const fifo = Path.join(dir, "fifo")
          mkfifo(fifo)
          const data = pattern(200_000, 9)
          const before = fdCount()
          // Its open waits for the reader's; the data is more than the pipe holds.
          const writing = Fs.promises.writeFile(fifo, data)
          const read = yield* uring.readFile(fifo)
          yield* Effect.promise(() => writing)
          expect(read.length).toBe(data.length)
          expect(Buffer.compare(read, data)).toBe(0)
          expect(fdCount()).toBe(before)
        }))

      it.scoped("a reader interrupted after its first read filled closes the fd the engine left it", () =>
        Effect.gen(function*() {
          const uring = yield* make({ ringSize: 64, cachedReads })
          const dir = yield* tempDir()
          // A writer that never leaves: the rest of the read waits for bytes that never come.
          const writer = yield* openFifo(dir)
          Fs.writeSync(writer, pattern(20_000, 4))
          const before = fdCount()
          const reader = yield* Effect.fork(uring.readFile(Path.join(dir, "fifo")))
          yield* waitUntil(() => fdCount() === before + 1, 5000)
          yield* realSleep(50)
          expect(fdCount()).toBe(before + 1)
          const exit = yield* Fiber.interrupt(reader)
          expect(Exit.isInterrupted(exit)).toBe(true)
          expect(fdCount()).toBe(before)
          // The read had taken all 20,000 bytes: the first 16 KiB, then the rest from the fd kept.
          const drained = Fs.openSync(Path.join(dir, "fifo"), Fs.constants.O_RDONLY | Fs.constants.O_NONBLOCK)
          try {
            expect(() => Fs.readSync(drained, new Uint8Array(1))).toThrow(/EAGAIN/)
          } finally {
            Fs.closeSync(drained)
          }
        }))

      it.scoped("reused read buffers never mix files, whether reads complete, fail or are interrupted", () =>
        Effect.gen(function*() {
          const uring = yield* make({ ringSize: 64, cachedReads })
          const dir = yield* tempDir()
          const before = fdCount()
          // Sizes around the first read's 16 KiB buffer: shorter files, exactly full ones, longer ones.
          const sizes = [0, 1, 100, 4096, 8192, 8193, 16383, 16384, 16385, 40_000]
          const files = Array.from({ length: 120 }, (_, i) => {
            const path = Path.join(dir, `f${i}`)
            const bytes = pattern(sizes[i % sizes.length]!, i + 1)
            Fs.writeFileSync(path, bytes)
            return { path, bytes }
          })
          for (let round = 0; round < 3; round++) {
            // Interrupted reads leave their buffers with the kernel until their completions arrive.
            const interrupted = yield* Effect.forEach(files.slice(0, 40), (f) => Effect.fork(uring.readFile(f.path)))
            yield* Effect.forEach(interrupted, Fiber.interrupt, { discard: true })
            yield* Effect.flip(uring.readFile(Path.join(dir, "missing")))
            const read = yield* Effect.forEach(files, (f) => uring.readFile(f.path), { concurrency: 32 })
            read.forEach((bytes, i) => expect(Buffer.compare(bytes, files[i]!.bytes)).toBe(0))
          }
          // Files past the first read keep their fd for the rest: interrupted or not, it is closed.
          expect(fdCount()).toBe(before)
        }))
    })
  }
})

describe("Uring.writeFile", () => {
  it.scoped("creates, truncates, appends and refuses in one op each, closing every fd", () =>
    Effect.gen(function*() {
      const uring = yield* make({ ringSize: 64 })
      const dir = yield* tempDir()
      const at = (name: string) => Path.join(dir, name)
      const before = fdCount()
      const large = pattern(300_000, 5)
      yield* uring.writeFile(at("f"), large, { mode: 0o600 })
      expect(Buffer.compare(Fs.readFileSync(at("f")), large)).toBe(0)
      expect(Fs.statSync(at("f")).mode & 0o777).toBe(0o600)
      yield* uring.writeFile(at("f"), encode("short"))
      expect(Fs.readFileSync(at("f"), "utf8")).toBe("short")
      yield* uring.writeFile(at("f"), encode("+more"), { flag: "a" })
      expect(Fs.readFileSync(at("f"), "utf8")).toBe("short+more")
      yield* uring.writeFile(at("empty"), new Uint8Array(0))
      expect(Fs.readFileSync(at("empty")).length).toBe(0)
      const tags = yield* Effect.forEach([
        uring.writeFile(at("f"), encode("x"), { flag: "wx" }),
        uring.writeFile(at("missing/f"), encode("x")),
        uring.writeFile(dir, encode("x")),
        // Opened read-only: the write step fails, and the file is left as it was.
        uring.writeFile(at("f"), encode("x"), { flag: "r" }),
        uring.writeFile(at("bad\0name"), encode("x")),
        uring.writeFile(at("f"), encode("x"), { mode: -1 })
      ], (effect) => Effect.map(Effect.flip(effect), (error) => error._tag))
      expect(tags).toEqual(["AlreadyExists", "NotFound", "IsADirectory", "BadDescriptor", "InvalidArgument", "InvalidArgument"])
      expect(Fs.readFileSync(at("f"), "utf8")).toBe("short+more")
      expect(fdCount()).toBe(before)
    }))

  it.scoped("interrupted while its open waits for a FIFO reader: no fd left behind", () =>
    Effect.gen(function*() {
      const { client, uring } = yield* makeWithClient({ ringSize: 64 })
      const dir = yield* tempDir()
      const fifo = Path.join(dir, "fifo")
      mkfifo(fifo)
      const before = fdCount()
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(uring.writeFile(fifo, encode("x"))))
      // Each open waits in the kernel for a reader.
      expect(yield* waitUntil(() => client.native.inFlight === fibers.length, 5_000)).toBe(true)
      yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
      expect(fdCount()).toBe(before)
    }))
})

describe("Uring.withFile", () => {
  it.scoped("closes the fd when use succeeds, fails or is interrupted", () =>
    Effect.gen(function*() {
      const uring = yield* make({ ringSize: 64 })
      const dir = yield* tempDir()
      const path = Path.join(dir, "f")
      Fs.writeFileSync(path, "with file")
      const before = fdCount()
      const text = yield* uring.withFile(path, {}, (file) => Effect.map(uring.read(file, 0, 64), decode))
      expect(text).toBe("with file")
      expect(fdCount()).toBe(before)
      const failed = yield* Effect.flip(uring.withFile(path, {}, () => Effect.fail("boom" as const)))
      expect(failed).toBe("boom")
      expect(fdCount()).toBe(before)
      let inside = 0
      const fiber = yield* Effect.fork(uring.withFile(path, {}, () => Effect.sync(() => inside = fdCount()).pipe(Effect.zipRight(Effect.never))))
      while (inside === 0) yield* Effect.yieldNow()
      expect(inside).toBe(before + 1)
      yield* Fiber.interrupt(fiber)
      expect(fdCount()).toBe(before)
      expect((yield* Effect.flip(uring.withFile(Path.join(dir, "missing"), {}, () => Effect.void)))._tag).toBe("NotFound")
    }))
})
