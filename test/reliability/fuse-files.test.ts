/**
 * Reads of a FUSE file the daemon opens for direct I/O (crates/uring-core/examples/fuse_hold.rs
 * with `--direct-io`, a process of its own), through the service and the FileSystem layer. Through
 * io_uring, a read that meets the end of such a file came back whole with the file's bytes twice
 * over (Linux 6.18.44); the engine copies FUSE files with plain reads on its off-ring threads
 * (crates/uring-core/src/off_ring.rs). Pages are numbered, so bytes out of place show. Needs root
 * (mount), as CI has.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { make, Uring, UringFileSystem } from "../../src/index.js"
import { fuseDaemonServing, numberedByte } from "./fuseDaemon.js"
import { realSleep, waitUntil } from "./helpers.js"

const SIZE = 16 * 4096

/** The first offset in `bytes` (read from `offset`) that does not hold the file's byte, or -1. */
const firstWrong = (bytes: Uint8Array, offset: number): number =>
  bytes.findIndex((byte, i) => byte !== numberedByte(offset + i))

describe("a FUSE file opened for direct I/O", () => {
  it.live("reads that meet its end count it once, through the service and the FileSystem layer", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemonServing({ size: SIZE, directIo: true, numbered: true, answer: true })
      const uring = yield* make()
      const file = yield* uring.open(daemon.file)
      for (const [offset, length] of [[0, 2 * SIZE], [10 * 4096, SIZE], [100, SIZE]] as const) {
        const bytes = yield* uring.read(file, offset, length)
        expect(bytes.length, `${length} bytes at ${offset}`).toBe(SIZE - offset)
        expect(firstWrong(bytes, offset)).toBe(-1)
      }
      const registered = yield* uring.register(file)
      const buffer = new Uint8Array(SIZE)
      expect(yield* uring.readInto(registered, 40960, buffer)).toBe(SIZE - 40960)
      expect(firstWrong(buffer.subarray(0, SIZE - 40960), 40960)).toBe(-1)

      const whole = yield* uring.readFile(daemon.file, { sizeHint: 2 * SIZE })
      expect(whole.length).toBe(SIZE)
      expect(firstWrong(whole, 0)).toBe(-1)
      const fs = yield* UringFileSystem.make.pipe(Effect.provideService(Uring, uring))
      const viaLayer = yield* fs.readFile(daemon.file)
      expect(viaLayer.length).toBe(SIZE)
      expect(firstWrong(viaLayer, 0)).toBe(-1)
      const handle = yield* fs.open(daemon.file)
      const chunk = new Uint8Array(2 * SIZE)
      expect(Number(yield* handle.read(chunk))).toBe(SIZE)
      expect(firstWrong(chunk.subarray(0, SIZE), 0)).toBe(-1)
    })))

  it.live("reads that meet its end count it once by a number Node opened, alone and in a batch", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemonServing({ size: SIZE, directIo: true, numbered: true, answer: true })
      const uring = yield* make()
      const fd = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.openSync(daemon.file, "r")),
        (fd) => Effect.sync(() => Fs.closeSync(fd))
      )
      for (const [offset, length] of [[0, 2 * SIZE], [10 * 4096, SIZE], [100, SIZE]] as const) {
        const bytes = yield* uring.read(fd, offset, length)
        expect(bytes.length, `${length} bytes at ${offset}`).toBe(SIZE - offset)
        expect(firstWrong(bytes, offset)).toBe(-1)
      }
      const buffer = new Uint8Array(2 * SIZE)
      const ranges = [{ offset: 0, length: SIZE }, { offset: 12 * 4096, length: SIZE }]
      const [first, last] = yield* uring.readBatch(fd, ranges, { buffer })
      expect(first!.length).toBe(SIZE)
      expect(firstWrong(first!, 0)).toBe(-1)
      expect(last!.length, "the range that meets the end").toBe(4 * 4096)
      expect(firstWrong(last!, 12 * 4096)).toBe(-1)
    })))
})

describe("a FUSE file in a registered slot", () => {
  it.live("reads its FUSE file after the handle it came from closed and its number names another", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemonServing({ size: SIZE, numbered: true, answer: true })
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fuse-slot-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const otherPath = Path.join(dir, "other")
      Fs.writeFileSync(otherPath, new Uint8Array(SIZE).fill(0xee))
      const uring = yield* make()
      const file = yield* uring.open(daemon.file)
      const registered = yield* uring.register(file)
      yield* uring.close(file)
      // The lowest free number: the one the FUSE file was opened at.
      const other = yield* uring.open(otherPath)
      expect(other.fd).toBe(file.fd)
      const buffer = new Uint8Array(SIZE)
      expect(yield* uring.readInto(registered, 0, buffer)).toBe(SIZE)
      expect(firstWrong(buffer, 0)).toBe(-1)
      const bytes = yield* uring.read(registered, 100, SIZE)
      expect(bytes.length).toBe(SIZE - 100)
      expect(firstWrong(bytes, 100)).toBe(-1)
    })))
})

describe("an open of a FUSE file the daemon holds", () => {
  // FUSE's open waits for the daemon in the thread that submits it, which for an inline flush was
  // the JavaScript thread: the event loop stood still until the daemon answered. While a FUSE file
  // system is mounted, opens that may reach it go to kernel workers
  // (crates/uring-core/src/remote_mounts.rs).
  it.live("leaves the event loop turning, by path, as a whole-file read's first step and through the FileSystem layer", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemonServing({ holdOpens: true, answer: true })
      const uring = yield* make()
      const fs = yield* UringFileSystem.make.pipe(Effect.provideService(Uring, uring))
      const started = Date.now()
      const opened = yield* Effect.fork(Effect.scoped(Effect.map(uring.open(daemon.file), (file) => file.fd)))
      const whole = yield* Effect.fork(uring.readFile(daemon.file))
      const viaLayer = yield* Effect.fork(fs.readFile(daemon.file))
      expect(yield* waitUntil(() => daemon.held() >= 3, 5_000), "the opens reached the daemon").toBe(true)
      // The daemon answers held opens by itself after ten seconds: a loop they stalled shows here.
      yield* realSleep(50)
      expect(Date.now() - started, "the event loop turned while the daemon held the opens").toBeLessThan(5_000)
      for (const fiber of [opened, whole, viaLayer]) expect(fiber.unsafePoll(), "each waits for the daemon").toBeNull()
      // Nor does the ring stand still: another file's open and stat go by meanwhile.
      const other = yield* Effect.timeoutOption(
        Effect.scoped(Effect.flatMap(uring.open(import.meta.filename), (file) => uring.fstat(file))),
        "2 seconds"
      )
      expect(Option.map(other, (meta) => meta.type), "another file's open and stat").toEqual(Option.some("File"))

      daemon.release()
      const fd = yield* Fiber.await(opened)
      expect(Exit.isSuccess(fd) && fd.value >= 0, "the open completed").toBe(true)
      for (const bytes of [yield* Fiber.join(whole), yield* Fiber.join(viaLayer)]) {
        expect(bytes.length).toBe(4096)
        expect(bytes.every((byte) => byte === 0x5a)).toBe(true)
      }
    })))
})
