/**
 * Experiment behind proposal 1 in bench/README.md: the Effect `Uring` service over the real
 * RingClient, submitting each op straight away (as today) vs queueing submits in JS and
 * calling the native submit methods back-to-back from one microtask per tick (what a
 * coalescing RingClient, or a native submit-many entry point, would do). Cancellation is not
 * exercised here, so the deferred op id is only filled in at flush time.
 *
 * The figures in bench/README.md were taken before commit 76ee95d, when every native submit woke an
 * idle submission thread. Since then the RingClient itself defers the wake-up to one flush per
 * microtask burst, so the two cases differ only by that wrapper's own cost.
 *
 *   npx tsx bench/coalesce.ts [seconds-per-case]
 */
import * as NFS from "node:fs"
import { Effect, Scope, Exit } from "effect"
import { makeOperations, type NativeRing, type OnResult, RingClient, type Submitted } from "./lib.js"
import { BLOCK, checkBlock, randomBlocks } from "./common.js"

const seconds = Number(process.argv[2] ?? 3)
const file = process.env.BENCH_FILE ?? "/tmp/effect-uring-bench/large-quick.dat"
const smallDir = process.env.BENCH_SMALL ?? "/tmp/effect-uring-bench/small-quick"
const size = NFS.statSync(file).size
const blocks = randomBlocks(0x2545f491, size / BLOCK)

class Coalescing {
  private queue: Array<{ start: (n: NativeRing, id: number) => number; onResult: OnResult; keep: unknown; out: { id: number; token: number; client: RingClient } }> = []
  private scheduled = false
  constructor(readonly inner: RingClient) {}
  get native() {
    return this.inner.native
  }
  get closed() {
    return this.inner.closed
  }
  submit(start: (n: NativeRing, id: number) => number, onResult: OnResult, keep?: unknown): Submitted {
    const out = { id: 0, token: 0, client: this.inner }
    this.queue.push({ start, onResult, keep, out })
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.flush)
    }
    return out
  }
  cancel(op: Submitted, onSettled: OnResult) {
    this.inner.cancel(op, onSettled)
  }
  private flush = () => {
    this.scheduled = false
    const q = this.queue
    this.queue = []
    for (const e of q) {
      const s = this.inner.submit(e.start, e.onResult, e.keep)
      e.out.id = s.id
      e.out.token = s.token
    }
  }
}

const run = async (name: string, coalesce: boolean, kind: "read" | "stat") => {
  const client = new RingClient({ entries: 16384, registeredFiles: 64 })
  const ops = makeOperations((coalesce ? new Coalescing(client) : client) as unknown as RingClient, { tracing: false, cachedReads: false })
  const scope = Effect.runSync(Scope.make())
  const reg = await Effect.runPromise(Scope.extend(Effect.flatMap(ops.open(file), (fd) => ops.register(fd)), scope))
  const bufs = Array.from({ length: 64 }, () => new Uint8Array(BLOCK))
  let cursor = 0
  let bad = 0
  let count = 0
  const op = (l: number): Effect.Effect<void, unknown> =>
    kind === "read"
      ? Effect.suspend(() => {
        const b = blocks[cursor++ & (blocks.length - 1)]!
        return Effect.map(ops.readInto(reg, b * BLOCK, bufs[l]!), (n) => {
          if (n !== BLOCK || !checkBlock(bufs[l]!, 0, b)) bad++
        })
      })
      : Effect.suspend(() => Effect.map(ops.stat(`${smallDir}/f${cursor++ % 1000}.dat`), (m) => {
        if (m.size !== 4096n) bad++
      }))
  const lane = (deadline: number) => (l: number) =>
    Effect.gen(function*() {
      while (performance.now() < deadline) {
        yield* op(l)
        count++
      }
    })
  const lanes = Array.from({ length: 64 }, (_, i) => i)
  await Effect.runPromise(Effect.forEach(lanes, lane(performance.now() + 300), { concurrency: "unbounded", discard: true }))
  count = 0
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await Effect.runPromise(Effect.forEach(lanes, lane(t0 + seconds * 1000), { concurrency: "unbounded", discard: true }))
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  console.log(`${name.padEnd(34)} ${Math.round((count / ms) * 1000).toString().padStart(8)} ops/s ` +
    `${((cpu.user + cpu.system) / count).toFixed(2).padStart(6)} CPU µs/op (sys ${(cpu.system / count).toFixed(2)}) ${bad === 0 ? "ok" : `${bad} BAD`}`)
  await Effect.runPromise(Scope.close(scope, Exit.void))
  client.shutdown()
}

for (let round = 0; round < 2; round++) {
  await run("readInto qd64, submit per op", false, "read")
  await run("readInto qd64, coalesced per tick", true, "read")
  await run("stat qd64, submit per op", false, "stat")
  await run("stat qd64, coalesced per tick", true, "stat")
}
