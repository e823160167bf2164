/**
 * The benchmark suite: `npm run bench` (full) or `npm run bench -- --quick` (CI-sized).
 *
 * Every peer runs in its own long-lived worker process (bench/worker.ts); the orchestrator runs
 * one trial at a time, interleaving peers (trial t visits the peers in an order rotated by t),
 * and reports medians. fio runs as a subprocess in the same rotation.
 *
 * Options: --quick, --trials N, --duration MS, --dir PATH (data files), --only id,id (workloads),
 * --peers id,id, --no-memory, --no-fio, --render bench/results/X.json (rewrite X.md and its SVG), --model lanes|batch (default lanes: `qd` closed-loop lanes,
 * latency per op; batch: issue `qd`, wait for all, latency per batch).
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process"
import * as NFS from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type DataSpec, median, MIB, PATH_CONCURRENCY, SEQ_WINDOW, SYNC_EVERY, type TrialResult, type Workload } from "./common.js"
import { checkCache, prepare, warm } from "./data.js"
import { fioSupports, fioTrial, fioVersion } from "./fio.js"
import type { MemoryResult } from "./memory.js"
import type { Model } from "./peers.js"
import { type PeerSummary, type Report, renderMarkdown, renderSvg, type WorkloadReport } from "./report.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const root = Path.join(here, "..")

// ---------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(`--${name}`)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]
}
const quick = flag("quick")
const model: Model = option("model") === "batch" ? "batch" : "lanes"
const laneLatency = (n: number, what = "") => (model === "lanes" || n === 1 ? "per op" : `per batch of ${n}${what}`)
const trials = Number(option("trials") ?? (quick ? 3 : 5))
const durationMs = Number(option("duration") ?? (quick ? 250 : 1000))
const warmupMs = quick ? 100 : 300
const dataDir = option("dir") ?? Path.join(Os.tmpdir(), "effect-uring-bench")
const sizeTag = quick ? "quick" : "full"
const data: DataSpec = {
  dir: dataDir,
  largePath: Path.join(dataDir, `large-${sizeTag}.dat`),
  largeSize: (quick ? 128 : 1024) * MIB,
  smallDir: Path.join(dataDir, `small-${sizeTag}`),
  // Path workloads cycle over the files until the trial's time is up, like the others.
  smallCount: quick ? 4000 : 10000,
  missingEvery: 4,
  appendDir: Path.join(dataDir, "append"),
  appendWrites: quick ? 1024 : 4096,
  randomSeed: 0x2545f491
}
const memoryOps = quick ? 1_000_000 : 5_000_000
const memoryFirst = 100_000

const workloads: Array<Workload> = [
  ...[1, 32, 64, 256].map((qd): Workload => ({
    id: `rand-4k-qd${qd}`,
    kind: "rand",
    title: `4 KiB random reads, ${qd} in flight`,
    qd,
    unit: "ops/s",
    latency: laneLatency(qd)
  })),
  ...([{
    id: "seq-1m",
    kind: "seq",
    title: `1 MiB sequential reads, ${SEQ_WINDOW} in flight, ${data.largeSize / MIB} MiB file`,
    qd: SEQ_WINDOW,
    unit: "GB/s",
    latency: laneLatency(SEQ_WINDOW)
  },
  {
    id: "small-files",
    kind: "small",
    title: `small files: open + read all + close, ${data.smallCount} files of 4 KiB, ${PATH_CONCURRENCY} in flight`,
    qd: PATH_CONCURRENCY,
    unit: "ops/s",
    latency: laneLatency(PATH_CONCURRENCY, " files")
  },
  {
    id: "stat-storm",
    kind: "stat",
    title: `stat storm: ${data.smallCount} files + ${Math.floor(data.smallCount / data.missingEvery)} missing paths, ${PATH_CONCURRENCY} in flight`,
    qd: PATH_CONCURRENCY,
    unit: "ops/s",
    latency: laneLatency(PATH_CONCURRENCY, " paths")
  },
  {
    id: "append",
    kind: "append",
    title: `4 KiB appends, fdatasync every ${SYNC_EVERY} (${data.appendWrites} writes per trial)`,
    qd: 1,
    unit: "ops/s",
    latency: `per ${SYNC_EVERY} writes + fdatasync`
  }] satisfies Array<Workload>)
].filter((w) => option("only") === undefined || option("only")!.split(",").some((o) => w.id.startsWith(o)))

interface PeerDef {
  readonly id: string
  readonly label: string
  readonly env?: Record<string, string>
  /** A reference, not one of issue 5's peers: left out of `--quick` runs unless `--peers` names it. */
  readonly fullOnly?: boolean
}

