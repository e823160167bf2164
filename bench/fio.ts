/**
 * fio's io_uring engine on the same files: the native limit. Same model as the JS peers
 * (closed loop of `qd`, or batches of `qd`), registered file and fixed buffers, page cache left alone
 * (`invalidate=0`, fio's default would drop the cache first).
 */
import { execFileSync } from "node:child_process"
import * as NFS from "node:fs"
import { BLOCK, type DataSpec, SYNC_EVERY, type TrialResult, type Workload } from "./common.js"

export const fioVersion = (): string | undefined => {
  try {
    return execFileSync("fio", ["--version"], { encoding: "utf8" }).trim()
  } catch {
    return undefined
  }
}

export const fioSupports = (w: Workload) => w.kind === "rand" || w.kind === "seq" || w.kind === "append"

export const fioArgs = (w: Workload, data: DataSpec, durationMs: number, model: "lanes" | "batch"): Array<string> => {
  const common = [
    "--name=bench",
    "--ioengine=io_uring",
    "--invalidate=0",
    "--output-format=json",
    "--lat_percentiles=1",
    "--registerfiles",
    "--fixedbufs"
  ]
  if (w.kind === "append") {
    return [
      ...common,
      `--filename=${data.appendDir}/fio.dat`,
      "--rw=write",
      `--bs=${BLOCK}`,
      `--size=${data.appendWrites * BLOCK}`,
      `--fdatasync=${SYNC_EVERY}`,
      "--fallocate=none",
      "--iodepth=1"
    ]
  }
  // lanes: keep qd in flight, submit and reap in batches of up to qd; batch: also wait for all qd.
  const batch = [
    `--iodepth=${w.qd}`,
    `--iodepth_batch_submit=${w.qd}`,
    `--iodepth_batch_complete_max=${w.qd}`,
    ...(model === "batch" ? [`--iodepth_batch_complete_min=${w.qd}`] : [])
  ]
  return [
    ...common,
    `--filename=${data.largePath}`,
    `--size=${data.largeSize}`,
    w.kind === "rand" ? "--rw=randread" : "--rw=read",
    w.kind === "rand" ? `--bs=${BLOCK}` : "--bs=1M",
    "--norandommap",
    "--randrepeat=0",
    ...batch,
    "--time_based",
    `--runtime=${Math.max(1, Math.round(durationMs))}ms`
  ]
}

export const fioTrial = (w: Workload, data: DataSpec, durationMs: number, model: "lanes" | "batch"): TrialResult => {
  if (w.kind === "append") NFS.rmSync(`${data.appendDir}/fio.dat`, { force: true })
  const out = execFileSync("fio", fioArgs(w, data, durationMs, model), { encoding: "utf8", maxBuffer: 64 << 20 })
  const job = JSON.parse(out.slice(out.indexOf("{"))).jobs[0]
  const side = w.kind === "append" ? job.write : job.read
  const runtimeMs: number = job.job_runtime || side.runtime
  const ops: number = side.total_ios
  const pct = side.lat_ns?.percentile ?? side.clat_ns?.percentile ?? {}
  const cpuUs = ((job.usr_cpu + job.sys_cpu) / 100) * runtimeMs * 1000
  const expectedBytes = ops * (w.kind === "seq" ? 1 << 20 : BLOCK)
  return {
    ops,
    bytes: side.io_bytes,
    elapsedMs: runtimeMs,
    cpuUs,
    p50Us: (pct["50.000000"] ?? NaN) / 1000,
    p99Us: (pct["99.000000"] ?? NaN) / 1000,
    peakRssKiB: NaN,
    // fio does not return data to us; it counts bytes moved, which must match its op count.
    verified: side.io_bytes === expectedBytes && job.error === 0 ? ops : 0,
    note: "fio: per-op latency (lat_ns), CPU from usr_cpu+sys_cpu"
  }
}
