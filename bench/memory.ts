/**
 * Steady-state memory: 4 KiB random reads (64 in flight, registered file, reused buffers)
 * through the RingClient; RSS after the first `firstOps` operations vs after `totalOps`, both
 * measured after a full GC. The engine should allocate nothing per operation in steady state.
 */
import * as NFS from "node:fs"
import { RingClient } from "./lib.js"
import { BLOCK, checkBlock, type DataSpec, randomBlocks } from "./common.js"

export interface MemoryResult {
  readonly firstOps: number
  readonly totalOps: number
  readonly rssFirstKiB: number
  readonly rssEndKiB: number
  readonly growthPct: number
  readonly heapFirstKiB: number
  readonly heapEndKiB: number
  /** RSS (KiB) at every tenth of the run. */
  readonly series: ReadonlyArray<{ ops: number; rssKiB: number }>
  readonly opsPerSec: number
  readonly verified: number
}

const QD = 64

export const memoryGrowth = async (data: DataSpec, totalOps: number, firstOps: number): Promise<MemoryResult> => {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})
  const blocks = randomBlocks(data.randomSeed, data.largeSize / BLOCK)
  const client = new RingClient({ entries: 16384, registeredFiles: 64 })
  const fd = NFS.openSync(data.largePath, "r")
  const slot = await new Promise<number>((resolve, reject) =>
    client.submit((n, id) => n.registerFile(id, fd), (r) => (r >= 0 ? resolve(r) : reject(new Error(`errno ${-r}`))))
  )
  const bufs = Array.from({ length: QD }, () => new Uint8Array(BLOCK))
  const ids = new Uint32Array(QD)
  let cursor = 0
  let done = 0
  let verified = 0
  let rssFirstKiB = 0
  let heapFirstKiB = 0
  const series: Array<{ ops: number; rssKiB: number }> = []
  const step = Math.max(firstOps, Math.floor(totalOps / 10))
  let nextSample = step
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    let remaining = 0
    const onResult = (lane: number) => (res: number) => {
      if (checkBlock(bufs[lane]!, 0, ids[lane]!) && res === BLOCK) verified++
      if (--remaining === 0) batch()
    }
    const callbacks = bufs.map((_, l) => onResult(l))
    const batch = () => {
      if (done >= firstOps && rssFirstKiB === 0) {
        gc()
        rssFirstKiB = Math.round(process.memoryUsage.rss() / 1024)
        heapFirstKiB = Math.round(process.memoryUsage().heapUsed / 1024)
      }
      if (done >= nextSample) {
        series.push({ ops: done, rssKiB: Math.round(process.memoryUsage.rss() / 1024) })
        nextSample += step
      }
      if (done >= totalOps) return resolve()
      remaining = QD
      for (let l = 0; l < QD; l++) {
        const id = blocks[cursor++ & (blocks.length - 1)]!
        ids[l] = id
        const buf = bufs[l]!
        client.submit((n, op) => n.read(op, slot, true, buf, id * BLOCK, false), callbacks[l]!, buf)
      }
      done += QD
    }
    batch()
  })
  const elapsed = performance.now() - t0
  gc()
  const rssEndKiB = Math.round(process.memoryUsage.rss() / 1024)
  const heapEndKiB = Math.round(process.memoryUsage().heapUsed / 1024)
  await new Promise<void>((resolve) => client.submit((n, id) => n.unregisterFile(id, slot), () => resolve()))
  NFS.closeSync(fd)
  client.shutdown()
  return {
    firstOps,
    totalOps: done,
    rssFirstKiB,
    rssEndKiB,
    growthPct: ((rssEndKiB - rssFirstKiB) / rssFirstKiB) * 100,
    heapFirstKiB,
    heapEndKiB,
    series,
    opsPerSec: (done / elapsed) * 1000,
    verified
  }
}
