/**
 * One peer in its own process, driven by `run.ts` over IPC: open a workload's session, run timed
 * trials one at a time (never concurrently with another peer), close it. Each trial reports
 * throughput, latency percentiles, CPU time (process.cpuUsage: every thread of the process,
 * including the ring's and libuv's), and the trial's peak RSS (VmHWM reset before the trial).
 *
 * Usage (by run.ts): node --expose-gc --import tsx bench/worker.ts <peer-id>
 */
import { Layer } from "effect"
import { type DataSpec, peakRssKiB, randomBlocks, resetPeakRss, Samples, type TrialResult, type Workload } from "./common.js"
import {
  effectSyncFloor,
  fsCallback,
  fsPromises,
  fsSync,
  type Peer,
  platformFileSystem,
  type Session,
  uringClient,
  uringEffect,
  uringEffectBatch,
  uringEffectRing
} from "./peers.js"
import { memoryGrowth } from "./memory.js"


const loadPeer = async (id: string): Promise<Peer> => {
  switch (id) {
    case "uring-effect":
      return uringEffect
    case "uring-effect-ring":
      return uringEffectRing
    case "uring-client":
      return uringClient
    case "uring-batch":
      return uringEffectBatch
    case "fs-promises":
      return fsPromises
    case "fs-callback":
    case "fs-callback-uv-uring":
      return fsCallback
    case "fs-sync":
      return fsSync
    case "effect-sync-floor":
      return effectSyncFloor
    case "node-fs-effect": {
      const { layer } = await import("@effect/platform-node-shared/NodeFileSystem")
      return platformFileSystem(layer)
    }
    case "uring-fs":
    case "uring-fs-at": {
      const { Uring, UringFileSystem } = await import("./lib.js")
      return platformFileSystem(Layer.provide(UringFileSystem.layer, Uring.layer()), id === "uring-fs-at")
    }
    default:
      throw new Error(`unknown peer ${id}`)
  }
}

const peerId = process.argv[2]!
const samples = new Samples()
let session: Session | undefined
let peer: Peer | undefined
let blocksCache: { key: string; blocks: Uint32Array } | undefined

const send = (msg: unknown) => process.send!(msg)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

const trial = async (durationMs: number): Promise<TrialResult> => {
  gc()
  samples.reset()
  const rssReset = resetPeakRss()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const outcome = await session!.run(durationMs)
  const elapsedMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const { p50, p99 } = samples.percentiles()
  return {
    ops: outcome.ops,
    bytes: outcome.bytes,
    elapsedMs,
    cpuUs: cpu.user + cpu.system,
    p50Us: p50,
    p99Us: p99,
    peakRssKiB: peakRssKiB(),
    verified: outcome.verified,
    ...(rssReset ? {} : { note: "peak RSS is the process lifetime maximum (no clear_refs)" })
  }
}

process.on("message", async (msg: any) => {
  try {
    switch (msg.type) {
      case "open": {
        peer ??= await loadPeer(peerId)
        const workload = msg.workload as Workload
        const data = msg.data as DataSpec
        const key = `${data.randomSeed}:${data.largeSize}`
        if (blocksCache?.key !== key) blocksCache = { key, blocks: randomBlocks(data.randomSeed, data.largeSize / 4096) }
        session = await peer({ model: msg.model ?? "lanes", workload, data, blocks: blocksCache.blocks, samples })
        send({ type: "opened", supported: session !== undefined })
        break
      }
      case "trial":
        send({ type: "result", result: await trial(msg.durationMs) })
        break
      case "close":
        await session?.close()
        session = undefined
        send({ type: "closed" })
        break
      case "memory":
        send({ type: "memory", result: await memoryGrowth(msg.data as DataSpec, msg.totalOps, msg.firstOps) })
        break
      case "exit":
        process.exit(0)
    }
  } catch (error) {
    send({ type: "error", error: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) })
  }
})
process.on("disconnect", () => process.exit(0))
send({ type: "ready", peer: peerId, uvUring: process.env.UV_USE_IO_URING ?? "" })
