/**
 * The same FileSystem behaviour cases against Node's implementation and the io_uring one: both must give identical
 * results and leave identical trees, and the results must be the expected ones.
 */
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Option, Stream } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { UringFileSystem } from "../../src/index.js"
import { pattern, tempDir, tmpfs } from "../helpers/fixtures.js"
import { both, BothLayer, bytes, type Case, NodeFs, normalize, str, UringFs } from "./harness.js"

/** Runs a case on both, asserts identical outcomes and trees, and returns the (common) outcome and tree. */
const same = <A>(body: Case<A>) =>
  Effect.map(both(body), (result) => {
    expect(result.uring).toEqual(result.node)
    expect(result.uringTree).toEqual(result.nodeTree)
    return { outcome: result.node as { ok?: any; error?: any }, tree: result.nodeTree as Record<string, string> }
  })

const notFound = (method: string, path: string) => ({
  _tag: "SystemError",
  reason: "NotFound",
  module: "FileSystem",
  method,
  pathOrDescriptor: path
})

layer(BothLayer)("FileSystem conformance: Node vs io_uring", (it) => {
  describe("File cursor", () => {
    it.scoped("tracks the cursor on write, read, readAlloc and seek", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const file = yield* fs.open(Path.join(dir, "f"), { flag: "w+" })
            const w1 = yield* file.write(bytes("hello"))
            const w2 = yield* file.write(bytes(" world"))
            yield* file.writeAll(bytes("!!"))
            const atEnd = yield* file.readAlloc(4)
            yield* file.seek(0, "start")
            const buf = new Uint8Array(5)
            const r1 = yield* file.read(buf)
            const a1 = yield* file.readAlloc(3)
            yield* file.seek(1, "current")
            const a2 = yield* file.readAlloc(100)
            const a3 = yield* file.readAlloc(100)
            const r2 = yield* file.read(new Uint8Array(8))
            yield* file.seek(2, "start")
            yield* file.write(bytes("LL"))
            yield* file.seek(0, "start")
            const all = yield* file.readAlloc(100)
            const info = yield* file.stat
            return { w1, w2, atEnd, r1, buf, a1, a2, a3, r2, all, size: info.size, type: info.type }
          })
        )
        expect(outcome.ok).toEqual({
          w1: "5n",
          w2: "6n",
          atEnd: "none",
          r1: "5n",
          buf: "bytes:hello",
          a1: { some: "bytes: wo" },
          a2: { some: "bytes:ld!!" },
          a3: "none",
          r2: "0n",
          all: { some: "bytes:heLLo world!!" },
          size: "13n",
          type: "File"
        })
        expect(tree).toEqual({ f: "file 644 heLLo world!!" })
      }))

    it.scoped("append mode: reads from the start, writes at the end, cursor untouched by writes", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const path = Path.join(dir, "log")
            yield* fs.writeFileString(path, "abc")
            const file = yield* fs.open(path, { flag: "a+" })
            const first = yield* file.readAlloc(2)
            const written = yield* file.write(bytes("XYZ"))
            yield* file.writeAll(bytes("!"))
            const rest = yield* file.readAlloc(10)
            const eof = yield* file.readAlloc(10)
            yield* file.truncate(1)
            const afterTruncate = yield* file.readAlloc(10)
            return { first, written, rest, eof, afterTruncate, content: yield* fs.readFileString(path) }
          })
        )
        expect(outcome.ok).toEqual({
          first: { some: "bytes:ab" },
          written: "3n",
          rest: { some: "bytes:cXYZ!" },
          eof: "none",
          afterTruncate: "none",
          content: "a"
        })
        expect(tree).toEqual({ log: "file 644 a" })
      }))

    it.scoped("truncate moves the cursor only when it cuts below it", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const file = yield* fs.open(Path.join(dir, "t"), { flag: "w+" })
            yield* file.writeAll(bytes("0123456789"))
            yield* file.truncate(20) // above the cursor: it stays at 10
            yield* file.write(bytes("A"))
            yield* file.truncate(4) // below: the cursor moves to 4
            yield* file.write(bytes("B"))
            yield* file.seek(0, "start")
            const afterCut = yield* file.readAlloc(64)
            yield* file.truncate(-3) // negative is 0, as Node's ftruncate takes it
            const afterNegative = (yield* file.stat).size
            yield* file.truncate() // to 0, cursor 0
            yield* file.write(bytes("C"))
            yield* file.seek(0, "start")
            const afterZero = yield* file.readAlloc(64)
            return { afterCut, afterNegative, afterZero, size: (yield* file.stat).size }
          })
        )
        expect(outcome.ok).toEqual({
          afterCut: { some: "bytes:0123B" },
          afterNegative: "0n",
          afterZero: { some: "bytes:C" },
          size: "1n"
        })
        expect(tree).toEqual({ t: "file 644 C" })
      }))

    it.scoped("a writeAll that fails part-way leaves the cursor after what it wrote, as Node's does", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const mount = Path.join(dir, "mnt")
            yield* tmpfs("64k", "", mount)
            const file = yield* fs.open(Path.join(mount, "f"), { flag: "w+" })
            // More than the mount holds: the data that fits is written, then ENOSPC.
            const failed = yield* Effect.either(file.writeAll(new Uint8Array(1 << 20).fill(0x61)))
            // From the cursor on: the end of the file.
            const atCursor = yield* file.readAlloc(1)
            return { failed, atCursor, size: (yield* file.stat).size }
          })
        )
        expect(outcome.ok).toEqual({
          failed: { _tag: "Left", left: { _tag: "SystemError", reason: "Unknown", module: "FileSystem", method: "writeAll", pathOrDescriptor: "<fd>" } },
          atCursor: "none",
          size: "65536n"
        })
      }))

    it.scoped("writeAll of nothing fails with WriteZero; reading a write-only file fails", () =>
      Effect.gen(function*() {
        const empty = yield* same((fs, dir) =>
          Effect.flatMap(fs.open(Path.join(dir, "w"), { flag: "w" }), (file) => file.writeAll(new Uint8Array(0)))
        )
        expect(empty.outcome.error).toMatchObject({ reason: "WriteZero", method: "writeAll", pathOrDescriptor: "<fd>" })
        const wronly = yield* same((fs, dir) =>
          Effect.flatMap(fs.open(Path.join(dir, "w"), { flag: "w" }), (file) => file.read(new Uint8Array(4)))
        )
        expect(wronly.outcome.error).toMatchObject({ reason: "Unknown", method: "read", pathOrDescriptor: "<fd>" })
      }))

    it.scoped("readAlloc of 0 bytes and seek past the end give None", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const path = Path.join(dir, "f")
            yield* fs.writeFileString(path, "data")
            const file = yield* fs.open(path)
            const zero = yield* file.readAlloc(0)
            yield* file.seek(100, "start")
            const past = yield* file.readAlloc(4)
            return { zero, past }
          })
        )
        expect(outcome.ok).toEqual({ zero: "none", past: "none" })
      }))
  })

  describe("whole files", () => {
    it.scoped("readFile, writeFile with flags and modes, readFileString, a large file", () =>
      Effect.gen(function*() {
        const big = pattern(9 * 1024 * 1024 + 123)
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const path = Path.join(dir, "a.txt")
            yield* fs.writeFileString(path, "one")
            yield* fs.writeFileString(path, "+two", { flag: "a" })
            yield* fs.writeFileString(Path.join(dir, "private"), "secret", { mode: 0o600 })
            const exclusive = yield* Effect.either(fs.writeFileString(path, "x", { flag: "wx" }))
            yield* fs.writeFile(Path.join(dir, "empty"), new Uint8Array(0))
            yield* fs.writeFile(Path.join(dir, "big"), big)
            const read = yield* fs.readFile(Path.join(dir, "big"))
            return {
              text: yield* fs.readFileString(path),
              exclusive,
              empty: yield* fs.readFile(Path.join(dir, "empty")),
              bigSame: Buffer.compare(Buffer.from(read), Buffer.from(big)) === 0,
              bigLength: read.length
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          text: "one+two",
          exclusive: { _tag: "Left", left: { reason: "AlreadyExists", method: "writeFile", pathOrDescriptor: "<dir>/a.txt" } },
          empty: "bytes:",
          bigSame: true,
          bigLength: big.length
        })
        expect(tree["private"]).toBe("file 600 secret")
      }))

    it.scoped("modes above 0o7777 (a stat's st_mode, say) are masked as the kernel masks them", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (name: string) => Path.join(dir, name)
            yield* Effect.scoped(fs.open(p("opened"), { flag: "w", mode: 0o100640 }))
            yield* fs.writeFileString(p("written"), "w", { mode: 0o100604 })
            yield* fs.makeDirectory(p("dir"), { mode: 0o40750 })
            yield* fs.makeDirectory(p("deep/er"), { mode: 0o40710, recursive: true })
            return "done"
          })
        )
        expect(outcome.ok).toBe("done")
        expect(tree).toMatchObject({ opened: "file 640 ", written: "file 604 w", dir: "dir 750", "deep/er": "dir 710" })
      }))

    it.scoped("stat, exists and access", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            yield* fs.writeFileString(Path.join(dir, "f"), "12345")
            yield* fs.makeDirectory(Path.join(dir, "d"))
            yield* fs.symlink("f", Path.join(dir, "l"))
            const s = (p: string) =>
              Effect.map(fs.stat(Path.join(dir, p)), (i) => ({ type: i.type, size: i.size, mode: i.mode & 0o777 }))
            return {
              file: yield* s("f"),
              dir: yield* s("d"),
              link: yield* s("l"),
              exists: yield* fs.exists(Path.join(dir, "f")),
              missing: yield* fs.exists(Path.join(dir, "nope")),
              underFile: yield* Effect.either(fs.exists(Path.join(dir, "f", "x"))),
              access: yield* fs.access(Path.join(dir, "d")),
              accessRead: yield* Effect.either(fs.access(Path.join(dir, "nope"), { readable: true })),
              statMissing: yield* Effect.either(fs.stat(Path.join(dir, "nope")))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          file: { type: "File", size: "5n", mode: 0o644 },
          dir: { type: "Directory" },
          link: { type: "File", size: "5n" },
          exists: true,
          missing: false,
          underFile: { _tag: "Left", left: { reason: "BadResource", method: "access" } },
          accessRead: { _tag: "Left", left: notFound("access", "<dir>/nope") },
          statMissing: { _tag: "Left", left: notFound("stat", "<dir>/nope") }
        })
      }))

    it.scoped("stat of one file gives the same Info through both", () =>
      Effect.gen(function*() {
        const node = yield* NodeFs
        const uring = yield* UringFs
        const dir = yield* tempDir()
        const path = Path.join(dir, "f")
        Fs.writeFileSync(path, pattern(10_000))
        Fs.symlinkSync("/dev/null", Path.join(dir, "null"))
        for (const target of [path, dir, Path.join(dir, "null")]) {
          const a = yield* node.stat(target)
          const b = yield* uring.stat(target)
          expect(normalize(b, dir)).toEqual(normalize(a, dir))
        }
        const viaFile = yield* Effect.flatMap(uring.open(path), (file) => file.stat)
        expect(normalize(viaFile, dir)).toEqual(normalize(yield* node.stat(path), dir))
      }))

    it.scoped("truncate by path", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const path = Path.join(dir, "f")
            yield* fs.writeFileString(path, "0123456789")
            yield* fs.truncate(path, 3)
            const three = yield* fs.readFileString(path)
            yield* fs.makeDirectory(Path.join(dir, "d"))
            // A negative length is 0, as Node's ftruncate takes it.
            yield* fs.writeFileString(Path.join(dir, "g"), "0123")
            yield* fs.truncate(Path.join(dir, "g"), -5)
            return {
              three,
              dir: yield* Effect.either(fs.truncate(Path.join(dir, "d"))),
              missing: yield* Effect.either(fs.truncate(Path.join(dir, "nope"), 1))
            }
          })
        )
        expect(tree.g).toBe("file 644 ")
        expect(outcome.ok).toMatchObject({
          three: "012",
          dir: { left: { reason: "BadResource", method: "truncate" } },
          missing: { left: notFound("truncate", "<dir>/nope") }
        })
        expect(tree.f).toBe("file 644 012")
      }))
  })

  describe("stream and sink", () => {
    const data = pattern(300 * 1024 + 17)
    const collect = (fs: FileSystem.FileSystem, path: string, options?: FileSystem.StreamOptions) =>
      fs.stream(path, options).pipe(
        Stream.runCollect,
        Effect.map((chunks) => {
          const parts = Chunk.toReadonlyArray(chunks)
          return { sizes: parts.map((part) => part.length), content: Buffer.concat(parts.map((p) => Buffer.from(p))) }
        })
      )
    const cases: Array<[string, FileSystem.StreamOptions | undefined, number, number | undefined]> = [
      ["defaults", undefined, 0, undefined],
      ["offset", { offset: 1000 }, 1000, undefined],
      ["bytesToRead", { bytesToRead: 70_000 }, 0, 70_000],
      ["offset, bytesToRead and a small chunk", { offset: 5, bytesToRead: 10, chunkSize: 3 }, 5, 10],
      ["chunkSize and bufferSize", { chunkSize: 1000, bufferSize: 2 }, 0, undefined],
      ["bytesToRead past the end", { offset: data.length - 10, bytesToRead: 100 }, data.length - 10, 100],
      ["offset past the end", { offset: data.length + 5 }, data.length, undefined],
      ["nothing to read", { bytesToRead: 0 }, 0, 0]
    ]
    for (const [name, options, from, count] of cases) {
      it.scoped(`stream: ${name}`, () =>
        Effect.gen(function*() {
          const { outcome } = yield* same((fs, dir) =>
            Effect.gen(function*() {
              const path = Path.join(dir, "data")
              yield* fs.writeFile(path, data)
              return yield* collect(fs, path, options)
            })
          )
          const expected = data.subarray(from, count === undefined ? undefined : Math.min(data.length, from + count))
          expect(outcome.ok.content).toBe(`bytes:${Buffer.from(expected).toString("latin1")}`)
          const chunk = Number(options?.chunkSize ?? 64 * 1024)
          expect(outcome.ok.sizes.slice(0, -1).every((size: number) => size === chunk)).toBe(true)
        }))
    }

    it.scoped("stream of a missing file fails with NotFound from open", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) => collect(fs, Path.join(dir, "nope")))
        expect(outcome.error).toEqual(notFound("open", "<dir>/nope"))
      }))

    it.scoped("stream of a file that is not a regular file (/proc) reads to the end", () =>
      Effect.gen(function*() {
        const node = yield* NodeFs
        const uring = yield* UringFs
        // environ, not mountinfo: the other test file running meanwhile may mount something.
        const a = yield* collect(node, "/proc/self/environ", { chunkSize: 64 })
        const b = yield* collect(uring, "/proc/self/environ", { chunkSize: 64 })
        expect(b.content.length).toBeGreaterThan(64)
        expect(b.content.toString()).toEqual(a.content.toString())
      }))

    it.scoped("sink writes every chunk, honouring the flag", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const path = Path.join(dir, "out")
            yield* Stream.make(bytes("a"), bytes("bc"), bytes("def")).pipe(Stream.run(fs.sink(path)))
            yield* Stream.make(bytes("+g")).pipe(Stream.run(fs.sink(path, { flag: "a" })))
            return yield* fs.readFileString(path)
          })
        )
        expect(outcome.ok).toBe("abcdef+g")
        expect(tree.out).toBe("file 644 abcdef+g")
      }))
  })

  describe("directories", () => {
    it.scoped("recursive mkdir and remove", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (...parts: Array<string>) => Path.join(dir, ...parts)
            yield* fs.makeDirectory(p("a", "b", "c"), { recursive: true })
            yield* fs.makeDirectory(p("a", "b", "c"), { recursive: true })
            yield* fs.makeDirectory(p("m"), { mode: 0o750 })
            yield* fs.writeFileString(p("a", "b", "c", "f"), "x")
            yield* fs.writeFileString(p("a", "g"), "y")
            yield* fs.symlink(p("m"), p("a", "b", "link-to-m"))
            yield* fs.writeFileString(p("file"), "z")
            yield* fs.writeFileString(p("file2"), "w")
            yield* fs.makeDirectory(p("empty"))
            yield* fs.symlink(p("m"), p("link-to-m"))
            const results = {
              again: yield* Effect.either(fs.makeDirectory(p("a"))),
              overFile: yield* Effect.either(fs.makeDirectory(p("file"), { recursive: true })),
              underFile: yield* Effect.either(fs.makeDirectory(p("file", "sub"), { recursive: true })),
              missingParent: yield* Effect.either(fs.makeDirectory(p("x", "y"))),
              nonRecursiveRemove: yield* Effect.either(fs.remove(p("a"))),
              missing: yield* Effect.either(fs.remove(p("nope"))),
              missingForce: yield* fs.remove(p("nope"), { force: true }),
              underFileForce: yield* Effect.either(fs.remove(p("file", "x"), { force: true })),
              // Recursive removes of a file, a link to a directory (the link only), an empty
              // directory, and missing paths.
              recursiveFile: yield* Effect.either(fs.remove(p("file2"), { recursive: true })),
              recursiveLink: yield* Effect.either(fs.remove(p("link-to-m"), { recursive: true })),
              recursiveEmpty: yield* Effect.either(fs.remove(p("empty"), { recursive: true })),
              recursiveMissing: yield* Effect.either(fs.remove(p("nope"), { recursive: true })),
              recursiveMissingForce: yield* Effect.either(fs.remove(p("nope"), { recursive: true, force: true })),
              recursiveUnderFile: yield* Effect.either(fs.remove(p("file", "x"), { recursive: true }))
            }
            yield* fs.remove(p("a"), { recursive: true })
            yield* fs.remove(p("file"))
            return { ...results, aGone: yield* fs.exists(p("a")), mStays: yield* fs.exists(p("m")) }
          })
        )
        expect(outcome.ok).toMatchObject({
          again: { left: { reason: "AlreadyExists", method: "makeDirectory", pathOrDescriptor: "<dir>/a" } },
          overFile: { left: { reason: "AlreadyExists", method: "makeDirectory" } },
          underFile: { left: { reason: "BadResource", method: "makeDirectory" } },
          missingParent: { left: notFound("makeDirectory", "<dir>/x/y") },
          nonRecursiveRemove: { left: { reason: "Unknown", method: "remove", pathOrDescriptor: "<dir>/a" } },
          missing: { left: notFound("remove", "<dir>/nope") },
          underFileForce: { left: { reason: "BadResource", method: "remove" } },
          recursiveFile: { _tag: "Right" },
          recursiveLink: { _tag: "Right" },
          recursiveEmpty: { _tag: "Right" },
          recursiveMissing: { left: notFound("remove", "<dir>/nope") },
          recursiveMissingForce: { _tag: "Right" },
          recursiveUnderFile: { left: { reason: "BadResource", method: "remove" } },
          aGone: false,
          mStays: true
        })
        expect(tree).toEqual({ m: "dir 750" })
      }))

    it.scoped("remove on a read-only mount: a missing path is missing, not EROFS, so force succeeds", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const ro = Path.join(dir, "ro")
            yield* tmpfs("64k", "ro", ro)
            const p = Path.join(ro, "nope")
            return {
              force: yield* Effect.either(fs.remove(p, { force: true })),
              forceRecursive: yield* Effect.either(fs.remove(p, { force: true, recursive: true })),
              plain: yield* Effect.either(fs.remove(p)),
              recursive: yield* Effect.either(fs.remove(p, { recursive: true })),
              // There, but the mount refuses: EROFS.
              present: yield* Effect.either(fs.remove(ro, { recursive: true }))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          force: { _tag: "Right" },
          forceRecursive: { _tag: "Right" },
          plain: { left: notFound("remove", "<dir>/ro/nope") },
          recursive: { left: notFound("remove", "<dir>/ro/nope") },
          present: { left: { reason: "Busy", method: "remove" } }
        })
      }))

    it.scoped("a recursive remove of a path ending in .. is refused, as one ending in . is, and removes nothing", () =>
      Effect.gen(function*() {
        const fs = yield* UringFs
        const dir = yield* tempDir()
        Fs.mkdirSync(Path.join(dir, "a", "b"), { recursive: true })
        Fs.writeFileSync(Path.join(dir, "a", "f"), "keep")
        for (const path of [Path.join(dir, "a", "b") + "/..", Path.join(dir, "a", "b") + "/../", Path.join(dir, "a") + "/."]) {
          expect(yield* Effect.flip(fs.remove(path, { recursive: true }))).toMatchObject({
            _tag: "SystemError",
            reason: "Unknown",
            syscall: "rmdir",
            description: expect.stringContaining("EINVAL")
          })
        }
        expect(Fs.readdirSync(Path.join(dir, "a")).sort()).toEqual(["b", "f"])
      }))

    it.scoped("rename over an existing file, and rename errors", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (name: string) => Path.join(dir, name)
            yield* fs.writeFileString(p("from"), "new")
            yield* fs.writeFileString(p("to"), "old")
            yield* fs.rename(p("from"), p("to"))
            yield* fs.makeDirectory(p("d"))
            return {
              content: yield* fs.readFileString(p("to")),
              fromGone: yield* fs.exists(p("from")),
              dirOntoFile: yield* Effect.either(fs.rename(p("d"), p("to"))),
              missing: yield* Effect.either(fs.rename(p("nope"), p("x")))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          content: "new",
          fromGone: false,
          dirOntoFile: { left: { reason: "BadResource", method: "rename", pathOrDescriptor: "<dir>/d" } },
          missing: { left: notFound("rename", "<dir>/nope") }
        })
        expect(tree).toEqual({ d: "dir 755", to: "file 644 new" })
      }))

    it.scoped("copy of a tree, with and without overwrite, and its errors", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (...parts: Array<string>) => Path.join(dir, ...parts)
            yield* fs.makeDirectory(p("src", "sub", "deeper"), { recursive: true })
            yield* fs.makeDirectory(p("src", "empty"), { mode: 0o700 })
            yield* fs.writeFileString(p("src", "a.txt"), "alpha")
            yield* fs.writeFileString(p("src", "sub", "b.txt"), "beta", { mode: 0o600 })
            yield* fs.writeFile(p("src", "sub", "deeper", "big.bin"), pattern(5 * 1024 * 1024 + 1))
            yield* fs.symlink("a.txt", p("src", "rel-link"))
            yield* fs.copy(p("src"), p("out", "nested", "dst"))
            // Node's cp refuses to copy a link onto a copy of itself; keep the rest of the test about files.
            yield* fs.remove(p("src", "rel-link"))
            // Without overwrite, existing files are kept; new ones are added.
            yield* fs.writeFileString(p("src", "a.txt"), "ALPHA")
            yield* fs.writeFileString(p("src", "new.txt"), "new")
            yield* fs.copy(p("src"), p("out", "nested", "dst"))
            const kept = yield* fs.readFileString(p("out", "nested", "dst", "a.txt"))
            yield* fs.copy(p("src"), p("out", "nested", "dst"), { overwrite: true })
            const replaced = yield* fs.readFileString(p("out", "nested", "dst", "a.txt"))
            yield* fs.copy(p("src", "a.txt"), p("single.txt"))
            return {
              kept,
              replaced,
              intoItself: yield* Effect.either(fs.copy(p("src"), p("src", "sub", "x"))),
              fileOntoDir: yield* Effect.either(fs.copy(p("src", "a.txt"), p("src", "sub"))),
              missing: yield* Effect.either(fs.copy(p("nope"), p("x")))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          kept: "alpha",
          replaced: "ALPHA",
          intoItself: { left: { reason: "Unknown", method: "copy", pathOrDescriptor: "<dir>/src" } },
          fileOntoDir: { left: { reason: "Unknown", method: "copy", pathOrDescriptor: "<dir>/src/a.txt" } },
          missing: { left: notFound("copy", "<dir>/nope") }
        })
        expect(tree["out/nested/dst/empty"]).toBe("dir 700")
        expect(tree["out/nested/dst/sub/b.txt"]).toBe("file 600 beta")
        expect(tree["out/nested/dst/rel-link"]).toBe("link -> <dir>/src/a.txt")
        expect(tree["out/nested/dst/new.txt"]).toBe("file 644 new")
        expect(tree["single.txt"]).toBe("file 644 ALPHA")
        expect(tree["out/nested/dst/sub/deeper/big.bin"]).toBe(tree["src/sub/deeper/big.bin"])
      }))

    it.scoped("data in a SharedArrayBuffer or a resizable ArrayBuffer is written and read as Node does", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const shared = new Uint8Array(new SharedArrayBuffer(5))
            shared.set(bytes("hello"))
            // ES2024's constructor, past this project's ES2022 lib.
            const Resizable = ArrayBuffer as unknown as new(n: number, o: { maxByteLength: number }) => ArrayBuffer
            const resizable = new Uint8Array(new Resizable(3, { maxByteLength: 8 }))
            resizable.set(bytes("abc"))
            yield* fs.writeFile(Path.join(dir, "whole"), shared)
            const file = yield* fs.open(Path.join(dir, "f"), { flag: "w+" })
            yield* file.writeAll(shared)
            yield* file.write(resizable)
            const into = new Uint8Array(new SharedArrayBuffer(8))
            yield* file.seek(0, "start")
            const read = yield* file.read(into)
            return { whole: yield* fs.readFileString(Path.join(dir, "whole")), read, into: str(into) }
          })
        )
        expect(outcome.ok).toEqual({ whole: "hello", read: "8n", into: "helloabc" })
      }))

    it.scoped("makeDirectory recursive on a dangling symlink, or beneath one, fails as Node's mkdirp does", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            yield* fs.symlink("nope", Path.join(dir, "l"))
            return {
              at: yield* Effect.either(fs.makeDirectory(Path.join(dir, "l"), { recursive: true })),
              beneath: yield* Effect.either(fs.makeDirectory(Path.join(dir, "l", "x"), { recursive: true }))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          at: { left: notFound("makeDirectory", "<dir>/l") },
          beneath: { left: { reason: "BadResource", pathOrDescriptor: "<dir>/l/x" } }
        })
      }))

    it.scoped("copy into itself through a symlink is refused before anything is copied", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            yield* fs.makeDirectory(Path.join(dir, "src"))
            yield* fs.writeFileString(Path.join(dir, "src", "a"), "a")
            yield* fs.symlink("src", Path.join(dir, "lnk"))
            return yield* Effect.either(fs.copy(Path.join(dir, "src"), Path.join(dir, "lnk", "sub")))
          })
        )
        expect(outcome.ok).toMatchObject({ left: { reason: "Unknown", method: "copy", pathOrDescriptor: "<dir>/src" } })
        expect(Object.keys(tree).sort()).toEqual(["lnk", "src", "src/a"])
      }))

    it.scoped("copy with preserveTimestamps keeps the mtime", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (name: string) => Path.join(dir, name)
            yield* fs.writeFileString(p("f"), "x", { mode: 0o444 })
            yield* fs.utimes(p("f"), new Date("2001-02-03T04:05:06Z"), new Date("2001-02-03T04:05:06Z"))
            yield* fs.copy(p("f"), p("g"), { preserveTimestamps: true })
            const info = yield* fs.stat(p("g"))
            return { mtime: info.mtime, mode: info.mode & 0o777 }
          })
        )
        expect(outcome.ok).toEqual({ mtime: { some: "2001-02-03T04:05:06.000Z" }, mode: 0o444 })
      }))

    it.scoped("copy with preserveTimestamps keeps times to the microsecond (Node's cuts them to the millisecond)", () =>
      Effect.gen(function*() {
        const fs = yield* UringFs
        const dir = yield* tempDir()
        const [src, dest] = [Path.join(dir, "f"), Path.join(dir, "g")]
        Fs.writeFileSync(src, "x")
        Fs.utimesSync(src, 1_000_000_000.123456, 1_000_000_000.987654)
        yield* fs.copy(src, dest, { preserveTimestamps: true })
        const [from, to] = [Fs.statSync(src, { bigint: true }), Fs.statSync(dest, { bigint: true })]
        const apart = (a: bigint, b: bigint) => Number(a > b ? a - b : b - a)
        expect(apart(to.mtimeNs, from.mtimeNs)).toBeLessThan(1000)
        expect(apart(to.atimeNs, from.atimeNs)).toBeLessThan(1000)
      }))

    it.scoped("copyFile: content and mode, over an existing file, onto itself, and errors", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (name: string) => Path.join(dir, name)
            yield* fs.writeFileString(p("src"), "payload", { mode: 0o640 })
            yield* fs.writeFileString(p("existing"), "a much longer old content")
            yield* fs.copyFile(p("src"), p("copy"))
            yield* fs.copyFile(p("src"), p("existing"))
            yield* fs.copyFile(p("src"), p("src"))
            yield* fs.makeDirectory(p("d"))
            return {
              dirSource: yield* Effect.either(fs.copyFile(p("d"), p("x"))),
              dirTarget: yield* Effect.either(fs.copyFile(p("src"), p("d"))),
              missing: yield* Effect.either(fs.copyFile(p("nope"), p("y")))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          dirSource: { left: { reason: "BadResource", method: "copyFile", pathOrDescriptor: "<dir>/d" } },
          dirTarget: { left: { reason: "BadResource", method: "copyFile", pathOrDescriptor: "<dir>/src" } },
          missing: { left: notFound("copyFile", "<dir>/nope") }
        })
        expect(tree).toEqual({
          copy: "file 640 payload",
          d: "dir 755",
          existing: "file 640 payload",
          src: "file 640 payload"
        })
      }))

    it.scoped("link, symlink, readLink, realPath and readDirectory", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (name: string) => Path.join(dir, name)
            yield* fs.writeFileString(p("f"), "x")
            yield* fs.link(p("f"), p("hard"))
            yield* fs.symlink("f", p("soft"))
            return {
              nlink: (yield* fs.stat(p("f"))).nlink,
              readLink: yield* fs.readLink(p("soft")),
              realPath: yield* fs.realPath(p("soft")),
              list: (yield* fs.readDirectory(dir)).sort(),
              linkExists: yield* Effect.either(fs.link(p("f"), p("hard"))),
              symlinkExists: yield* Effect.either(fs.symlink("f", p("soft"))),
              linkMissing: yield* Effect.either(fs.link(p("nope"), p("z")))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          nlink: { some: 2 },
          readLink: "f",
          list: ["f", "hard", "soft"],
          linkExists: { left: { reason: "AlreadyExists", method: "link", pathOrDescriptor: "<dir>/f" } },
          symlinkExists: { left: { reason: "AlreadyExists", method: "symlink", pathOrDescriptor: "f" } },
          linkMissing: { left: notFound("link", "<dir>/nope") }
        })
      }))
  })

  describe("temporary files and directories", () => {
    it.scoped("scoped temp files and directories are removed with their scope", () =>
      Effect.gen(function*() {
        const { outcome, tree } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const inside = yield* Effect.scoped(Effect.gen(function*() {
              const tmpDir = yield* fs.makeTempDirectoryScoped({ directory: dir, prefix: "d-" })
              yield* fs.makeDirectory(Path.join(tmpDir, "nested"))
              yield* fs.writeFileString(Path.join(tmpDir, "nested", "x"), "x")
              const tmpFile = yield* fs.makeTempFileScoped({ directory: dir, prefix: "f-", suffix: ".txt" })
              const mode = (yield* fs.stat(tmpDir)).mode & 0o777
              return {
                dirName: /^<dir>\/d-[A-Za-z0-9]{6}$/.test(String(normalize(tmpDir, dir))),
                fileName: /^<dir>\/f-[A-Za-z0-9]{6}\/[0-9a-f]{12}\.txt$/.test(String(normalize(tmpFile, dir))),
                fileContent: yield* fs.readFileString(tmpFile),
                mode,
                paths: [tmpDir, tmpFile] as const
              }
            }))
            return {
              ...inside,
              paths: undefined,
              dirGone: !(yield* fs.exists(inside.paths[0])),
              fileGone: !(yield* fs.exists(inside.paths[1])),
              fileDirGone: !(yield* fs.exists(Path.dirname(inside.paths[1])))
            }
          })
        )
        expect(outcome.ok).toEqual({
          dirName: true,
          fileName: true,
          fileContent: "",
          mode: 0o700,
          paths: undefined,
          dirGone: true,
          fileGone: true,
          fileDirGone: true
        })
        expect(tree).toEqual({})
      }))

    it.scoped("unscoped temp files stay; a missing directory fails with NotFound", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const tmpDir = yield* fs.makeTempDirectory({ directory: dir })
            const tmpFile = yield* fs.makeTempFile({ directory: dir, prefix: "p" })
            return {
              dir: /^<dir>\/[A-Za-z0-9]{6}$/.test(String(normalize(tmpDir, dir))),
              file: (yield* fs.stat(tmpFile)).type,
              missing: yield* Effect.either(fs.makeTempDirectory({ directory: Path.join(dir, "nope"), prefix: "p" })),
              removed: yield* Effect.all([
                fs.remove(tmpDir, { recursive: true }),
                fs.remove(Path.dirname(tmpFile), { recursive: true })
              ])
            }
          })
        )
        expect(outcome.ok).toEqual({
          dir: true,
          file: "File",
          missing: { _tag: "Left", left: notFound("makeTempDirectory", "<dir>/nope/p") },
          removed: [undefined, undefined]
        })
      }))
  })

  describe("errors", () => {
    it.scoped("an empty or over-long path fails as the kernel fails it: NotFound, ENAMETOOLONG", () =>
      Effect.gen(function*() {
        const long = "/tmp/" + "a".repeat(4200)
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            Fs.writeFileSync(`${dir}/x`, "x")
            return {
              stat: yield* Effect.either(fs.stat("")),
              exists: yield* Effect.either(fs.exists("")),
              readFile: yield* Effect.either(fs.readFile("")),
              makeDirectory: yield* Effect.either(fs.makeDirectory("")),
              remove: yield* Effect.either(fs.remove("")),
              removeForced: yield* Effect.either(fs.remove("", { force: true })),
              statLong: yield* Effect.either(fs.stat(long)),
              existsLong: yield* Effect.either(fs.exists(long)),
              readFileLong: yield* Effect.either(fs.readFileString(long)),
              // Members with two paths: either one empty or over-long.
              renameFromEmpty: yield* Effect.either(fs.rename("", `${dir}/x`)),
              renameToEmpty: yield* Effect.either(fs.rename(`${dir}/x`, "")),
              renameToLong: yield* Effect.either(fs.rename(`${dir}/x`, long)),
              linkFromEmpty: yield* Effect.either(fs.link("", `${dir}/x`)),
              linkToLong: yield* Effect.either(fs.link(`${dir}/x`, long)),
              symlinkToEmpty: yield* Effect.either(fs.symlink("", `${dir}/l`)),
              symlinkAtEmpty: yield* Effect.either(fs.symlink(`${dir}/x`, "")),
              symlinkAtLong: yield* Effect.either(fs.symlink(`${dir}/x`, long))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          stat: { left: notFound("stat", "") },
          exists: { right: false },
          readFile: { left: notFound("readFile", "") },
          removeForced: { _tag: "Right" },
          statLong: { left: { _tag: "SystemError", reason: "Unknown", method: "stat" } },
          existsLong: { left: { _tag: "SystemError", reason: "Unknown", method: "access" } }
        })
      }))

    it.scoped("open: NotFound, AlreadyExists on wx, BadResource for a directory opened for writing", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (name: string) => Path.join(dir, name)
            yield* fs.writeFileString(p("f"), "x")
            yield* fs.makeDirectory(p("d"))
            const attempt = (path: string, flag?: FileSystem.OpenFlag) =>
              Effect.either(Effect.scoped(fs.open(path, flag ? { flag } : {})))
            return {
              missing: yield* attempt(p("nope")),
              wx: yield* attempt(p("f"), "wx"),
              dirWrite: yield* attempt(p("d"), "w"),
              underFile: yield* attempt(p("f/x")),
              readDir: yield* Effect.either(fs.readFile(p("d"))),
              readMissing: yield* Effect.either(fs.readFileString(p("nope")))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          missing: { left: notFound("open", "<dir>/nope") },
          wx: { left: { reason: "AlreadyExists", method: "open", pathOrDescriptor: "<dir>/f" } },
          dirWrite: { left: { reason: "BadResource", method: "open" } },
          underFile: { left: { reason: "BadResource", method: "open" } },
          readDir: { left: { reason: "BadResource", method: "readFile" } },
          readMissing: { left: notFound("readFile", "<dir>/nope") }
        })
      }))

    it.scoped("a symlink loop is BadResource (ELOOP) and a mount point removed is Busy (EBUSY), as Node's are", () =>
      Effect.gen(function*() {
        const { outcome } = yield* same((fs, dir) =>
          Effect.gen(function*() {
            const p = (name: string) => Path.join(dir, name)
            Fs.symlinkSync("b", p("a"))
            Fs.symlinkSync("a", p("b"))
            yield* tmpfs("64k", "", p("mnt"))
            return {
              loop: yield* Effect.either(fs.readFile(p("a"))),
              loopString: yield* Effect.either(fs.readFileString(p("a"))),
              // Recursive: without it Node refuses any directory before the kernel sees it.
              mount: yield* Effect.either(fs.remove(p("mnt"), { recursive: true }))
            }
          })
        )
        expect(outcome.ok).toMatchObject({
          loop: { left: { reason: "BadResource", method: "readFile", pathOrDescriptor: "<dir>/a" } },
          loopString: { left: { reason: "BadResource", method: "readFile" } },
          mount: { left: { reason: "Busy", method: "remove", pathOrDescriptor: "<dir>/mnt" } }
        })
      }))

    it.scoped("readFile errors name the system call Node's do: open, or read for a directory", () =>
      Effect.gen(function*() {
        const node = yield* NodeFs
        const uring = yield* UringFs
        const dir = yield* tempDir()
        Fs.writeFileSync(Path.join(dir, "f"), "x")
        const fields = (error: PlatformError.PlatformError) =>
          error._tag === "SystemError" ? { reason: error.reason, syscall: error.syscall } : error
        for (const path of [Path.join(dir, "nope"), dir, Path.join(dir, "f", "under")]) {
          const expected = fields(yield* Effect.flip(node.readFile(path)))
          expect(fields(yield* Effect.flip(uring.readFile(path)))).toEqual(expected)
          expect(fields(yield* Effect.flip(uring.readFileString(path)))).toEqual(expected)
        }
      }))

    it.scoped("errors name the system call Node's do and carry Node's description", () =>
      Effect.gen(function*() {
        const fields = (error: PlatformError.PlatformError, dir: string) =>
          error._tag === "SystemError"
            ? { method: error.method, reason: error.reason, syscall: error.syscall, description: normalize(error.description, dir) }
            : error._tag
        const cases: Array<[string, Case<unknown>]> = [
          ["stat missing", (fs, dir) => fs.stat(Path.join(dir, "nope"))],
          ["open missing", (fs, dir) => fs.open(Path.join(dir, "nope"))],
          ["readFile of a directory", (fs, dir) => fs.readFile(dir)],
          ["writeFile to a directory", (fs, dir) => fs.writeFile(dir, bytes("x"))],
          ["truncate missing", (fs, dir) => fs.truncate(Path.join(dir, "nope"))],
          ["makeDirectory existing", (fs, dir) => fs.makeDirectory(dir)],
          ["remove missing", (fs, dir) => fs.remove(Path.join(dir, "nope"))],
          ["remove missing, recursive", (fs, dir) => fs.remove(Path.join(dir, "nope"), { recursive: true })],
          ["remove beneath a file", (fs, dir) =>
            Effect.zipRight(fs.writeFileString(Path.join(dir, "f"), "x"), fs.remove(Path.join(dir, "f", "x")))],
          ["link onto an existing file", (fs, dir) =>
            Effect.zipRight(fs.writeFileString(Path.join(dir, "f"), "x"), fs.link(Path.join(dir, "f"), Path.join(dir, "f")))],
          ["symlink onto an existing file", (fs, dir) =>
            Effect.zipRight(fs.writeFileString(Path.join(dir, "f"), "x"), fs.symlink("t", Path.join(dir, "f")))],
          ["copy of a missing source", (fs, dir) => fs.copy(Path.join(dir, "nope"), Path.join(dir, "to"))],
          ["read of a directory", (fs, dir) => Effect.flatMap(fs.open(dir), (file) => file.readAlloc(4))]
        ]
        for (const [name, body] of cases) {
          const result = yield* both((fs, dir) =>
            Effect.map(Effect.either(body(fs, dir)), (result) => Either.isLeft(result) ? fields(result.left, dir) : "succeeded")
          )
          expect([name, result.uring]).toEqual([name, result.node])
        }
        // A temporary directory's name is random: the system call alone.
        const temp = yield* both((fs, dir) =>
          Effect.map(Effect.either(fs.makeTempDirectory({ directory: Path.join(dir, "nope") })), (result) =>
            Either.isLeft(result) && result.left._tag === "SystemError" ? result.left.syscall : "no SystemError")
        )
        expect(temp.uring).toEqual({ ok: "mkdtemp" })
        expect(temp.node).toEqual(temp.uring)
      }))

    it.scoped("a failure carries the errno in its cause", () =>
      Effect.gen(function*() {
        const fs = yield* UringFs
        const error = yield* Effect.flip(fs.stat("/definitely/not/here"))
        expect(error._tag).toBe("SystemError")
        if (error._tag !== "SystemError") return
        expect(error.reason).toBe("NotFound")
        expect(error.module).toBe("FileSystem")
        expect(error.method).toBe("stat")
        expect(error.pathOrDescriptor).toBe("/definitely/not/here")
        expect(error.cause).toMatchObject({ _tag: "NotFound", errno: 2, code: "ENOENT" })
        expect(error.message).toContain("ENOENT")
      }))

    it.scoped("writeAll and writeAllAt failing part-way say in the description how much they wrote", () =>
      Effect.gen(function*() {
        const fs = yield* UringFs
        const mount = yield* tmpfs("64k")
        const path = Path.join(mount, "f")
        const file = yield* fs.open(path, { flag: "w+" })
        const fields = { _tag: "SystemError", reason: "Unknown", syscall: "write", pathOrDescriptor: file.fd }
        // Node's description names no path for a call on an fd.
        const description = "ENOSPC: no space left on device, write, after writing 65536 bytes"
        expect(yield* Effect.flip(file.writeAll(new Uint8Array(1 << 20)))).toMatchObject({
          ...fields,
          method: "writeAll",
          description,
          cause: { _tag: "NoSpace", written: 65536 }
        })
        if (!UringFileSystem.isUringFile(file)) return expect.unreachable()
        yield* file.truncate(0)
        expect(yield* Effect.flip(file.writeAllAt(new Uint8Array(1 << 20), 0))).toMatchObject({
          ...fields,
          method: "writeAllAt",
          description,
          cause: { _tag: "NoSpace", written: 65536 }
        })
      }))

    it.scoped("a failure converted from a kernel error carries no JavaScript stack, like the ring error it wraps", () =>
      Effect.gen(function*() {
        const fs = yield* UringFs
        const limit = Error.stackTraceLimit
        const error = yield* Effect.flip(fs.stat("/definitely/not/here"))
        expect(error).toBeInstanceOf(Error)
        expect(error.stack).toBe(`SystemError: ${error.message}`)
        expect(Error.stackTraceLimit).toBe(limit)
        // A member built on another (readFileString on readFile) fails alike.
        const remapped = yield* Effect.flip(fs.readFileString("/definitely/not/here"))
        expect(remapped).toMatchObject({ reason: "NotFound", method: "readFile" })
        expect(remapped.stack).toBe(`SystemError: ${remapped.message}`)
      }))
  })
})