const BASELINE = "uring-effect"
const allPeers: Array<PeerDef> = [
  { id: "uring-effect", label: "effect-uring: Effect Uring service (registered file, readInto; path ops for small/stat)" },
  { id: "uring-effect-ring", label: "effect-uring: the same service with cachedReads off (every read through the ring; reads only)" },
  { id: "uring-batch", label: "effect-uring: Uring.readBatch, qd ranges per call (batch entry point; random reads)" },
  { id: "uring-client", label: "effect-uring: RingClient, no Effect" },
  { id: "uring-fs", label: "effect-uring: UringFileSystem (@effect/platform FileSystem, File.read on one handle)" },
  { id: "uring-fs-at", label: "effect-uring: UringFileSystem, UringFile.readAt (positional, reads only)" },
  { id: "fs-promises", label: "Node fs.promises (FileHandle.read / readFile / stat)" },
  { id: "fs-callback", label: "Node fs callbacks (fs.read / readFile / stat), default thread pool" },
  { id: "fs-callback-uv-uring", label: "Node fs callbacks with UV_USE_IO_URING=1 (child process)", env: { UV_USE_IO_URING: "1" } },
  { id: "fs-sync", label: "Node fs.*Sync" },
  {
    id: "effect-sync-floor",
    label: "no library: fs.readSync inside Effect.sync, the service's fibers and loop (the per-read floor; random reads)",
    fullOnly: true
  },
  { id: "node-fs-effect", label: "@effect/platform-node-shared NodeFileSystem (File.read on one handle)" }
]
const peers = allPeers.filter((p) =>
  option("peers") === undefined
    ? !(quick && p.fullOnly === true)
    : p.id === BASELINE || option("peers")!.split(",").includes(p.id)
)
const fio = flag("no-fio") ? undefined : fioVersion()

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)

// ---------------------------------------------------------------------------------------------
// Workers

class Worker {
  private waiting: ((msg: any) => void) | undefined
  readonly ready: Promise<any>
  constructor(readonly def: PeerDef, readonly proc: ChildProcess) {
    this.ready = new Promise((resolve) => (this.waiting = resolve))
    proc.on("message", (msg: any) => {
      const w = this.waiting
      this.waiting = undefined
      w?.(msg)
    })
    proc.on("exit", (code) => {
      const w = this.waiting
      this.waiting = undefined
      w?.({ type: "error", error: `worker exited with ${code}` })
    })
  }
  request(msg: unknown): Promise<any> {
    return new Promise((resolve, reject) => {
      this.waiting = (reply) => (reply.type === "error" ? reject(new Error(reply.error)) : resolve(reply))
      this.proc.send(msg as any)
    })
  }
}

const spawn = (def: PeerDef): Worker =>
  new Worker(
    def,
    fork(Path.join(here, "worker.ts"), [def.id], {
      execArgv: ["--expose-gc", "--import", "tsx"],
      env: { ...process.env, UV_USE_IO_URING: "0", ...def.env },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
  )

// ---------------------------------------------------------------------------------------------
// Aggregation

const summarize = (w: Workload, peer: string, label: string, results: Array<TrialResult>, errors: Array<string>): PeerSummary => {
  const throughput = (r: TrialResult) => (w.unit === "GB/s" ? r.bytes / (r.elapsedMs / 1000) / 1e9 : r.ops / (r.elapsedMs / 1000))
  return {
    peer,
    label,
    trials: results,
    errors,
    throughput: median(results.map(throughput)),
    p50Us: median(results.map((r) => r.p50Us)),
    p99Us: median(results.map((r) => r.p99Us)),
    cpuUsPerOp: median(results.map((r) => r.cpuUs / r.ops)),
    peakRssMiB: results.some((r) => Number.isFinite(r.peakRssKiB))
      ? Math.max(...results.map((r) => r.peakRssKiB / 1024).filter(Number.isFinite))
      : NaN,
    verified: results.length > 0 && results.every((r) => r.verified === r.ops && r.ops > 0),
    ratio: NaN
  }
}

// ---------------------------------------------------------------------------------------------

/** Busy processes that are not this run (other sessions' tests share the machine). */
const otherLoad = (): string => {
  try {
    const mine = new Set([String(process.pid), ...workersPids()])
    const out = execFileSync("ps", ["-eo", "pid,pcpu,comm", "--sort=-pcpu", "--no-headers"], { encoding: "utf8" })
    return out.trim().split("\n").map((l) => l.trim().split(/\s+/)).filter(([pid, cpu]) => !mine.has(pid!) && Number(cpu) >= 20)
      .map(([pid, cpu, comm]) => `${comm}(${pid}) ${cpu}%`).join(", ") || "none"
  } catch {
    return "unknown"
  }
}
let workersPids = (): Array<string> => []

/** The commit measured, and whether the tree differs from it (others may be changing src/ meanwhile). */
const codeVersion = (): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "crates", "native"], { cwd: root, encoding: "utf8" }).trim()
    const addon = NFS.statSync(Path.join(root, "native", "uring_core.node")).mtime.toISOString()
    return `${head}${dirty ? " + uncommitted changes in src/crates/native" : ""}; addon built ${addon}`
  } catch {
    return "unknown"
  }
}

