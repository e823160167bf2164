/**
 * What the stack allows a per-read Effect API at 64 in flight, with no library code: rounds of
 * fio's 64-deep 4 KiB random reads, then, each in a fresh process, 64 fibers looping over one op
 * with the suite's lane shape, on each `effect` package named. The ops: `Effect.succeed` (Effect's
 * loop alone), the addon's `readCached` bare in `Effect.sync`, and `fs.readSync` in `Effect.sync`.
 * Ratios are to the same round's fio (bench/README.md, "The per-read floor").
 *
 *   npm run build:ts && npx tsx bench/ceiling.ts [rounds] [dir with node_modules/effect ...]
 *
 * With no directory, this repository's `effect`. Another version, e.g. Effect 4:
 * `mkdir /tmp/e4 && npm --prefix /tmp/e4 i effect@4` and name `/tmp/e4` (and `.` to compare).
 * Uses the full data file (created by `npm run bench`) unless BENCH_FILE is set.
 */
import { execFileSync } from "node:child_process"
import * as NFS from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { BLOCK, median, MIB, randomBlocks } from "./common.js"
import { warm } from "./data.js"
import { fioTrial } from "./fio.js"
import { RingClient } from "./lib.js"

const LANES = 64
const EAGAIN = 11
const SHAPE_MS = 500
const FIO_MS = 2000
const OPS = ["succeed", "readCached", "readSync"] as const
type Op = typeof OPS[number]

const largePath = process.env.BENCH_FILE ?? "/tmp/effect-uring-bench/large-full.dat"

/** Where `specifier` resolves from the package in `dir`: its own `effect`, not this repository's. */
const resolveFrom = (dir: string, specifier: string): string =>
  createRequire(Path.join(Path.resolve(dir), "package.json")).resolve(specifier)

/** Child: one 500 ms run per op after a warm-up, on the `effect` found from `dir`; prints JSON rates. */
const child = async (dir: string) => {
  const { Effect } = await import(pathToFileURL(resolveFrom(dir, "effect")).href) as typeof import("effect")
  const fd = NFS.openSync(largePath, "r")
  const blocks = randomBlocks(0x2545f491, NFS.fstatSync(fd).size / BLOCK)
  const client = new RingClient({ entries: 64 })
  const bufs = Array.from({ length: LANES }, () => new Uint8Array(BLOCK))
  let cursor = 0
  let misses = 0
  const offset = () => blocks[cursor++ & (blocks.length - 1)]! * BLOCK
  const ops: Record<Op, (lane: number) => import("effect").Effect.Effect<number>> = {
    succeed: () => Effect.succeed(BLOCK),
    readCached: (l) => Effect.sync(() => client.native.readCached(fd, bufs[l]!, offset())),
    readSync: (l) => Effect.sync(() => NFS.readSync(fd, bufs[l]!, 0, BLOCK, offset()))
  }
  const rate = async (op: Op, ms: number): Promise<number> => {
    const make = ops[op]
    const deadline = performance.now() + ms
    let done = 0
    let bad = 0
    let uncached = 0
    // The suite's lane shape (`effectLanes` in peers.ts, which imports this repository's `effect`
    // and so cannot run another's): the op's continuation checks it and issues the next op, one
    // `flatMap` and one clock read per op.
    const lane = (l: number) => {
      const next = (): import("effect").Effect.Effect<void> => {
        done++
        return Effect.flatMap(make(l), checked)
      }
      const checked = (n: number): import("effect").Effect.Effect<void> => {
        // A page evicted meanwhile (-EAGAIN) is one the service would hand to the ring.
        if (n === -EAGAIN) uncached++
        else if (n !== BLOCK) bad++
        return performance.now() < deadline ? next() : Effect.void
      }
      return Effect.suspend(() => performance.now() < deadline ? next() : Effect.void)
    }
    const t0 = performance.now()
    await Effect.runPromise(Effect.forEach(Array.from({ length: LANES }, (_, l) => l), lane, { concurrency: "unbounded", discard: true }))
    if (bad > 0) throw new Error(`${op}: ${bad} reads did not return ${BLOCK} bytes`)
    misses += uncached
    return done / ((performance.now() - t0) / 1000)
  }
  for (const op of OPS) await rate(op, SHAPE_MS / 2)
  misses = 0
  const out: Partial<Record<Op | "uncached", number>> = {}
  for (const op of OPS) out[op] = await rate(op, SHAPE_MS)
  out.uncached = misses
  client.shutdown()
  NFS.closeSync(fd)
  process.stdout.write(JSON.stringify(out))
}

const parent = () => {
  const rounds = Number(process.argv[2] ?? 6)
  const dirs = process.argv.length > 3 ? process.argv.slice(3) : ["."]
  if (!NFS.existsSync(largePath)) throw new Error(`${largePath} is missing: run \`npm run bench\` once, or set BENCH_FILE`)
  const largeSize = NFS.statSync(largePath).size
  const data = { dir: Path.dirname(largePath), largePath, largeSize, smallDir: "", smallCount: 0, missingEvery: 4, appendDir: "", appendWrites: 0, randomSeed: 0 }
  const ratios = new Map<string, Array<number>>()
  const versions = dirs.map((dir) =>
    JSON.parse(NFS.readFileSync(resolveFrom(dir, "effect/package.json"), "utf8")).version as string
  )
  // As the suite does: fio reading from the disk would make every ratio meaningless.
  warm(data)
  console.log(`${largeSize / MIB} MiB file (page cache warmed), ${LANES} fibers, ${rounds} rounds; effect ${versions.join(", ")}`)
  for (let r = 0; r < rounds; r++) {
    const fio = fioTrial({ id: "rand-4k-qd64", kind: "rand", qd: LANES, title: "", unit: "ops/s", latency: "per op" }, data, FIO_MS, "lanes")
    const fioRate = fio.ops / (fio.elapsedMs / 1000)
    const row = [`fio ${(fioRate / 1000).toFixed(0)}k`]
    dirs.forEach((dir, i) => {
      const out = execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, "--child", dir], { encoding: "utf8" })
      const rates = JSON.parse(out) as Record<Op | "uncached", number>
      const cells = OPS.map((op) => {
        const key = `${versions[i]} ${op}`
        if (op !== "succeed") ratios.set(key, [...(ratios.get(key) ?? []), rates[op] / fioRate])
        return op === "succeed" ? `${op} ${(rates[op] / 1e6).toFixed(2)}M` : `${op} ${(rates[op] / 1000).toFixed(0)}k (${(rates[op] / fioRate).toFixed(2)}x)`
      })
      row.push(`effect ${versions[i]}: ${cells.join(", ")}${rates.uncached > 0 ? `, ${rates.uncached} pages not cached` : ""}`)
    })
    console.log(row.join(" | "))
  }
  for (const [key, values] of ratios) {
    console.log(`${key} in Effect.sync vs fio: ${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}x, median ${median(values).toFixed(2)}x`)
  }
}

if (process.argv[2] === "--child") await child(process.argv[3]!)
else parent()