describe("UringFile extras", () => {
  layer(BothLayer)((it) => {
    it.scoped("readAt/writeAt leave the cursor alone; datasync, allocate and advise work", () =>
      Effect.gen(function*() {
        const fs = yield* UringFs
        const dir = yield* tempDir()
        const file = yield* fs.open(Path.join(dir, "x"), { flag: "w+" })
        expect(UringFileSystem.isUringFile(file)).toBe(true)
        if (!UringFileSystem.isUringFile(file)) return
        yield* file.writeAll(bytes("abcdef"))
        expect(yield* file.writeAt(bytes("XY"), 1)).toBe(2n)
        yield* file.writeAllAt(bytes("Z"), 10)
        const buf = new Uint8Array(3)
        expect(yield* file.readAt(buf, 0)).toBe(3n)
        expect(str(buf)).toBe("aXY")
        expect(Option.map(yield* file.readAllocAt(10, 4), str)).toEqual(Option.some("ef\0\0\0\0Z"))
        expect(yield* file.readAllocAt(10, 100)).toEqual(Option.none())
        // The cursor is still at 6, after the writeAll.
        yield* file.write(bytes("!"))
        yield* file.datasync
        yield* file.sync
        yield* file.allocate(0, 64 * 1024)
        yield* file.advise("sequential")
        yield* file.allocate(0, 1024 * 1024, { keepSize: true })
        expect((yield* file.stat).size).toBe(FileSystem.Size(64 * 1024))
        expect(Fs.readFileSync(Path.join(dir, "x")).subarray(0, 11).toString("latin1")).toBe("aXYdef!\0\0\0Z")
        const node = yield* NodeFs
        expect(UringFileSystem.isUringFile(yield* node.open(Path.join(dir, "x")))).toBe(false)
        expect(UringFileSystem.isUringFileSystem(fs)).toBe(true)
        expect(UringFileSystem.isUringFileSystem(node)).toBe(false)
      }))

    it.scoped("a short read's bytes have a buffer of their own, as Node's readAlloc gives", () =>
      Effect.gen(function*() {
        const fs = yield* UringFs
        const dir = yield* tempDir()
        yield* fs.writeFileString(Path.join(dir, "x"), "short")
        const file = yield* fs.open(Path.join(dir, "x"))
        const read = Option.getOrThrow(yield* file.readAlloc(4096))
        expect(str(read)).toBe("short")
        // Not a slice of Node's shared 8 KiB pool, where `.buffer` holds other Buffers' bytes.
        expect([read.byteOffset, read.buffer.byteLength]).toEqual([0, 5])
      }))
  })
})
