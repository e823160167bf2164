/**
 * Output: the markdown report (stdout and bench/results/latest.md) and a hand-written SVG chart of
 * every peer's throughput as a ratio to the Effect Uring service's, measured in the same run.
 */
import type { TrialResult, Workload } from "./common.js"
import type { MemoryResult } from "./memory.js"

export interface PeerSummary {
  readonly peer: string
  readonly label: string
  readonly trials: ReadonlyArray<TrialResult>
  readonly errors: ReadonlyArray<string>
  /** Median over trials: ops/s, or GB/s for sequential reads. */
  readonly throughput: number
  readonly p50Us: number
  readonly p99Us: number
  readonly cpuUsPerOp: number
  readonly peakRssMiB: number
  /** Every trial's returned bytes (or sizes / errors) checked out. */
  readonly verified: boolean
  /** throughput / the Effect Uring service's throughput, same run. */
  ratio: number
}

export interface WorkloadReport {
  readonly workload: Workload
  readonly peers: ReadonlyArray<PeerSummary>
  readonly fio: string
  /** The page cache's state when the workload ended (absent in reports from before this check). */
  readonly cacheAfter?: string
}

export interface Report {
  readonly meta: {
    date: string
    mode: string
    model: string
    code: string
    node: string
    kernel: string
    cpus: number
    cpuModel: string
    trials: number
    durationMs: number
    warmupMs: number
    data: Record<string, unknown>
    cache: { state: string; detail: string }
    fio: string
    /** What was measured; runs before it was recorded measured the TypeScript sources through tsx. */
    library?: string
    elapsedS: number
    load: string
  }
  readonly workloads: ReadonlyArray<WorkloadReport>
  readonly memory?: MemoryResult
}

const num = (v: number, digits = 0) =>
  Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a"
const thr = (v: number, unit: string) => (unit === "GB/s" ? `${num(v, 2)} GB/s` : `${num(v)}`)
const us = (v: number) => (Number.isFinite(v) ? (v < 10 ? num(v, 2) : v < 100 ? num(v, 1) : num(v)) : "n/a")
const ratio = (v: number) => (Number.isFinite(v) ? `${v < 0.1 ? v.toFixed(3) : v.toFixed(2)}x` : "n/a")

interface Target {
  readonly what: string
  readonly goal: string
  readonly measured: string
  readonly met: boolean | undefined
}

const find = (r: Report, workload: string, peer: string) =>
  r.workloads.find((w) => w.workload.id === workload)?.peers.find((p) => p.peer === peer)

/** "Effect Uring service >= k x peer", in the issue's terms (the inverse of the table's ratio). */
const over = (r: Report, workload: string, peer: string, k: number, label: string): Target => {
  const base = find(r, workload, "uring-effect")
  const other = find(r, workload, peer)
  const x = base && other ? base.throughput / other.throughput : NaN
  return {
    what: `${workload}: Uring service vs ${label}`,
    goal: `>= ${k}x`,
    measured: Number.isFinite(x) ? `${x.toFixed(2)}x` : "not measured",
    met: Number.isFinite(x) ? x >= k : undefined
  }
}

/** The batch entry point (`Uring.readBatch`, 64 ranges per call) vs fio at 64 in flight. */
const batchVsFio = (r: Report): Target => {
  const batch = find(r, "rand-4k-qd64", "uring-batch")
  const fio = find(r, "rand-4k-qd64", "fio")
  const x = batch && fio ? batch.throughput / fio.throughput : NaN
  return {
    what: "rand-4k-qd64: batch entry point (Uring.readBatch, 64 ranges per call) vs fio io_uring",
    goal: ">= 0.9x",
    measured: Number.isFinite(x) ? `${x.toFixed(2)}x` : batch ? "fio not measured" : "not measured (uring-batch not run)",
    met: Number.isFinite(x) ? x >= 0.9 : undefined
  }
}

export const targets = (r: Report): Array<Target> => {
  const out: Array<Target> = [
    over(r, "rand-4k-qd64", "node-fs-effect", 20, "NodeFileSystem"),
    over(r, "rand-4k-qd64", "fs-promises", 3, "fs.promises"),
    over(r, "rand-4k-qd64", "fs-callback", 1.0, "fs.read callbacks"),
    over(r, "rand-4k-qd64", "fio", 0.6, "fio io_uring"),
    batchVsFio(r),
    over(r, "small-files", "fs-promises", 2, "fs.promises.readFile"),
    over(r, "small-files", "node-fs-effect", 3, "NodeFileSystem.readFile"),
    over(r, "seq-1m", "fio", 0.8, "fio io_uring (GB/s)")
  ]
  const qd1 = find(r, "rand-4k-qd1", "uring-effect")
  const qd1p = find(r, "rand-4k-qd1", "fs-promises")
  const lat = qd1 && qd1p ? qd1.p50Us / qd1p.p50Us : NaN
  out.push({
    what: `QD1 4 KiB read p50: Uring service ${us(qd1?.p50Us ?? NaN)} µs vs fs.promises ${us(qd1p?.p50Us ?? NaN)} µs`,
    goal: "<= 0.5x",
    measured: Number.isFinite(lat) ? `${lat.toFixed(2)}x` : "not measured",
    met: Number.isFinite(lat) ? lat <= 0.5 : undefined
  })
  const m = r.memory
  out.push({
    what: m
      ? `RSS after ${num(m.totalOps)} RingClient ops vs after ${num(m.firstOps)} (${num(m.rssEndKiB / 1024, 1)} vs ${num(m.rssFirstKiB / 1024, 1)} MiB)`
      : "RSS growth",
    goal: "within 10%",
    measured: m ? `${m.growthPct >= 0 ? "+" : ""}${m.growthPct.toFixed(1)}%` : "not measured",
    met: m ? Math.abs(m.growthPct) <= 10 : undefined
  })
  return out
}

