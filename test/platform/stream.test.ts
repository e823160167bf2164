/**
 * The io_uring stream keeps several reads in flight (bounded by bufferSize), and reads one at a time past the size the
 * file had when the stream started.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Uring, type UringShape, UringFileSystem } from "../../src/index.js"
import { fdCount, pattern, tempDir } from "../helpers/fixtures.js"
import { makeWithClient } from "../reliability/helpers.js"

/** Wraps a ring so its reads are counted: the most in flight at once, and how many. */
const counting = (uring: UringShape) => {
  const stats = { inFlight: 0, maxInFlight: 0, reads: 0 }
  const read: UringShape["read"] = (file, offset, length) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        stats.reads++
        stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight)
      }),
      () => uring.read(file, offset, length),
      () => Effect.sync(() => stats.inFlight--)
    )
  return { uring: { ...uring, read }, stats }
}

const collect = (fs: FileSystem.FileSystem, path: string, options?: FileSystem.StreamOptions) =>
  fs.stream(path, options).pipe(Stream.runCollect, Effect.map((chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks))))

describe("UringFileSystem.stream", () => {
  it.scoped("keeps up to bufferSize reads in flight on a large file, one at a time with bufferSize 1", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const path = Path.join(dir, "big")
      const data = pattern(4 * 1024 * 1024 + 5)
      Fs.writeFileSync(path, data)
      const ring = yield* Uring

      const parallel = counting(ring)
      const fs = yield* UringFileSystem.fromUring(parallel.uring)
      const content = yield* collect(fs, path, { chunkSize: 64 * 1024, bufferSize: 8 })
      expect(Buffer.compare(content, Buffer.from(data))).toBe(0)
      expect(parallel.stats.maxInFlight).toBeGreaterThan(1)
      expect(parallel.stats.maxInFlight).toBeLessThanOrEqual(8)
      // 65 chunks, and one more read that finds the end of the file.
      expect(parallel.stats.reads).toBe(66)

      const serial = counting(ring)
      const fs1 = yield* UringFileSystem.fromUring(serial.uring)
      const content1 = yield* collect(fs1, path, { chunkSize: 64 * 1024, bufferSize: 1 })
      expect(Buffer.compare(content1, Buffer.from(data))).toBe(0)
      expect(serial.stats.maxInFlight).toBe(1)
      // Through the ring's threads only: a cached read the JS thread does itself (on the spot,
      // or from the page cache) ends before the next one starts.
    }).pipe(Effect.provide(Uring.layer({ inlineSubmit: false, cachedReads: false }))))

  it.scoped("stops reading ahead at bytesToRead and at end of file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const path = Path.join(dir, "f")
      Fs.writeFileSync(path, pattern(1000))
      const ring = yield* Uring
      const limited = counting(ring)
      const fs = yield* UringFileSystem.fromUring(limited.uring)
      const head = yield* collect(fs, path, { chunkSize: 100, bytesToRead: 250 })
      expect(head.length).toBe(250)
      expect(limited.stats.reads).toBe(3)
      const tail = counting(ring)
      const fs2 = yield* UringFileSystem.fromUring(tail.uring)
      expect((yield* collect(fs2, path, { chunkSize: 300 })).length).toBe(1000)
      // 300, 300, 300, 100 (short), then, as the platform's stream does, one read that returns 0 bytes.
      expect(tail.stats.reads).toBe(5)
    }).pipe(Effect.provide(Uring.layer())))

  it.scoped("an interrupted stream cancels its reads and closes the file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const path = Path.join(dir, "f")
      Fs.writeFileSync(path, pattern(2 * 1024 * 1024))
      // Through the ring's threads only, so the reads ahead are still in flight when the stream ends.
      const { client, uring } = yield* makeWithClient({ inlineSubmit: false, cachedReads: false })
      const fs = yield* UringFileSystem.fromUring(uring)
      const before = fdCount()
      const first = yield* fs.stream(path, { chunkSize: 4096 }).pipe(Stream.take(3), Stream.runCollect)
      expect(Chunk.size(first)).toBe(3)
      expect(fdCount()).toBe(before)
      expect([client.pending, client.native.inFlight]).toEqual([0, 0])
    }))
})
