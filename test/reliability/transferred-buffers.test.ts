/**
 * A buffer lent to an op in flight, then transferred away by its caller (`structuredClone` or
 * `postMessage` with a transfer list). A transfer would hand the memory the kernel still writes or
 * reads to a new owner, which may free it: the kernel then wrote into other buffers, or sent
 * their bytes to the file. Lent memory stays with the caller's buffer instead (a transfer copies
 * it on Node 20 and throws on newer Node), so the op's data lands where the caller asked.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Fs from "node:fs"
import { MessageChannel } from "node:worker_threads"
import { Uring } from "../../src/index.js"
import { openFifo, pattern, tempDir } from "../helpers/fixtures.js"
import { fullGc, realSleep } from "./helpers.js"

const SIZE = 64 * 1024
/** Linux's default pipe capacity: a write of more waits for a reader. */
const PIPE_CAPACITY = 64 * 1024

/** Tries to move `buffer`'s memory away as a caller might; whether it threw does not matter here. */
const transferAway = (buffer: Uint8Array, how: "structuredClone" | "postMessage"): void => {
  const memory = buffer.buffer as ArrayBuffer
  try {
    if (how === "structuredClone") {
      structuredClone(memory, { transfer: [memory] })
    } else {
      const { port1, port2 } = new MessageChannel()
      port1.postMessage(memory, [memory])
      port1.close()
      port2.close()
    }
  } catch {
    // Newer Node refuses to transfer an untransferable buffer: as good as a copy.
  }
}

/** Collections, and allocations that would reuse memory a transfer's new owner freed. */
const churn = Effect.gen(function*() {
  const decoys: Array<Uint8Array> = []
  for (let i = 0; i < 5; i++) {
    fullGc()
    for (let j = 0; j < 16; j++) decoys.push(new Uint8Array(SIZE).fill(0x11))
    yield* realSleep(5)
  }
  return decoys
})

describe("buffers transferred while an op has them", () => {
  for (const how of ["structuredClone", "postMessage"] as const) {
    it.live(`readInto on a FIFO, the buffer transferred (${how}): the data lands in the caller's buffer`, () =>
      Effect.scoped(Effect.gen(function*() {
        const uring = yield* Uring
        const fifo = yield* openFifo(yield* tempDir())
        const buffer = new Uint8Array(SIZE)
        const fiber = yield* Effect.fork(uring.readInto(fifo, 0, buffer))
        yield* realSleep(20)
        transferAway(buffer, how)
        expect(buffer.byteLength).toBe(SIZE)
        const decoys = yield* churn
        const fed = pattern(SIZE, 7)
        Fs.writeSync(fifo, fed)
        expect(yield* Fiber.join(fiber)).toBe(SIZE)
        expect(Buffer.compare(buffer, fed)).toBe(0)
        expect(decoys.every((d) => d[0] === 0x11 && d[SIZE - 1] === 0x11)).toBe(true)
      })).pipe(Effect.provide(Uring.layer())))
  }

  it.live("readBatch into a caller's buffer, transferred while the batch waits on a FIFO", () =>
    Effect.scoped(Effect.gen(function*() {
      const uring = yield* Uring
      const fifo = yield* openFifo(yield* tempDir())
      const buffer = new Uint8Array(SIZE)
      const fiber = yield* Effect.fork(uring.readBatch(fifo, [{ offset: 0, length: SIZE }], { buffer }))
      yield* realSleep(20)
      transferAway(buffer, "structuredClone")
      expect(buffer.byteLength).toBe(SIZE)
      yield* churn
      const fed = pattern(SIZE, 9)
      Fs.writeSync(fifo, fed)
      const [chunk] = yield* Fiber.join(fiber)
      expect(chunk!.length).toBe(SIZE)
      expect(Buffer.compare(buffer, fed)).toBe(0)
    })).pipe(Effect.provide(Uring.layer())))

  it.live("write to a full pipe, the data transferred before the pipe drains: the caller's bytes arrive", () =>
    Effect.scoped(Effect.gen(function*() {
      const uring = yield* Uring
      const fifo = yield* openFifo(yield* tempDir())
      Fs.writeSync(fifo, new Uint8Array(PIPE_CAPACITY).fill(0x22))
      const data = pattern(SIZE / 2, 11)
      const expected = Uint8Array.from(data)
      const fiber = yield* Effect.fork(uring.write(fifo, 0, data))
      yield* realSleep(20)
      transferAway(data, "structuredClone")
      expect(data.byteLength).toBe(SIZE / 2)
      yield* churn
      const drained = Buffer.alloc(PIPE_CAPACITY)
      expect(Fs.readSync(fifo, drained)).toBe(PIPE_CAPACITY)
      expect(yield* Fiber.join(fiber)).toBe(SIZE / 2)
      const arrived = Buffer.alloc(SIZE / 2)
      expect(Fs.readSync(fifo, arrived)).toBe(SIZE / 2)
      expect(Buffer.compare(arrived, expected)).toBe(0)
    })).pipe(Effect.provide(Uring.layer())))
})