export const renderMarkdown = (r: Report): string => {
  const m = r.meta
  const lines: Array<string> = []
  lines.push(`# effect-uring benchmark (${m.mode})`)
  lines.push("")
  lines.push(`${m.date} · Node ${m.node} · Linux ${m.kernel} · ${m.cpus} CPUs (${m.cpuModel}) · ` +
    `${m.trials} trials per peer, interleaved, medians · ${m.durationMs} ms per time-bounded trial · ${m.elapsedS.toFixed(0)} s total`)
  lines.push("")
  lines.push(`- Code: ${m.code}.`)
  lines.push(`- Page cache: **${m.cache.state}** (every file read once before the runs; ${m.cache.detail}).`)
  lines.push(`- fio: ${m.fio}. Library measured: ${m.library ?? "the TypeScript sources through tsx"}.`)
  lines.push(`- Machine load: ${m.load}. Absolute figures move with it; compare ratios measured in one run.`)
  lines.push("- Ratio = peer throughput / Effect `Uring` service throughput in this run (> 1: the peer is faster).")
  lines.push(m.model === "batch"
    ? "- Model: batches (issue `qd` ops, wait for the last). Latency per op at 1 in flight, per batch otherwise; fio reports per-op latency."
    : "- Model: `qd` closed-loop lanes (each issues its next op when its previous one completes; fio's iodepth). Latency per op. Effect peers fork `qd` fibers once per trial.")
  lines.push("- CPU µs/op: user + system time of the whole process (every thread: the ring's two, libuv's pool) per op.")
  lines.push("- Peak RSS: the worker process's high-water mark during the trial (reset through /proc/self/clear_refs).")
  lines.push("- Bytes checked: every read's data matched the file's pattern (block index + magic per 4 KiB), every stat its size or ENOENT, every write its count and the final file size.")
  lines.push("")
  lines.push("## Targets (issue 5)")
  lines.push("")
  lines.push("| target | goal | measured | met |")
  lines.push("| --- | --- | --- | --- |")
  for (const t of targets(r)) lines.push(`| ${t.what} | ${t.goal} | ${t.measured} | ${t.met === undefined ? "–" : t.met ? "yes" : "**no**"} |`)
  lines.push("")
  for (const w of r.workloads) {
    lines.push(`## ${w.workload.title}`)
    lines.push("")
    lines.push(
      `\`${w.workload.id}\` · latency ${w.workload.latency} · fio: ${w.fio}` +
        (w.cacheAfter !== undefined ? ` · page cache after: ${w.cacheAfter}` : "")
    )
    lines.push("")
    lines.push(`| peer | ${w.workload.unit} | ratio | p50 µs | p99 µs | CPU µs/op | peak RSS MiB | bytes checked |`)
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for (const p of w.peers) {
      const name = p.peer === "uring-effect" ? `**${p.peer}**` : p.peer
      const err = p.errors.length > 0 ? ` (${p.errors.length} error${p.errors.length > 1 ? "s" : ""}: ${p.errors[0]!.slice(0, 80)})` : ""
      lines.push(`| ${name}${err} | ${thr(p.throughput, w.workload.unit)} | ${ratio(p.ratio)} | ${us(p.p50Us)} | ${us(p.p99Us)} | ` +
        `${us(p.cpuUsPerOp)} | ${num(p.peakRssMiB, 0)} | ${p.verified ? "yes" : "**NO**"} (${p.trials.length} trials) |`)
    }
    lines.push("")
  }
  if (r.memory) {
    const mm = r.memory
    lines.push("## Memory: RingClient steady state")
    lines.push("")
    lines.push(`4 KiB random reads, 64 in flight, registered file, reused buffers; RSS after a full GC.`)
    lines.push("")
    lines.push(`| after ops | RSS MiB |`)
    lines.push(`| ---: | ---: |`)
    lines.push(`| ${num(mm.firstOps)} | ${num(mm.rssFirstKiB / 1024, 1)} |`)
    const step = mm.totalOps / 10
    for (const s of mm.series) if (s.ops > mm.firstOps + step / 2) lines.push(`| ${num(s.ops)} | ${num(s.rssKiB / 1024, 1)} |`)
    lines.push(`| ${num(mm.totalOps)} (after GC) | ${num(mm.rssEndKiB / 1024, 1)} |`)
    lines.push("")
    lines.push(`Growth ${mm.growthPct.toFixed(1)}%; JS heap ${num(mm.heapFirstKiB / 1024, 1)} -> ${num(mm.heapEndKiB / 1024, 1)} MiB; ` +
      `${num(mm.opsPerSec)} ops/s; ${mm.verified === mm.totalOps ? "all" : `${mm.verified} of ${mm.totalOps}`} reads checked.`)
    lines.push("")
  }
  lines.push("![ratios](ratios.svg)")
  lines.push("")
  return lines.join("\n")
}

