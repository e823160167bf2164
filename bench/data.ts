/**
 * The data files, created once and reused across runs when their size and pattern check out,
 * then read once so the page cache is warm; `fincore` (util-linux) confirms it when present.
 */
import { execFileSync } from "node:child_process"
import * as NFS from "node:fs"
import { BLOCK, checkBlock, checkSmall, type DataSpec, fillBlock, MAGIC_LARGE, MAGIC_SMALL, MIB, SMALL_SIZE, smallPath } from "./common.js"

const largeOk = (spec: DataSpec): boolean => {
  try {
    if (NFS.statSync(spec.largePath).size !== spec.largeSize) return false
    const fd = NFS.openSync(spec.largePath, "r")
    const buf = new Uint8Array(BLOCK)
    try {
      for (const b of [0, 1, spec.largeSize / BLOCK - 1, (spec.largeSize / BLOCK) >> 1]) {
        NFS.readSync(fd, buf, 0, BLOCK, b * BLOCK)
        if (!checkBlock(buf, 0, b)) return false
      }
    } finally {
      NFS.closeSync(fd)
    }
    return true
  } catch {
    return false
  }
}

export const prepare = (spec: DataSpec, log: (s: string) => void) => {
  NFS.mkdirSync(spec.smallDir, { recursive: true })
  NFS.mkdirSync(spec.appendDir, { recursive: true })
  if (!largeOk(spec)) {
    log(`creating ${spec.largePath} (${spec.largeSize / MIB} MiB)`)
    const fd = NFS.openSync(spec.largePath, "w")
    const chunk = new Uint8Array(MIB)
    for (let off = 0; off < spec.largeSize; off += MIB) {
      for (let b = 0; b < MIB / BLOCK; b++) fillBlock(chunk, b * BLOCK, off / BLOCK + b, MAGIC_LARGE)
      NFS.writeSync(fd, chunk, 0, MIB, off)
    }
    NFS.closeSync(fd)
  }
  const buf = new Uint8Array(SMALL_SIZE)
  let made = 0
  for (let k = 0; k < spec.smallCount; k++) {
    const p = smallPath(spec, k)
    let ok = false
    try {
      ok = NFS.statSync(p).size === SMALL_SIZE
    } catch {
      ok = false
    }
    if (!ok) {
      fillBlock(buf, 0, k, MAGIC_SMALL)
      NFS.writeFileSync(p, buf)
      made++
    }
  }
  if (made > 0) log(`created ${made} small files in ${spec.smallDir}`)
}

/** Reads everything once (warming the page cache) and checks the small files' pattern. */
export const warm = (spec: DataSpec) => {
  const fd = NFS.openSync(spec.largePath, "r")
  const chunk = new Uint8Array(MIB)
  for (let off = 0; off < spec.largeSize; off += MIB) NFS.readSync(fd, chunk, 0, MIB, off)
  NFS.closeSync(fd)
  for (let k = 0; k < spec.smallCount; k++) {
    const data = NFS.readFileSync(smallPath(spec, k))
    if (!checkSmall(data, data.length, k)) throw new Error(`small file ${k} has the wrong bytes`)
  }
}

export interface CacheState {
  readonly method: "fincore" | "timing"
  /** Fraction of the large file's pages resident. */
  readonly largeResident: number
  /** Fraction of a sample of small files' pages resident. */
  readonly smallResident: number
  readonly detail: string
}

const fincore = (paths: Array<string>): { pages: number; resident: number } | undefined => {
  try {
    const out = execFileSync("fincore", ["--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", ...paths], {
      encoding: "utf8",
      maxBuffer: 64 * MIB
    })
    let res = 0
    let size = 0
    for (const line of out.trim().split("\n")) {
      const [r, s] = line.trim().split(/\s+/).map(Number)
      res += r ?? 0
      size += s ?? 0
    }
    return { pages: size, resident: res }
  } catch {
    return undefined
  }
}

export const checkCache = (spec: DataSpec): CacheState => {
  const sample = Array.from({ length: Math.min(200, spec.smallCount) }, (_, i) =>
    smallPath(spec, Math.floor((i * spec.smallCount) / Math.min(200, spec.smallCount))))
  const large = fincore([spec.largePath])
  const small = fincore(sample)
  if (large && small && large.pages > 0) {
    return {
      method: "fincore",
      largeResident: large.resident / large.pages,
      smallResident: small.resident / small.pages,
      detail: `fincore: ${(large.resident / MIB).toFixed(0)} of ${(large.pages / MIB).toFixed(0)} MiB of the large file resident; ` +
        `${sample.length} sampled small files ${((small.resident / small.pages) * 100).toFixed(0)}% resident`
    }
  }
  // No fincore: a second full read at memory speed (> 1 GB/s) means the pages are cached.
  const t0 = performance.now()
  warm(spec)
  const gbps = spec.largeSize / ((performance.now() - t0) / 1000) / 1e9
  const warmByTime = gbps > 1 ? 1 : 0
  return { method: "timing", largeResident: warmByTime, smallResident: warmByTime, detail: `re-read at ${gbps.toFixed(1)} GB/s` }
}
