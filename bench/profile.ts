/**
 * Profiling harness: the Effect Uring service doing 4 KiB random reads at 64 in flight (registered
 * file, reused buffers via readInto), the same shape as the suite's rand-4k-qd64 workload, for a
 * fixed time and nothing else. Run it under a profiler:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile.ts [seconds] [qd] [effect|client|batch|floor]
 *   perf record -F 999 -g -- node --perf-basic-prof --import tsx bench/profile.ts 10
 *
 * Uses the quick data file (created by `npm run bench -- --quick`) unless BENCH_FILE is set.
 */
import { BLOCK, MIB, randomBlocks, Samples } from "./common.js"
import { effectSyncFloor, type Peer, uringClient, uringEffect, uringEffectBatch } from "./peers.js"

const seconds = Number(process.argv[2] ?? 10)
const qd = Number(process.argv[3] ?? 64)
const which = process.argv[4] ?? "effect"
const largePath = process.env.BENCH_FILE ?? "/tmp/effect-uring-bench/large-quick.dat"
const largeSize = Number(process.env.BENCH_FILE_MIB ?? 128) * MIB
const data = {
  dir: "/tmp/effect-uring-bench",
  largePath,
  largeSize,
  smallDir: "",
  smallCount: 0,
  missingEvery: 4,
  appendDir: "",
  appendWrites: 0,
  randomSeed: 0x2545f491
}
const samples = new Samples()
const blocks = randomBlocks(data.randomSeed, largeSize / BLOCK)
const modes: Record<string, Peer> = { client: uringClient, batch: uringEffectBatch, floor: effectSyncFloor }
const peer = Object.hasOwn(modes, which) ? modes[which]! : uringEffect
const session = (await peer({
  model: (process.env.BENCH_MODEL ?? "lanes") as "lanes" | "batch",
  workload: { id: `rand-4k-qd${qd}`, kind: "rand", title: "", qd, unit: "ops/s", latency: "" },
  data,
  blocks,
  samples
}))!
await session.run(300) // warm-up
const c0 = process.cpuUsage()
const t0 = performance.now()
const r = await session.run(seconds * 1000)
const t = performance.now() - t0
const c = process.cpuUsage(c0)
const p = samples.percentiles()
console.log(
  `${which} qd${qd}: ${Math.round((r.ops / t) * 1000)} ops/s, ${((c.user + c.system) / r.ops).toFixed(2)} CPU µs/op ` +
    `(user ${(c.user / r.ops).toFixed(2)}, sys ${(c.system / r.ops).toFixed(2)}), batch p50 ${p.p50.toFixed(0)} µs, ` +
    `verified ${r.verified === r.ops}`
)
await session.close()