const main = async () => {
  const started = Date.now()
  // The build is checked against the sources here, once: the workers started later (memory) load
  // the same dist/ and must not fail on a source file edited during the run.
  await import("./lib.js")
  process.env.BENCH_DIST_CHECKED = "1"
  const code = codeVersion()
  const loadStart = Os.loadavg()[0]!.toFixed(2)
  log(`${quick ? "quick" : "full"} run, ${model} model: ${trials} trials of ${durationMs} ms per time-bounded workload; data in ${dataDir}`)
  prepare(data, log)
  log("warming the page cache (reading every file once)")
  warm(data)
  const cache = checkCache(data)
  const warmOk = cache.largeResident > 0.99 && cache.smallResident > 0.99
  log(`page cache: ${warmOk ? "warm" : "NOT warm"} (${cache.detail})`)
  log(fio ? `fio: ${fio}` : flag("no-fio") ? "fio: skipped (--no-fio)" : "fio: not installed")

  const workers = peers.map(spawn)
  workersPids = () => workers.map((w) => String(w.proc.pid))
  const othersAtStart = otherLoad()
  if (othersAtStart !== "none") log(`other busy processes on this machine: ${othersAtStart}`)
  for (const w of workers) {
    const hello = await w.ready
    if (w.def.env?.UV_USE_IO_URING === "1" && hello.uvUring !== "1") throw new Error("UV_USE_IO_URING did not reach the child")
  }
  log(`${workers.length} workers ready (${((Date.now() - started) / 1000).toFixed(1)} s)`)

  const reports: Array<WorkloadReport> = []
  for (const w of workloads) {
    // The host may page out cache pages idle for a minute (DAMON reclaim on these VMs): warm
    // again before each workload, and check after it that the files stayed resident.
    warm(data)
    const t0 = Date.now()
    const active: Array<Worker> = []
    const results = new Map<string, Array<TrialResult>>()
    const errors = new Map<string, Array<string>>()
    const fail = (id: string, e: unknown) => {
      const msg = e instanceof Error ? e.message.split("\n")[0]! : String(e)
      errors.set(id, [...(errors.get(id) ?? []), msg])
      log(`${w.id} ${id}: ${msg}`)
    }
    for (const worker of workers) {
      try {
        const opened = await worker.request({ type: "open", workload: w, data, model })
        if (opened.supported) active.push(worker)
      } catch (e) {
        fail(worker.def.id, e)
      }
    }
    const useFio = fio !== undefined && fioSupports(w)
    type Runner = { id: string; trial: (ms: number) => Promise<TrialResult> }
    const runners: Array<Runner> = [
      ...active.map((worker): Runner => ({
        id: worker.def.id,
        trial: async (ms) => (await worker.request({ type: "trial", durationMs: ms })).result
      })),
      ...(useFio ? [{ id: "fio", trial: async (ms: number) => fioTrial(w, data, ms, model) }] : [])
    ]
    // Warm-up (JIT, allocations, thread pools): one short trial each, not counted.
    for (const r of runners) {
      try {
        await r.trial(warmupMs)
      } catch (e) {
        fail(r.id, e)
      }
    }
    for (let t = 0; t < trials; t++) {
      for (let i = 0; i < runners.length; i++) {
        const r = runners[(i + t) % runners.length]!
        try {
          const res = await r.trial(durationMs)
          results.set(r.id, [...(results.get(r.id) ?? []), res])
        } catch (e) {
          fail(r.id, e)
        }
      }
    }
    for (const worker of active) {
      try {
        await worker.request({ type: "close" })
      } catch (e) {
        fail(worker.def.id, e)
      }
    }
    const summaries = [
      ...peers.map((p) => summarize(w, p.id, p.label, results.get(p.id) ?? [], errors.get(p.id) ?? [])),
      ...(useFio ? [summarize(w, "fio", "fio io_uring engine (registered file, fixed buffers)", results.get("fio") ?? [], errors.get("fio") ?? [])] : [])
    ].filter((s) => s.trials.length > 0 || s.errors.length > 0)
    const base = summaries.find((s) => s.peer === BASELINE)?.throughput ?? NaN
    for (const s of summaries) s.ratio = s.throughput / base
    // Only the files this workload reads count: DAMON may page out the others meanwhile.
    const after = checkCache(data)
    const reads = w.kind === "rand" || w.kind === "seq" ? "large" : w.kind === "append" ? "none" : "small"
    const stayedWarm = reads === "large" ? after.largeResident > 0.99 : reads === "small" ? after.smallResident > 0.99 : true
    if (!stayedWarm) log(`${w.id}: page cache NOT warm after the workload (${after.detail})`)
    reports.push({
      workload: w,
      peers: summaries,
      fio: fio !== undefined ? (useFio ? "run" : "n/a for this workload") : flag("no-fio") ? "skipped" : "not installed",
      cacheAfter: reads === "none" ? "not read (fresh files)" : stayedWarm ? "warm" : `NOT warm (${after.detail})`
    })
    log(`${w.id}: ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
      summaries.map((s) => `${s.peer} ${fmt(s.throughput, w.unit)}`).join(", "))
  }

  let memory: MemoryResult | undefined
  if (!flag("no-memory")) {
    // A fresh process, so the figures are the ring client's alone.
    const worker = spawn({ id: "uring-client", label: "memory" })
    await worker.ready
    const t0 = Date.now()
    memory = (await worker.request({ type: "memory", data, totalOps: memoryOps, firstOps: memoryFirst })).result as MemoryResult
    worker.proc.send({ type: "exit" })
    log(`memory: RSS ${memory.rssFirstKiB} KiB after ${memory.firstOps} ops, ${memory.rssEndKiB} KiB after ${memory.totalOps} ` +
      `(${memory.growthPct.toFixed(1)}%), ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  }
  for (const w of workers) w.proc.send({ type: "exit" })

  const report: Report = {
    meta: {
      date: new Date().toISOString(),
      mode: quick ? "quick" : "full",
      model,
      code,
      node: process.version,
      kernel: Os.release(),
      cpus: Os.cpus().length,
      cpuModel: Os.cpus()[0]?.model ?? "",
      trials,
      durationMs,
      warmupMs,
      data: { ...data },
      cache: { state: warmOk ? "warm" : "not warm", ...cache },
      fio: fio ?? (flag("no-fio") ? "skipped (--no-fio)" : "not installed"),
      library: "the compiled build (dist/)",
      elapsedS: 0,
      load: `1-min load average ${loadStart} at start, ${Os.loadavg()[0]!.toFixed(2)} at end; ` +
        `other busy processes at start: ${othersAtStart}; at end: ${otherLoad()}`
    },
    workloads: reports,
    ...(memory ? { memory } : {})
  }
  report.meta.elapsedS = (Date.now() - started) / 1000
  const outDir = Path.join(here, "results")
  NFS.mkdirSync(outDir, { recursive: true })
  const md = renderMarkdown(report)
  const json = JSON.stringify(report, null, 2)
  const svg = renderSvg(report)
  NFS.writeFileSync(Path.join(outDir, "latest.md"), md)
  NFS.writeFileSync(Path.join(outDir, "latest.json"), json)
  NFS.writeFileSync(Path.join(outDir, "ratios.svg"), svg)
  // A copy per mode, so a quick run does not hide the last full one (and the other way round).
  if (argv.every((a) => !a.startsWith("--only") && !a.startsWith("--peers"))) {
    NFS.writeFileSync(Path.join(outDir, `${report.meta.mode}.md`), md.replace("(ratios.svg)", `(ratios-${report.meta.mode}.svg)`))
    NFS.writeFileSync(Path.join(outDir, `${report.meta.mode}.json`), json)
    NFS.writeFileSync(Path.join(outDir, `ratios-${report.meta.mode}.svg`), svg)
  }
  process.stdout.write(md)
  log(`done in ${report.meta.elapsedS.toFixed(1)} s; wrote bench/results/latest.{md,json} and ratios.svg`)
}

const fmt = (v: number, unit: string) => (unit === "GB/s" ? `${v.toFixed(2)} GB/s` : `${Math.round(v / 1000)}k/s`)

/** `--render bench/results/full.json` (relative to the working directory): rewrite that run's markdown and SVG from its JSON (no measuring). */
const render = (file: string) => {
  const report = JSON.parse(NFS.readFileSync(file, "utf8")) as Report
  const dir = Path.dirname(file)
  const base = Path.basename(file, ".json")
  const svgName = base === "latest" ? "ratios.svg" : `ratios-${base}.svg`
  NFS.writeFileSync(Path.join(dir, `${base}.md`), renderMarkdown(report).replace("(ratios.svg)", `(${svgName})`))
  NFS.writeFileSync(Path.join(dir, svgName), renderSvg(report))
  log(`rewrote ${base}.md and ${svgName} in ${dir}`)
}

;(option("render") !== undefined ? Promise.resolve(render(option("render")!)) : main()).catch((error) => {
  console.error(error)
  process.exit(1)
})