const COLORS: Record<string, string> = {
  "uring-batch": "#386cb0",
  "uring-client": "#1b9e77",
  "uring-fs": "#66a61e",
  "uring-fs-at": "#a6d854",
  "fs-promises": "#d95f02",
  "fs-callback": "#7570b3",
  "fs-callback-uv-uring": "#e7298a",
  "fs-sync": "#a6761d",
  "effect-sync-floor": "#b3b3b3",
  "node-fs-effect": "#e6ab02",
  fio: "#666666"
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** Horizontal bars on a log scale centred on 1.0 (the Effect Uring service): right = faster. */
export const renderSvg = (r: Report): string => {
  const rows: Array<{ group?: string; peer?: string; ratio?: number }> = []
  for (const w of r.workloads) {
    rows.push({ group: `${w.workload.title}` })
    for (const p of w.peers) if (p.peer !== "uring-effect") rows.push({ peer: p.peer, ratio: p.ratio })
  }
  const finite = rows.map((x) => x.ratio).filter((x): x is number => x !== undefined && Number.isFinite(x) && x > 0)
  // Room left of the smallest bar for its value label.
  const lo = Math.min(1 / 4, ...finite.map((x) => x / 2.5))
  const hi = Math.max(4, ...finite.map((x) => x * 1.3))
  const width = 980
  const left = 200
  const right = 40
  const rowH = 16
  const top = 64
  const height = top + rows.length * rowH + 40
  const x = (v: number) => left + ((Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * (width - left - right)
  const out: Array<string> = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">` +
    `Throughput relative to the Effect Uring service (1.0), log scale; right of the line = faster than effect-uring</text>`)
  out.push(`<text x="${width / 2}" y="34" text-anchor="middle" fill="#555">${esc(`${r.meta.mode} run ${r.meta.date.slice(0, 16)}Z · Node ${r.meta.node} · ${r.meta.cpus} CPUs · medians of ${r.meta.trials} trials · page cache ${r.meta.cache.state}`)}</text>`)
  // Grid: powers of two.
  for (let e = Math.ceil(Math.log2(lo)); e <= Math.floor(Math.log2(hi)); e++) {
    const v = 2 ** e
    const gx = x(v).toFixed(1)
    out.push(`<line x1="${gx}" y1="${top - 8}" x2="${gx}" y2="${height - 30}" stroke="${e === 0 ? "#000" : "#ddd"}" stroke-width="${e === 0 ? 1.5 : 1}"/>`)
    out.push(`<text x="${gx}" y="${top - 12}" text-anchor="middle" fill="#444">${v >= 1 ? v : `1/${1 / v}`}</text>`)
    out.push(`<text x="${gx}" y="${height - 16}" text-anchor="middle" fill="#444">${v >= 1 ? v : `1/${1 / v}`}x</text>`)
  }
  rows.forEach((row, i) => {
    const y = top + i * rowH
    if (row.group !== undefined) {
      out.push(`<text x="6" y="${y + 12}" font-weight="bold">${esc(row.group)}</text>`)
      return
    }
    out.push(`<text x="${left - 6}" y="${y + 11}" text-anchor="end">${esc(row.peer!)}</text>`)
    const v = row.ratio!
    if (!Number.isFinite(v) || v <= 0) {
      out.push(`<text x="${x(1) + 4}" y="${y + 11}" fill="#999">n/a</text>`)
      return
    }
    const x0 = Math.min(x(1), x(v))
    const w = Math.max(1, Math.abs(x(v) - x(1)))
    out.push(`<rect x="${x0.toFixed(1)}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 4}" fill="${COLORS[row.peer!] ?? "#888"}"/>`)
    const label = v < 0.1 ? v.toFixed(3) : v.toFixed(2)
    out.push(v >= 1
      ? `<text x="${(x(v) + 3).toFixed(1)}" y="${y + 11}">${label}</text>`
      : `<text x="${(x(v) - 3).toFixed(1)}" y="${y + 11}" text-anchor="end">${label}</text>`)
  })
  out.push(`</svg>`)
  return out.join("\n") + "\n"
}
