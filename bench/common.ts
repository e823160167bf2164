/**
 * Shared by the orchestrator (`run.ts`) and the peer workers (`worker.ts`): the data layout and
 * its byte pattern, workload descriptions, and the small statistics helpers.
 */
import * as Fs from "node:fs"

export const BLOCK = 4096
export const MIB = 1 << 20
/** Second word of every 4 KiB block of the large file ("URNG"). */
export const MAGIC_LARGE = 0x474e5255
/** Second word of every small file. */
export const MAGIC_SMALL = 0x4c4c4d53
/** Size of each small file. */
export const SMALL_SIZE = 4096
/** Reads of a small file go in chunks of this size until a short read (so one read sees EOF). */
export const SMALL_CHUNK = 16384
/** Files (and stat paths) in flight at once for the async peers of the small-file and stat workloads. */
export const PATH_CONCURRENCY = 64
/** Sequential reads: this many 1 MiB reads in flight per batch. */
export const SEQ_WINDOW = 4
export const SEQ_CHUNK = MIB
/** Appends: fdatasync after every this many 4 KiB writes. */
export const SYNC_EVERY = 16

export type WorkloadKind = "rand" | "seq" | "small" | "stat" | "append"

export interface Workload {
  readonly id: string
  readonly kind: WorkloadKind
  readonly title: string
  /** Reads in flight (rand), reads per batch (seq), paths in flight (small / stat), 1 for append. */
  readonly qd: number
  /** "ops/s" or "GB/s". */
  readonly unit: "ops/s" | "GB/s"
  /** What the p50 / p99 columns time. */
  readonly latency: string
}

export interface DataSpec {
  readonly dir: string
  readonly largePath: string
  readonly largeSize: number
  readonly smallDir: string
  readonly smallCount: number
  /** The stat storm: every existing small file plus one missing path per `missingEvery` files. */
  readonly missingEvery: number
  readonly appendDir: string
  readonly appendWrites: number
  /** Random block indices every peer walks through (same seed, same order). */
  readonly randomSeed: number
}

export interface TrialParams {
  /** Time-bounded workloads (rand, seq) run this long; the others do a fixed amount of work. */
  readonly durationMs: number
}

/** What one trial of one peer measured. */
export interface TrialResult {
  readonly ops: number
  readonly bytes: number
  readonly elapsedMs: number
  readonly cpuUs: number
  readonly p50Us: number
  readonly p99Us: number
  /** Peak RSS during the trial (VmHWM after a reset through /proc/self/clear_refs), KiB. */
  readonly peakRssKiB: number
  /** Ops whose returned bytes / sizes / errors matched the pattern; must equal `ops`. */
  readonly verified: number
  readonly note?: string
}

export const smallPath = (spec: Pick<DataSpec, "smallDir">, k: number) => `${spec.smallDir}/f${k}.dat`
export const missingPath = (spec: Pick<DataSpec, "smallDir">, k: number) => `${spec.smallDir}/missing-${k}.dat`

/** The stat storm's path list: existing files with a missing path after every `missingEvery`. */
export const statPaths = (spec: DataSpec): { paths: Array<string>; exists: Uint8Array } => {
  const paths: Array<string> = []
  const exists: Array<number> = []
  for (let k = 0; k < spec.smallCount; k++) {
    paths.push(smallPath(spec, k))
    exists.push(1)
    if (k % spec.missingEvery === spec.missingEvery - 1) {
      paths.push(missingPath(spec, k))
      exists.push(0)
    }
  }
  return { paths, exists: Uint8Array.from(exists) }
}

/** Writes block `index`'s header (index, magic) and fill into `buf` at `at`. */
export const fillBlock = (buf: Uint8Array, at: number, index: number, magic: number) => {
  buf.fill(index & 0xff, at, at + BLOCK)
  writeU32(buf, at, index)
  writeU32(buf, at + 4, magic)
}

const writeU32 = (buf: Uint8Array, at: number, v: number) => {
  buf[at] = v & 0xff
  buf[at + 1] = (v >>> 8) & 0xff
  buf[at + 2] = (v >>> 16) & 0xff
  buf[at + 3] = (v >>> 24) & 0xff
}

export const readU32 = (buf: Uint8Array, at: number) =>
  (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0

/** Whether `buf[at..]` holds block `index` of the large file (header and one fill byte). */
export const checkBlock = (buf: Uint8Array, at: number, index: number): boolean =>
  readU32(buf, at) === index && readU32(buf, at + 4) === MAGIC_LARGE && buf[at + 4095] === (index & 0xff)

/** Whether a small file's bytes are file `k`'s. */
export const checkSmall = (buf: Uint8Array, length: number, k: number): boolean =>
  length === SMALL_SIZE && readU32(buf, 0) === k && readU32(buf, 4) === MAGIC_SMALL && buf[SMALL_SIZE - 1] === (k & 0xff)

/** Every block header of a sequential chunk. */
export const checkChunk = (buf: Uint8Array, length: number, firstBlock: number): boolean => {
  if (length !== SEQ_CHUNK) return false
  for (let b = 0; b < SEQ_CHUNK / BLOCK; b++) {
    if (readU32(buf, b * BLOCK) !== firstBlock + b || readU32(buf, b * BLOCK + 4) !== MAGIC_LARGE) return false
  }
  return true
}

/** The random block sequence (xorshift32), identical in every peer. */
export const randomBlocks = (seed: number, blocks: number, count = 1 << 20): Uint32Array => {
  const out = new Uint32Array(count)
  let x = seed >>> 0 || 1
  for (let i = 0; i < count; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x % blocks
  }
  return out
}

/** Latency samples in microseconds, kept in a ring when a trial produces more than fit. */
export class Samples {
  private readonly data: Float64Array
  private n = 0
  constructor(capacity = 1 << 20) {
    this.data = new Float64Array(capacity)
  }
  reset() {
    this.n = 0
  }
  add(us: number) {
    this.data[this.n++ % this.data.length] = us
  }
  percentiles(): { p50: number; p99: number } {
    const view = this.data.subarray(0, Math.min(this.n, this.data.length)).slice().sort()
    return { p50: quantile(view, 0.5), p99: quantile(view, 0.99) }
  }
}

export const quantile = (sorted: ArrayLike<number>, q: number): number => {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}

export const median = (xs: ReadonlyArray<number>): number => {
  const v = xs.filter((x) => Number.isFinite(x)).slice().sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const m = v.length >> 1
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2
}

/** Resets this process's peak RSS (VmHWM) to its current RSS; false where the kernel lacks it. */
export const resetPeakRss = (): boolean => {
  try {
    Fs.writeFileSync("/proc/self/clear_refs", "5")
    return true
  } catch {
    return false
  }
}

/** VmHWM of this process, KiB (falls back to the process-lifetime maxRSS). */
export const peakRssKiB = (): number => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Fs.readFileSync("/proc/self/status", "utf8"))
    if (m) return Number(m[1])
  } catch {
    // fall through
  }
  return process.resourceUsage().maxRSS
}
