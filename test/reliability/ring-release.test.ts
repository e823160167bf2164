/**
 * A closed ring is freed: its io_uring fd, the kernel's mappings and its registered-file table go
 * once nothing references its objects. The env cleanup hook, kept for rings still open when the
 * worker or process ends, held the ring: every layer built and closed left an io_uring fd and
 * about 1.8 MB behind, until EMFILE.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Uring } from "../../src/index.js"
import { eventFdCount, mountTableFdCount, ringFdCount, tempDir, threadsNamed } from "../helpers/fixtures.js"
import { fullGc, realSleep, waitUntil } from "./helpers.js"

const RINGS = 40

describe("closed rings", () => {
  it.scoped(`${RINGS} layers built, used and closed leave no io_uring fd behind`, () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const before = ringFdCount()
      for (let i = 0; i < RINGS; i++) {
        const path = Path.join(dir, `f${i}`)
        yield* Effect.scoped(Effect.gen(function*() {
          const uring = yield* Uring
          yield* uring.writeFile(path, new Uint8Array([i]))
          // A registered file too: its slot is the kernel's reference to the file.
          const file = yield* uring.register(yield* uring.open(path))
          expect((yield* uring.read(file, 0, 1))[0]).toBe(i)
        }).pipe(Effect.provide(Layer.fresh(Uring.layer({ ringSize: 64, registeredFiles: 16 })))))
      }
      const released = yield* waitUntil(() => {
        fullGc()
        return ringFdCount() === before
      }, 20_000, 20)
      expect({ released, left: ringFdCount() - before }).toEqual({ released: true, left: 0 })
      // The mount table the engine follows (for remote mounts) is opened once for the process.
      expect(mountTableFdCount()).toBe(1)
      expect(threadsNamed("remote-mounts")).toBe(1)
    }))

  it.effect("an open ring holds one eventfd for its event loop, and its close closes it at once", () =>
    Effect.gen(function*() {
      const before = eventFdCount()
      const inside = yield* Effect.scoped(Effect.gen(function*() {
        const uring = yield* Uring
        // An op the kernel finishes on a worker, so its completion comes through the eventfd.
        yield* uring.mkdir(Path.join(yield* tempDir(), "d"))
        return eventFdCount()
      }).pipe(Effect.provide(Layer.fresh(Uring.layer({ ringSize: 64 })))))
      // No garbage collection in between: the close itself closed it.
      expect({ inside: inside - before, after: eventFdCount() - before }).toEqual({ inside: 1, after: 0 })
    }))

  it.scoped("a ring's batch helper thread starts at its first large cached batch, and its close ends it", () =>
    Effect.gen(function*() {
      const path = Path.join(yield* tempDir(), "f")
      Fs.writeFileSync(path, new Uint8Array(16 * 4096).fill(7))
      const before = threadsNamed("uring-read")
      // With one CPU to run on no helper starts: it would take the core from the thread it helps.
      const helpers = Os.availableParallelism() >= 2 ? 1 : 0
      const counts = yield* Effect.scoped(Effect.gen(function*() {
        const uring = yield* Uring
        const file = yield* uring.open(path)
        const small = yield* uring.readBatch(file, [{ offset: 0, length: 4096 }])
        const afterSmall = threadsNamed("uring-read")
        const ranges = Array.from({ length: 16 }, (_, i) => ({ offset: i * 4096, length: 4096 }))
        const large = yield* uring.readBatch(file, ranges)
        expect([...small, ...large].every((slice) => slice.length === 4096 && slice.every((b) => b === 7))).toBe(true)
        // A new thread takes its name shortly after it starts.
        yield* waitUntil(() => threadsNamed("uring-read") === before + helpers, 2_000)
        return { afterSmall: afterSmall - before, afterLarge: threadsNamed("uring-read") - before }
      }).pipe(Effect.provide(Layer.fresh(Uring.layer({ ringSize: 64 })))))
      // The close joined it: no garbage collection in between.
      expect({ ...counts, closed: threadsNamed("uring-read") - before }).toEqual({ afterSmall: 0, afterLarge: helpers, closed: 0 })

      // `batchHelper: false`: the calling thread reads every batch alone.
      const alone = yield* Effect.scoped(Effect.gen(function*() {
        const uring = yield* Uring
        const file = yield* uring.open(path)
        const ranges = Array.from({ length: 16 }, (_, i) => ({ offset: i * 4096, length: 4096 }))
        const slices = yield* uring.readBatch(file, ranges)
        yield* realSleep(20)
        return { read: slices.every((slice) => slice.length === 4096 && slice.every((b) => b === 7)), helpers: threadsNamed("uring-read") - before }
      }).pipe(Effect.provide(Layer.fresh(Uring.layer({ ringSize: 64, batchHelper: false })))))
      expect(alone).toEqual({ read: true, helpers: 0 })
    }))
})
