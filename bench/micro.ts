/**
 * Micro-benchmarks behind the profile notes in bench/README.md (no I/O, no ring threads):
 *
 * 1. Effect's own cost of 64-way concurrency: bare `Effect.async` ops (resumed in one
 *    setImmediate batch, like one threadsafe-function delivery) run as 64 long-lived lanes vs
 *    `Effect.forEach(64 ops, { concurrency: "unbounded" })` per batch (a fiber forked per op).
 * 2. The `Uring` service's wrapper per op: `readInto`, `stat` and scoped `open` (+ close) over a
 *    fake ring client that completes every op in one setImmediate batch (and `readInto` once
 *    more completing on the spot, as a cached read can), vs the bare `Effect.async` above. What remains of a real run's CPU per op is the ring, the kernel,
 *    wake-ups and GC of what the wrapper allocates.
 *
 *   npx tsx bench/micro.ts
 */
import { Effect } from "effect"
import { makeOperations, RegisteredFile } from "./lib.js"

let pending: Array<(r: number) => void> = []
let scheduled = false
const flush = () => {
  scheduled = false
  const p = pending
  pending = []
  for (const cb of p) cb(4096)
}
const later = (cb: (r: number) => void) => {
  pending.push(cb)
  if (!scheduled) {
    scheduled = true
    setImmediate(flush)
  }
}
const fakeNative = { ringId: 999_999, closed: false, read: () => 1, statx: () => 1, openat: () => 1, close: () => 1 }
/** Results by op: openat yields fd 1000 (never a real fd: close is faked too), the rest 4096 / 0. */
let nextResult = 4096
const fakeClient = {
  native: fakeNative,
  closed: false,
  submit(start: (native: unknown, id: number) => number, onResult: (r: number) => void) {
    const token = start(fakeNative, 1)
    const result = nextResult
    pending.push(() => onResult(result))
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
    return { id: 1, token }
  },
  /** The service's flush-at-once submit: `now` makes it complete before returning, as a cached read can. */
  submitNow(start: (native: unknown, id: number) => number, onResult: (r: number) => void, _keep: unknown, _bytes: number) {
    if (!completeAtOnce) return this.submit(start, onResult)
    const token = start(fakeNative, 1)
    onResult(nextResult)
    return { id: 1, token }
  },
  cancel() {}
}
/** Whether `submitNow` completes on the spot (reads, writes, closes may) or in the next batch. */
let completeAtOnce = false
const uring = makeOperations(fakeClient as any, { tracing: false, cachedReads: false })
const file = new RegisteredFile(0, 3, 999_999)
const bufs = Array.from({ length: 64 }, () => new Uint8Array(4096))
const lanes = Array.from({ length: 64 }, (_, i) => i)

const bare = (_l: number) => Effect.async<number>((resume) => later((r) => resume(Effect.succeed(r))))
const wrapped = (l: number) => uring.readInto(file, l * 4096, bufs[l]!)

const asLanes = (op: (l: number) => Effect.Effect<number, unknown>, perLane: number) =>
  Effect.forEach(lanes, (l) => Effect.gen(function*() {
    for (let i = 0; i < perLane; i++) yield* op(l)
  }), { concurrency: "unbounded", discard: true })
const asBatches = (op: (l: number) => Effect.Effect<number, unknown>, batches: number) =>
  Effect.gen(function*() {
    for (let b = 0; b < batches; b++) yield* Effect.forEach(lanes, op, { concurrency: "unbounded", discard: true })
  })

const measure = async (name: string, program: Effect.Effect<void, unknown>, ops: number) => {
  await Effect.runPromise(program) // warm-up
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await Effect.runPromise(program)
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  console.log(`${name.padEnd(52)} ${Math.round((ops / ms) * 1000).toString().padStart(9)} ops/s ` +
    `${((cpu.user + cpu.system) / ops).toFixed(2).padStart(6)} CPU µs/op`)
}

const n = 5000
await measure("bare Effect.async, 64 lanes", asLanes(bare, n), 64 * n)
await measure("bare Effect.async, forEach batches of 64", asBatches(bare, n / 5), 64 * (n / 5))
await measure("Uring.readInto on a fake ring, 64 lanes", asLanes(wrapped, n), 64 * n)
await measure("Uring.readInto on a fake ring, forEach batches of 64", asBatches(wrapped, n / 5), 64 * (n / 5))
completeAtOnce = true
await measure("Uring.readInto completing at once, 64 lanes", asLanes(wrapped, n), 64 * n)
completeAtOnce = false
nextResult = 0
await measure("Uring.stat on a fake ring, 64 lanes", asLanes(() => Effect.as(uring.stat("/fake/path/f1.dat"), 0), n / 5), 64 * (n / 5))
nextResult = 1000
await measure(
  "Effect.scoped(Uring.open) (open + close) on a fake ring, 64 lanes",
  asLanes(() => Effect.as(Effect.scoped(uring.open("/fake/path/f1.dat")), 0), n / 5),
  64 * (n / 5)
)
