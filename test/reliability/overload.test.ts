/**
 * Overload: far more operations requested at once than the ring (256 entries, a 512-entry
 * completion queue) and its completion queue hold. Every one completes, with the right bytes,
 * exactly once, and memory stays within a stated bound.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { RingClient } from "../../src/internal/RingClient.js"
import { pattern, tempDir } from "../helpers/fixtures.js"
import { makeWithClient, rssMiB } from "./helpers.js"

const RING = 256
const OPS = 1_000_000
const CHUNK = 16
/** The file is read exactly once over: op i fills bytes [i*16, i*16+16) of a 16 MiB image. */
const FILE_SIZE = OPS * CHUNK
/**
 * RSS growth allowed while a million ops are outstanding. Measured on the 2-core build machine:
 * ~300 MiB (one slab slot and queue entry per op natively, a closure per op in JS, completion
 * batches). A leak or an unbounded copy per op would exceed it.
 */
const RSS_BOUND_MIB = 768
/**
 * RSS growth allowed for 100,000 concurrent fibers through the service: measured 300-500 MiB,
 * almost all of it Effect's own (a bare `Effect.forEach(..., Effect.async, { concurrency:
 * "unbounded" })` of 100,000 ops grows RSS by ~900 MiB standalone on the same machine).
 */
const EFFECT_RSS_BOUND_MIB = 1024

describe("overload", () => {
  it.live(`${OPS} reads requested at once through the RingClient on a ${RING}-entry ring`, () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir("effect-uring-overload-")
      const path = Path.join(dir, "data")
      const original = pattern(FILE_SIZE, 29)
      Fs.writeFileSync(path, original)
      const fd = Fs.openSync(path, "r")
      const image = new Uint8Array(FILE_SIZE).fill(0xaa)
      const results = new Int32Array(OPS).fill(-999)
      const calls = new Uint8Array(OPS)
      const client = new RingClient({ entries: RING })
      expect(client.native.entries).toBe(RING)
      expect(client.native.cqEntries).toBe(2 * RING)

      const rssBefore = rssMiB()
      let peak = rssBefore
      let completed = 0
      let resolveAll!: () => void
      const all = new Promise<void>((resolve) => {
        resolveAll = resolve
      })
      const started = Date.now()
      // A stride permutation: submission order is not file order.
      for (let k = 0; k < OPS; k++) {
        const i = (k * 7919) % OPS
        const view = image.subarray(i * CHUNK, (i + 1) * CHUNK)
        client.submit((native, id) => native.read(id, fd, false, view, i * CHUNK, false), (result) => {
          calls[i]!++
          results[i] = result
          if (++completed === OPS) resolveAll()
        }, view)
        if (k % 100_000 === 0) peak = Math.max(peak, process.memoryUsage().rss / (1 << 20))
      }
      const submittedMs = Date.now() - started
      peak = Math.max(peak, process.memoryUsage().rss / (1 << 20))
      const outstanding = client.pending
      const timer = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss / (1 << 20))
      }, 20)
      yield* Effect.promise(() => all)
      clearInterval(timer)
      const elapsed = Date.now() - started

      expect(outstanding).toBeGreaterThan(2 * RING)
      expect(completed).toBe(OPS)
      // Every op answered exactly once, with its whole chunk.
      expect(calls.every((n) => n === 1)).toBe(true)
      expect(results.every((r) => r === CHUNK)).toBe(true)
      expect(Buffer.compare(image, original)).toBe(0)
      expect(client.pending).toBe(0)
      expect(client.native.inFlight).toBe(0)
      const growth = peak - rssBefore
      expect(growth, `RSS grew by ${growth.toFixed(0)} MiB`).toBeLessThan(RSS_BOUND_MIB)
      client.shutdown()
      Fs.closeSync(fd)
      console.log(
        `overload: ${OPS} reads submitted in ${submittedMs} ms (${outstanding} outstanding), all done in ${elapsed} ms, ` +
          `${client.batches} batches, peak RSS growth ${growth.toFixed(0)} MiB`
      )
    })), 60_000)

  it.live("100,000 reads through the Effect service with unbounded concurrency", () =>
    Effect.scoped(Effect.gen(function*() {
      const N = 100_000
      const dir = yield* tempDir("effect-uring-overload-fx-")
      const path = Path.join(dir, "data")
      const original = pattern(N * CHUNK, 31)
      Fs.writeFileSync(path, original)
      const fd = Fs.openSync(path, "r")
      const { client, uring } = yield* makeWithClient({ ringSize: RING })
      const rssBefore = rssMiB()
      const started = Date.now()
      const chunks = yield* Effect.forEach(
        Array.from({ length: N }, (_, i) => i),
        (i) => uring.read(fd, i * CHUNK, CHUNK),
        { concurrency: "unbounded" }
      )
      const elapsed = Date.now() - started
      const growth = process.memoryUsage().rss / (1 << 20) - rssBefore
      chunks.forEach((chunk, i) => {
        if (Buffer.compare(chunk, original.subarray(i * CHUNK, (i + 1) * CHUNK)) !== 0) {
          throw new Error(`read ${i} returned the wrong bytes`)
        }
      })
      expect(client.pending).toBe(0)
      expect(client.native.inFlight).toBe(0)
      expect(growth, `RSS grew by ${growth.toFixed(0)} MiB`).toBeLessThan(EFFECT_RSS_BOUND_MIB)
      Fs.closeSync(fd)
      console.log(`overload (Effect): ${N} reads in ${elapsed} ms, RSS growth ${growth.toFixed(0)} MiB`)
    })), 60_000)
})
