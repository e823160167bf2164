/**
 * A closed ring is freed: its io_uring fd, the kernel's mappings and its registered-file table go
 * once nothing references its objects. The env cleanup hook, kept for rings still open when the
 * worker or process ends, held the ring: every layer built and closed left an io_uring fd and
 * about 1.8 MB behind, until EMFILE.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Path from "node:path"
import { Uring } from "../../src/index.js"
import { eventFdCount, ringFdCount, tempDir } from "../helpers/fixtures.js"
import { fullGc, waitUntil } from "./helpers.js"

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
})
