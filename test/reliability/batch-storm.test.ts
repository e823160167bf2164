/**
 * Batch storm: thousands of `readBatch` calls of one size (so every batch after the first few
 * runs on arrays a finished batch gave back), on a regular file and on FIFOs that block until
 * fed, a random third interrupted at random moments. Seeded (RELIABILITY_SEED overrides).
 *
 * Every batch that finishes must hold exactly its own ranges' bytes, at its own places; after an
 * interruption has finished its buffer is refilled with a canary, which must stay intact. At the
 * end no op is left in the ring.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fdCount, pattern, tempDir } from "../helpers/fixtures.js"
import { forkStorm, makeWithClient, openFifos, prng, realSleep, seedFromEnv } from "./helpers.js"

const ROUNDS = 20
const PER_ROUND = 300
const RANGES = 8
const FIFOS = 2
const FIFO_RANGE = 16
const DATA_SIZE = 1 << 20
const CANARY = 0xaa
const FED = 0x55

interface Batch {
  readonly fifo: number
  readonly ranges: Array<{ readonly offset: number; readonly length: number }>
  readonly buffer: Uint8Array
  readonly interrupt: boolean
  /** 0: at once, 1: after `delay` yields, 2: after `delay` ms of wall clock. */
  readonly moment: 0 | 1 | 2
  readonly delay: number
  done: boolean
}

describe("batch storm", () => {
  it.live(`${ROUNDS * PER_ROUND} batches of ${RANGES} ranges, a random third interrupted: each keeps its own results`, () =>
    Effect.scoped(Effect.gen(function*() {
      const seed = seedFromEnv(0x5eed_0019)
      const rng = prng(seed)
      const dir = yield* tempDir("effect-uring-batch-storm-")
      const dataPath = Path.join(dir, "data")
      const original = pattern(DATA_SIZE, 29)
      Fs.writeFileSync(dataPath, original)
      const { client, uring } = yield* makeWithClient()
      const dataFd = Fs.openSync(dataPath, "r")
      const fifos = openFifos(Array.from({ length: FIFOS }, (_, i) => Path.join(dir, `fifo-${i}`)))
      yield* Effect.addFinalizer(() => Effect.sync(() => {
        Fs.closeSync(dataFd)
        fifos.close()
      }))
      const fdsOpen = fdCount()

      const newBatch = (): Batch => {
        const fifo = rng.next() < 0.4 ? rng.int(0, FIFOS - 1) : -1
        const ranges = Array.from({ length: RANGES }, () =>
          fifo >= 0
            ? { offset: 0, length: FIFO_RANGE }
            : { offset: rng.int(0, DATA_SIZE - 1), length: rng.int(1, 512) })
        const total = ranges.reduce((sum, range) => sum + range.length, 0)
        const moment = rng.int(0, 2) as 0 | 1 | 2
        return {
          fifo,
          ranges,
          // Sometimes a view that does not start its ArrayBuffer: the slices must start at its own offset.
          buffer: new Uint8Array(total + 16).subarray(rng.int(0, 16)).subarray(0, total).fill(CANARY),
          interrupt: rng.next() < 1 / 3,
          moment,
          delay: moment === 1 ? rng.int(1, 20) : rng.int(0, 2),
          done: false
        }
      }

      let cutShort = 0
      let finishedFirst = 0
      const round = Effect.gen(function*() {
        const batches = Array.from({ length: PER_ROUND }, newBatch)
        const { fibers, interrupted } = yield* forkStorm(
          batches,
          (batch) => uring.readBatch(batch.fifo >= 0 ? fifos.readers[batch.fifo]! : dataFd, batch.ranges, { buffer: batch.buffer }),
          (batch) => batch.buffer.fill(CANARY)
        )
        for (const { op: batch, exit } of interrupted) {
          // A FIFO batch interrupted before any data existed can only have been cancelled.
          if (batch.fifo >= 0 || Exit.isFailure(exit)) {
            expect(Exit.isInterrupted(exit)).toBe(true)
            cutShort++
          } else finishedFirst++
        }

        // Feed the FIFOs until every batch that was not interrupted has its data.
        const waiting = (i: number) => batches.filter((b) => b.fifo === i && !b.interrupt && !b.done).length
        expect(yield* fifos.feedUntil(waiting, RANGES * FIFO_RANGE, FED), `seed ${seed}: FIFO batches never got their data`).toBe(true)
        const survivors = batches.flatMap((batch, i) => (batch.interrupt ? [] : [i]))
        const exits = yield* Effect.forEach(survivors, (i) => Fiber.await(fibers[i]!))
        // Let any stray completion arrive before checking canaries.
        yield* realSleep(2)

        survivors.forEach((i, j) => {
          const batch = batches[i]!
          const exit = exits[j]!
          if (!Exit.isSuccess(exit)) throw new Error(`seed ${seed}: batch ${i} failed: ${String(exit.cause)}`)
          const slices = exit.value
          expect(slices.length).toBe(RANGES)
          let at = 0
          batch.ranges.forEach((range, r) => {
            const slice = slices[r]!
            // Its own place in its own buffer, whatever other batches did meanwhile.
            expect(slice.buffer).toBe(batch.buffer.buffer)
            expect(slice.byteOffset).toBe(batch.buffer.byteOffset + at)
            if (batch.fifo >= 0) {
              expect(slice.length).toBeGreaterThan(0)
              expect(slice.length).toBeLessThanOrEqual(FIFO_RANGE)
              expect(slice.every((b) => b === FED)).toBe(true)
            } else {
              expect(Buffer.compare(slice, original.subarray(range.offset, range.offset + range.length))).toBe(0)
            }
            at += range.length
          })
        })
        batches.forEach((batch, i) => {
          if (batch.interrupt && !batch.buffer.every((b) => b === CANARY)) {
            throw new Error(`seed ${seed}: batch ${i}'s buffer written after its interruption finished`)
          }
        })
        fifos.drain()
      })

      for (let r = 0; r < ROUNDS; r++) yield* round
      // The storm hit batches in flight, and some that were done first.
      expect(cutShort).toBeGreaterThan(ROUNDS * PER_ROUND / 10)
      expect(finishedFirst).toBeGreaterThan(0)
      expect(client.pending).toBe(0)
      expect(client.native.inFlight).toBe(0)
      expect(fdCount()).toBe(fdsOpen)
      console.log(`batch storm: seed ${seed}, ${cutShort} batches cut short by interruption, ${finishedFirst} finished first`)
    })), 60_000)
})
