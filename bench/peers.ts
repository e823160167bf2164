/**
 * The peers, each implementing every workload it can in its own idiom. A session is opened per
 * workload (files opened, registered, buffers allocated: not timed) and then runs trials.
 *
 * Latency: one sample per op when the workload runs one op at a time, otherwise one sample per
 * batch (all `qd` ops issued together, timed until the last completes).
 */
import * as NFS from "node:fs"
import * as FSP from "node:fs/promises"
import { FileSystem } from "@effect/platform"
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { RingClient, STATX_ALL_MASK, Uring, type UringConfigInput } from "./lib.js"
import {
  BLOCK,
  checkBlock,
  checkChunk,
  checkSmall,
  type DataSpec,
  readU32,
  type Samples,
  SEQ_CHUNK,
  SMALL_CHUNK,
  SMALL_SIZE,
  smallPath,
  statPaths,
  SYNC_EVERY,
  type Workload
} from "./common.js"

/**
 * `lanes` (default): `qd` independent loops, each issuing its next op when its previous one
 * completes (a closed loop, like fio's iodepth); latency per op. `batch`: issue `qd` ops, wait
 * for all, repeat; latency per batch.
 */
export type Model = "lanes" | "batch"

export interface Ctx {
  readonly model: Model
  readonly workload: Workload
  readonly data: DataSpec
  readonly blocks: Uint32Array
  readonly samples: Samples
}

export interface Outcome {
  readonly ops: number
  readonly bytes: number
  readonly verified: number
}

export interface Session {
  run(durationMs: number): Promise<Outcome>
  close(): Promise<void>
}

/** Returns undefined when the peer has no way to do the workload. */
export type Peer = (ctx: Ctx) => Promise<Session | undefined>

const now = () => performance.now()

// ---------------------------------------------------------------------------------------------
// What a read workload reads: 4 KiB blocks at random (rand) or consecutive 1 MiB chunks (seq).

interface ReadPlan {
  readonly size: number
  /** Id of the next read (a block index or a chunk index). */
  next(): number
  offset(id: number): number
  check(buf: Uint8Array, n: number, id: number): boolean
}

const readPlan = (ctx: Ctx): ReadPlan => {
  let cursor = 0
  if (ctx.workload.kind === "rand") {
    const blocks = ctx.blocks
    return {
      size: BLOCK,
      next: () => blocks[cursor++ & (blocks.length - 1)]!,
      offset: (id) => id * BLOCK,
      check: (buf, n, id) => n === BLOCK && checkBlock(buf, 0, id)
    }
  }
  const chunks = Math.floor(ctx.data.largeSize / SEQ_CHUNK)
  return {
    size: SEQ_CHUNK,
    next: () => cursor++ % chunks,
    offset: (id) => id * SEQ_CHUNK,
    check: (buf, n, id) => checkChunk(buf, n, id * (SEQ_CHUNK / BLOCK))
  }
}

const buffers = (count: number, size: number) => Array.from({ length: count }, () => new Uint8Array(size))

/**
 * A read workload's lanes for the Effect drivers: `offset(lane)` picks the lane's next read, and
 * `check(lane, n)` verifies its bytes when the driver's continuation gets the count, so checking
 * adds no step of Effect's run loop to an op (a `map` adds two in Effect 3).
 */
const laneReads = (plan: ReadPlan, qd: number) => {
  const bufs = buffers(qd, plan.size)
  const ids = new Float64Array(qd)
  return {
    bufs,
    offset: (lane: number) => plan.offset(ids[lane] = plan.next()),
    check: (lane: number, n: number) => plan.check(bufs[lane]!, n, ids[lane]!)
  }
}

/** The check of ops that verify their own result (paths, stats): a boolean already. */
const isTrue = (_lane: number, ok: boolean) => ok

/** The paths a small / stat trial cycles over. */
const pathCount = (ctx: Ctx): number =>
  ctx.workload.kind === "small" ? ctx.data.smallCount : statPaths(ctx.data).paths.length

/**
 * Path workloads are time-bounded like the others, cycling over their paths: a trial of one pass
 * lasted 0.1-0.2 s for the fastest peers, most of it spent re-optimizing what the GC before each
 * trial deoptimized (see bench/README.md, harness note), and 0.7 s for the slowest.
 */
const cycling = <Rest extends Array<unknown>, A>(count: number, op: (lane: number, path: number, ...rest: Rest) => A) =>
(lane: number, index: number, ...rest: Rest): A => op(lane, index % count, ...rest)

// ---------------------------------------------------------------------------------------------
// Drivers: batches of `qd` ops until a deadline (limit = Infinity) or until `limit` ops are done.

type Done = (ok: boolean) => void

/** Whether a trial goes on: until the deadline when time-bounded (limit = Infinity), else until `limit` ops. */
const more = (limit: number, deadline: number, issued: number, t: number) =>
  limit === Infinity ? t < deadline : issued < limit

/** Callback APIs (fs callbacks, the ring client). `issue` must complete asynchronously. */
const callbackBatchesOnly = (
  ctx: Ctx,
  qd: number,
  deadline: number,
  limit: number,
  issue: (lane: number, index: number, done: Done) => void
): Promise<{ ops: number; verified: number }> =>
  new Promise((resolve, reject) => {
    let remaining = 0
    let issued = 0
    let verified = 0
    let t0 = 0
    const done: Done = (ok) => {
      if (ok) verified++
      if (--remaining > 0) return
      const t = now()
      ctx.samples.add((t - t0) * 1000)
      if (!more(limit, deadline, issued, t)) resolve({ ops: issued, verified })
      else start()
    }
    const start = () => {
      const lanes = Math.min(qd, limit - issued)
      remaining = lanes
      t0 = now()
      try {
        for (let l = 0; l < lanes; l++) issue(l, issued++, done)
      } catch (error) {
        reject(error)
      }
    }
    start()
  })

/** Promise APIs (fs.promises). */
const promiseBatchesOnly = async (
  ctx: Ctx,
  qd: number,
  deadline: number,
  limit: number,
  op: (lane: number, index: number) => Promise<boolean>
): Promise<{ ops: number; verified: number }> => {
  let issued = 0
  let verified = 0
  const pending: Array<Promise<boolean>> = new Array(qd)
  for (;;) {
    const lanes = Math.min(qd, limit - issued)
    const t0 = now()
    pending.length = lanes
    for (let l = 0; l < lanes; l++) pending[l] = op(l, issued++)
    const results = await Promise.all(pending)
    const t = now()
    ctx.samples.add((t - t0) * 1000)
    for (const ok of results) if (ok) verified++
    if (!more(limit, deadline, issued, t)) return { ops: issued, verified }
  }
}

/** Effect APIs: each batch is `Effect.forEach(lanes, op, { concurrency: "unbounded" })`. */
const effectBatchesOnly = <A, E, R>(
  ctx: Ctx,
  qd: number,
  deadline: number,
  limit: number,
  op: (lane: number, index: number) => Effect.Effect<A, E, R>,
  check: (lane: number, result: A) => boolean
): Effect.Effect<{ ops: number; verified: number }, E, R> =>
  Effect.suspend(() => {
    let issued = 0
    let verified = 0
    const lanesOf = (n: number) => Array.from({ length: n }, (_, l) => l)
    const full = lanesOf(qd)
    let base = 0
    const one = (l: number) => Effect.map(op(l, base + l), (result) => { if (check(l, result)) verified++ })
    const batch = qd === 1
      ? Effect.suspend(() => one(0))
      : Effect.suspend(() => {
        const lanes = Math.min(qd, limit - issued)
        return Effect.forEach(lanes === qd ? full : lanesOf(lanes), one, { concurrency: "unbounded", discard: true })
      })
    const loop: Effect.Effect<{ ops: number; verified: number }, E, R> = Effect.suspend(() => {
      const t0 = now()
      base = issued
      return Effect.flatMap(batch, () => {
        issued += Math.min(qd, limit - base)
        const t = now()
        ctx.samples.add((t - t0) * 1000)
        return more(limit, deadline, issued, t) ? loop : Effect.succeed({ ops: issued, verified })
      })
    })
    return loop
  })

/** Callback APIs, closed loop: `qd` lanes, each reissuing from its completion. */
const callbackLanes = (
  ctx: Ctx,
  qd: number,
  deadline: number,
  limit: number,
  issue: (lane: number, index: number, done: Done) => void
): Promise<{ ops: number; verified: number }> =>
  new Promise((resolve, reject) => {
    let issued = 0
    let completed = 0
    let verified = 0
    let active = 0
    const t0s = new Float64Array(qd)
    const start = (l: number) => {
      t0s[l] = now()
      active++
      try {
        issue(l, issued++, dones[l]!)
      } catch (error) {
        reject(error)
      }
    }
    const dones: Array<Done> = Array.from({ length: qd }, (_, l) => (ok: boolean) => {
      const t = now()
      ctx.samples.add((t - t0s[l]!) * 1000)
      if (ok) verified++
      completed++
      active--
      if (more(limit, deadline, issued, t)) start(l)
      else if (active === 0) resolve({ ops: completed, verified })
    })
    const first = Math.min(qd, limit)
    for (let l = 0; l < first; l++) start(l)
  })

/** Promise APIs, closed loop. */
const promiseLanes = async (
  ctx: Ctx,
  qd: number,
  deadline: number,
  limit: number,
  op: (lane: number, index: number) => Promise<boolean>
): Promise<{ ops: number; verified: number }> => {
  let issued = 0
  let verified = 0
  const lane = async (l: number) => {
    // One clock read per op: an op's end is the lane's next op's start.
    let t0 = now()
    while (more(limit, deadline, issued, t0)) {
      if (await op(l, issued++)) verified++
      const t = now()
      ctx.samples.add((t - t0) * 1000)
      t0 = t
    }
  }
  await Promise.all(Array.from({ length: Math.min(qd, limit) }, (_, l) => lane(l)))
  return { ops: issued, verified }
}

/**
 * Effect APIs, closed loop: `qd` fibers forked once per trial, each looping over ops as a user's
 * loop would: the op's continuation checks its result and issues the next op, one `flatMap` per
 * op and one clock read (an op's end is the lane's next op's start).
 */
const effectLanes = <A, E, R>(
  ctx: Ctx,
  qd: number,
  deadline: number,
  limit: number,
  op: (lane: number, index: number) => Effect.Effect<A, E, R>,
  check: (lane: number, result: A) => boolean
): Effect.Effect<{ ops: number; verified: number }, E, R> =>
  Effect.suspend(() => {
    let issued = 0
    let verified = 0
    const lane = (l: number): Effect.Effect<void, E, R> => {
      let t0 = 0
      const next = (): Effect.Effect<void, E, R> => Effect.flatMap(op(l, issued++), done)
      const done = (result: A): Effect.Effect<void, E, R> => {
        const t = now()
        if (check(l, result)) verified++
        ctx.samples.add((t - t0) * 1000)
        t0 = t
        return more(limit, deadline, issued, t) ? next() : Effect.void
      }
      return Effect.suspend(() => {
        t0 = now()
        return more(limit, deadline, issued, t0) ? next() : Effect.void
      })
    }
    const lanes = Array.from({ length: Math.min(qd, limit) }, (_, l) => l)
    return Effect.map(
      Effect.forEach(lanes, lane, { concurrency: "unbounded", discard: true }),
      () => ({ ops: issued, verified })
    )
  })

const callbackBatches: typeof callbackLanes = (ctx, ...rest) =>
  ctx.model === "batch" ? callbackBatchesOnly(ctx, ...rest) : callbackLanes(ctx, ...rest)
const promiseBatches: typeof promiseLanes = (ctx, ...rest) =>
  ctx.model === "batch" ? promiseBatchesOnly(ctx, ...rest) : promiseLanes(ctx, ...rest)
/**
 * Both drivers call `op` when the lane issues its op (from inside the lane's continuation or
 * `forEach`'s callback), so an op may read its offset there and return the effect, and `check`
 * gets its result there: wrapping the op in one more `Effect.suspend`, or mapping its result,
 * would add steps of Effect's run loop per op that are not the library's cost (about 0.3 µs a
 * `suspend` here).
 */
const effectBatches = <A, E, R>(
  ctx: Ctx,
  qd: number,
  deadline: number,
  limit: number,
  op: (lane: number, index: number) => Effect.Effect<A, E, R>,
  check: (lane: number, result: A) => boolean
): Effect.Effect<{ ops: number; verified: number }, E, R> =>
  ctx.model === "batch"
    ? effectBatchesOnly(ctx, qd, deadline, limit, op, check)
    : effectLanes(ctx, qd, deadline, limit, op, check)

// ---------------------------------------------------------------------------------------------
// Node fs, synchronous.

export const fsSync: Peer = async (ctx) => {
  const w = ctx.workload
  if (w.kind === "rand" || w.kind === "seq") {
    const plan = readPlan(ctx)
    const fd = NFS.openSync(ctx.data.largePath, "r")
    const bufs = buffers(w.qd, plan.size)
    return {
      run: async (durationMs) => {
        const deadline = now() + durationMs
        let ops = 0
        let verified = 0
        const perOp = ctx.model === "lanes"
        for (;;) {
          const t0 = now()
          let ti = t0
          for (let l = 0; l < w.qd; l++) {
            const id = plan.next()
            const n = NFS.readSync(fd, bufs[l]!, 0, plan.size, plan.offset(id))
            if (plan.check(bufs[l]!, n, id)) verified++
            if (perOp) {
              const t1 = now()
              ctx.samples.add((t1 - ti) * 1000)
              ti = t1
            }
          }
          ops += w.qd
          const t = now()
          if (!perOp) ctx.samples.add((t - t0) * 1000)
          if (t >= deadline) break
        }
        return { ops, bytes: ops * plan.size, verified }
      },
      close: async () => NFS.closeSync(fd)
    }
  }
  if (w.kind === "small" || w.kind === "stat") {
    const { paths, exists } = statPaths(ctx.data)
    const count = pathCount(ctx)
    return {
      run: async (durationMs) => {
        let verified = 0
        let ops = 0
        const perOp = ctx.model === "lanes"
        for (const deadline = now() + durationMs; now() < deadline;) {
          const t0 = now()
          for (const end = ops + w.qd; ops < end; ops++) {
            const k = ops % count
            const ti = perOp ? now() : 0
            if (w.kind === "small") {
              const data = NFS.readFileSync(smallPath(ctx.data, k))
              if (checkSmall(data, data.length, k)) verified++
            } else {
              const st = NFS.statSync(paths[k]!, { throwIfNoEntry: false })
              if (exists[k] ? st?.size === SMALL_SIZE : st === undefined) verified++
            }
            if (perOp) ctx.samples.add((now() - ti) * 1000)
          }
          if (!perOp) ctx.samples.add((now() - t0) * 1000)
        }
        return { ops, bytes: w.kind === "small" ? ops * SMALL_SIZE : 0, verified }
      },
      close: async () => {}
    }
  }
  // append
  const path = `${ctx.data.appendDir}/fs-sync.dat`
  const buf = appendBuffer()
  return {
    run: async () => {
      const fd = NFS.openSync(path, "w")
      let verified = 0
      const writes = ctx.data.appendWrites
      try {
        for (let i = 0; i < writes; i += SYNC_EVERY) {
          const t0 = now()
          for (let j = i; j < i + SYNC_EVERY; j++) if (NFS.writeSync(fd, buf, 0, BLOCK, j * BLOCK) === BLOCK) verified++
          NFS.fdatasyncSync(fd)
          ctx.samples.add((now() - t0) * 1000)
        }
      } finally {
        NFS.closeSync(fd)
      }
      return { ops: writes, bytes: writes * BLOCK, verified: appended(path, writes) ? verified : 0 }
    },
    close: async () => {}
  }
}

/**
 * No library at all, for 4 KiB random reads: `fs.readSync` inside `Effect.sync`, in the same
 * fibers and loop as the `Uring` service. One syscall per read on the JavaScript thread and
 * nothing else, so it is the most a per-read Effect API can do there: the floor the service's
 * ratio to fio is measured against (README, "At 64 in flight the JavaScript thread is the limit").
 */
export const effectSyncFloor: Peer = async (ctx) => {
  const w = ctx.workload
  if (w.kind !== "rand") return undefined
  const plan = readPlan(ctx)
  const fd = NFS.openSync(ctx.data.largePath, "r")
  const reads = laneReads(plan, w.qd)
  // Checked by the driver as the service's result is: the floor of the API's shape.
  const op = (l: number) => Effect.sync(() => NFS.readSync(fd, reads.bufs[l]!, 0, plan.size, reads.offset(l)))
  return {
    run: async (durationMs) => {
      const r = await Effect.runPromise(effectBatches(ctx, w.qd, now() + durationMs, Infinity, op, reads.check))
      return { ...r, bytes: r.ops * plan.size }
    },
    close: async () => NFS.closeSync(fd)
  }
}

const appendBuffer = () => {
  const buf = new Uint8Array(BLOCK)
  buf.fill(0x61)
  return buf
}

/** The appended file has exactly the bytes written (checked after the timed part). */
const appended = (path: string, writes: number) => NFS.statSync(path).size === writes * BLOCK

// ---------------------------------------------------------------------------------------------
// Node fs, callbacks (also run with UV_USE_IO_URING=1 in its own process).

export const fsCallback: Peer = async (ctx) => {
  const w = ctx.workload
  if (w.kind === "rand" || w.kind === "seq") {
    const plan = readPlan(ctx)
    const fd = NFS.openSync(ctx.data.largePath, "r")
    const bufs = buffers(w.qd, plan.size)
    return {
      run: async (durationMs) => {
        const r = await callbackBatches(ctx, w.qd, now() + durationMs, Infinity, (l, _i, done) => {
          const id = plan.next()
          NFS.read(fd, bufs[l]!, 0, plan.size, plan.offset(id), (err, n) => done(err === null && plan.check(bufs[l]!, n, id)))
        })
        return { ...r, bytes: r.ops * plan.size }
      },
      close: async () => NFS.closeSync(fd)
    }
  }
  if (w.kind === "small" || w.kind === "stat") {
    const { paths, exists } = statPaths(ctx.data)
    const count = pathCount(ctx)
    return {
      run: async (durationMs) => {
        const r = await callbackBatches(ctx, w.qd, now() + durationMs, Infinity, cycling(count, (_l, k, done) => {
          if (w.kind === "small") NFS.readFile(smallPath(ctx.data, k), (err, data) => done(err === null && checkSmall(data, data.length, k)))
          else {
            NFS.stat(paths[k]!, (err, st) =>
              done(exists[k] ? err === null && st.size === SMALL_SIZE : err?.code === "ENOENT"))
          }
        }))
        return { ...r, bytes: w.kind === "small" ? r.ops * SMALL_SIZE : 0 }
      },
      close: async () => {}
    }
  }
  const path = `${ctx.data.appendDir}/fs-callback-${process.pid}.dat`
  const buf = appendBuffer()
  return {
    run: async () => {
      const fd = NFS.openSync(path, "w")
      const writes = ctx.data.appendWrites
      let verified = 0
      await new Promise<void>((resolve, reject) => {
        let j = 0
        let t0 = now()
        const step = () => {
          if (j >= writes) return resolve()
          if (j % SYNC_EVERY === 0) t0 = now()
          NFS.write(fd, buf, 0, BLOCK, j * BLOCK, (err, n) => {
            if (err) return reject(err)
            if (n === BLOCK) verified++
            j++
            if (j % SYNC_EVERY !== 0) return step()
            NFS.fdatasync(fd, (err2) => {
              if (err2) return reject(err2)
              ctx.samples.add((now() - t0) * 1000)
              step()
            })
          })
        }
        step()
      })
      NFS.closeSync(fd)
      return { ops: writes, bytes: writes * BLOCK, verified: appended(path, writes) ? verified : 0 }
    },
    close: async () => {}
  }
}

// ---------------------------------------------------------------------------------------------
// Node fs.promises (FileHandle.read, readFile, stat, FileHandle.write + datasync).

export const fsPromises: Peer = async (ctx) => {
  const w = ctx.workload
  if (w.kind === "rand" || w.kind === "seq") {
    const plan = readPlan(ctx)
    const fh = await FSP.open(ctx.data.largePath, "r")
    const bufs = buffers(w.qd, plan.size)
    return {
      run: async (durationMs) => {
        const r = await promiseBatches(ctx, w.qd, now() + durationMs, Infinity, async (l) => {
          const id = plan.next()
          const { bytesRead } = await fh.read(bufs[l]!, 0, plan.size, plan.offset(id))
          return plan.check(bufs[l]!, bytesRead, id)
        })
        return { ...r, bytes: r.ops * plan.size }
      },
      close: () => fh.close()
    }
  }
  if (w.kind === "small" || w.kind === "stat") {
    const { paths, exists } = statPaths(ctx.data)
    const count = pathCount(ctx)
    return {
      run: async (durationMs) => {
        const r = await promiseBatches(ctx, w.qd, now() + durationMs, Infinity, cycling(count, async (_l, k) => {
          if (w.kind === "small") {
            const data = await FSP.readFile(smallPath(ctx.data, k))
            return checkSmall(data, data.length, k)
          }
          try {
            const st = await FSP.stat(paths[k]!)
            return exists[k] === 1 && st.size === SMALL_SIZE
          } catch (error) {
            return exists[k] === 0 && (error as NodeJS.ErrnoException).code === "ENOENT"
          }
        }))
        return { ...r, bytes: w.kind === "small" ? r.ops * SMALL_SIZE : 0 }
      },
      close: async () => {}
    }
  }
  const path = `${ctx.data.appendDir}/fs-promises.dat`
  const buf = appendBuffer()
  return {
    run: async () => {
      const fh = await FSP.open(path, "w")
      const writes = ctx.data.appendWrites
      let verified = 0
      try {
        for (let i = 0; i < writes; i += SYNC_EVERY) {
          const t0 = now()
          for (let j = i; j < i + SYNC_EVERY; j++) {
            if ((await fh.write(buf, 0, BLOCK, j * BLOCK)).bytesWritten === BLOCK) verified++
          }
          await fh.datasync()
          ctx.samples.add((now() - t0) * 1000)
        }
      } finally {
        await fh.close()
      }
      return { ops: writes, bytes: writes * BLOCK, verified: appended(path, writes) ? verified : 0 }
    },
    close: async () => {}
  }
}

// ---------------------------------------------------------------------------------------------
// @effect/platform FileSystem: NodeFileSystem, and UringFileSystem when it exists. One File
// handle; a random read is seek + read under one permit, since both move the handle's position.

export const platformFileSystem = (
  layer: Layer.Layer<FileSystem.FileSystem, unknown, never>,
  /** Use the UringFile's positional `readAt` (no cursor, no lock); read workloads only. */
  positional = false
): Peer => async (ctx) => {
  if (positional && ctx.workload.kind !== "rand" && ctx.workload.kind !== "seq") return undefined
  const runtime = ManagedRuntime.make(layer)
  const scope = await runtime.runPromise(Scope.make())
  const fs = await runtime.runPromise(FileSystem.FileSystem)
  const close = async () => {
    await runtime.runPromise(Scope.close(scope, Exit.void))
    await runtime.dispose()
  }
  const w = ctx.workload
  if (w.kind === "rand" || w.kind === "seq") {
    const plan = readPlan(ctx)
    const file = await runtime.runPromise(Scope.extend(fs.open(ctx.data.largePath, { flag: "r" }), scope))
    const lock = Effect.unsafeMakeSemaphore(1)
    const reads = laneReads(plan, w.qd)
    const uringFile = file as { readAt?: (b: Uint8Array, o: number) => Effect.Effect<bigint, unknown> }
    if (positional && uringFile.readAt === undefined) throw new Error("this File has no readAt")
    const op = (l: number): Effect.Effect<bigint, unknown> =>
      positional
        ? uringFile.readAt!(reads.bufs[l]!, reads.offset(l))
        : lock.withPermits(1)(Effect.zipRight(file.seek(reads.offset(l), "start"), file.read(reads.bufs[l]!)))
    const check = (l: number, n: bigint) => reads.check(l, Number(n))
    return {
      run: async (durationMs) => {
        const r = await runtime.runPromise(effectBatches(ctx, w.qd, now() + durationMs, Infinity, op, check))
        return { ...r, bytes: r.ops * plan.size }
      },
      close
    }
  }
  if (w.kind === "small" || w.kind === "stat") {
    const { paths, exists } = statPaths(ctx.data)
    const count = pathCount(ctx)
    const op = (_l: number, k: number): Effect.Effect<boolean> =>
      w.kind === "small"
        ? fs.readFile(smallPath(ctx.data, k)).pipe(
          Effect.map((data) => checkSmall(data, data.length, k)),
          Effect.orElseSucceed(() => false)
        )
        : fs.stat(paths[k]!).pipe(
          Effect.match({
            onSuccess: (info) => exists[k] === 1 && Number(info.size) === SMALL_SIZE,
            onFailure: (e) => exists[k] === 0 && e._tag === "SystemError" && e.reason === "NotFound"
          })
        )
    return {
      run: async (durationMs) => {
        const r = await runtime.runPromise(effectBatches(ctx, w.qd, now() + durationMs, Infinity, cycling(count, op), isTrue))
        return { ...r, bytes: w.kind === "small" ? r.ops * SMALL_SIZE : 0 }
      },
      close
    }
  }
  const path = `${ctx.data.appendDir}/platform-${process.pid}.dat`
  const buf = appendBuffer()
  return {
    run: async () => {
      const writes = ctx.data.appendWrites
      const verified = await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
        const file = yield* fs.open(path, { flag: "w" })
        let ok = 0
        for (let i = 0; i < writes; i += SYNC_EVERY) {
          const t0 = now()
          for (let j = 0; j < SYNC_EVERY; j++) if ((yield* file.write(buf)) === BigInt(BLOCK)) ok++
          // The platform File has no datasync; `sync` is fsync.
          yield* file.sync
          ctx.samples.add((now() - t0) * 1000)
        }
        return ok
      })))
      return { ops: writes, bytes: writes * BLOCK, verified: appended(path, writes) ? verified : 0 }
    },
    close
  }
}

// ---------------------------------------------------------------------------------------------
// This library: the Effect `Uring` service.

/**
 * The service's batch entry point: one fiber reads `qd` random ranges per `readBatch` call (one
 * crossing into native code per batch), then the next batch. Random reads only; latency per batch.
 */
export const uringEffectBatch: Peer = async (ctx) => {
  const w = ctx.workload
  if (w.kind !== "rand" || w.qd < 2) return undefined
  const runtime = ManagedRuntime.make(Uring.layer())
  const uring = await runtime.runPromise(Uring)
  const scope = await runtime.runPromise(Scope.make())
  const file = await runtime.runPromise(
    Scope.extend(Effect.flatMap(uring.open(ctx.data.largePath), (fd) => uring.register(fd)), scope)
  )
  const plan = readPlan(ctx)
  const ids = new Array<number>(w.qd)
  const ranges = Array.from({ length: w.qd }, () => ({ offset: 0, length: BLOCK }))
  // One buffer reused by every batch, as a caller reading many batches would.
  const into = { buffer: new Uint8Array(w.qd * BLOCK) }
  const batch = Effect.suspend(() => {
    for (let i = 0; i < w.qd; i++) {
      ids[i] = plan.next()
      ranges[i]!.offset = plan.offset(ids[i]!)
    }
    return Effect.map(uring.readBatch(file, ranges, into), (chunks) => {
      let ok = 0
      for (let i = 0; i < w.qd; i++) if (plan.check(chunks[i]!, chunks[i]!.length, ids[i]!)) ok++
      return ok
    })
  })
  return {
    run: async (durationMs) => {
      const deadline = now() + durationMs
      const r = await runtime.runPromise(Effect.gen(function*() {
        let ops = 0
        let verified = 0
        for (;;) {
          const t0 = now()
          verified += yield* batch
          ops += w.qd
          const t = now()
          ctx.samples.add((t - t0) * 1000)
          if (t >= deadline) return { ops, verified }
        }
      }))
      return { ...r, bytes: r.ops * BLOCK }
    },
    close: async () => {
      await runtime.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    }
  }
}

export const uringEffect: Peer = (ctx) => uringEffectWith({}, ctx)

/** The service with reads through the ring only (no page-cache reads on the calling thread): reads only. */
export const uringEffectRing: Peer = async (ctx) =>
  ctx.workload.kind === "rand" || ctx.workload.kind === "seq" ? uringEffectWith({ cachedReads: false }, ctx) : undefined

const uringEffectWith = async (config: UringConfigInput, ctx: Ctx): Promise<Session | undefined> => {
  const runtime = ManagedRuntime.make(Uring.layer(config))
  const uring = await runtime.runPromise(Uring)
  const scope = await runtime.runPromise(Scope.make())
  const close = async () => {
    await runtime.runPromise(Scope.close(scope, Exit.void))
    await runtime.dispose()
  }
  const w = ctx.workload
  if (w.kind === "rand" || w.kind === "seq") {
    const plan = readPlan(ctx)
    const file = await runtime.runPromise(
      Scope.extend(Effect.flatMap(uring.open(ctx.data.largePath), (fd) => uring.register(fd)), scope)
    )
    const reads = laneReads(plan, w.qd)
    const op = (l: number) => uring.readInto(file, reads.offset(l), reads.bufs[l]!)
    return {
      run: async (durationMs) => {
        const r = await runtime.runPromise(effectBatches(ctx, w.qd, now() + durationMs, Infinity, op, reads.check))
        return { ...r, bytes: r.ops * plan.size }
      },
      close
    }
  }
  if (w.kind === "small" || w.kind === "stat") {
    const { paths, exists } = statPaths(ctx.data)
    const count = pathCount(ctx)
    // The whole-file op: open, read and close run inside the engine as one op.
    const readAll = (k: number) =>
      Effect.map(uring.readFile(smallPath(ctx.data, k)), (data) => checkSmall(data, data.length, k))
    const op = (_l: number, k: number): Effect.Effect<boolean> =>
      w.kind === "small"
        ? Effect.orElseSucceed(readAll(k), () => false)
        : uring.stat(paths[k]!).pipe(
          Effect.match({
            onSuccess: (meta) => exists[k] === 1 && meta.size === BigInt(SMALL_SIZE),
            onFailure: (e) => exists[k] === 0 && e._tag === "NotFound"
          })
        )
    return {
      run: async (durationMs) => {
        const r = await runtime.runPromise(effectBatches(ctx, w.qd, now() + durationMs, Infinity, cycling(count, op), isTrue))
        return { ...r, bytes: w.kind === "small" ? r.ops * SMALL_SIZE : 0 }
      },
      close
    }
  }
  const path = `${ctx.data.appendDir}/uring-effect.dat`
  const buf = appendBuffer()
  return {
    run: async () => {
      const writes = ctx.data.appendWrites
      const verified = await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
        const file = yield* Effect.flatMap(uring.open(path, { flag: "w" }), (fd) => uring.register(fd))
        let ok = 0
        for (let i = 0; i < writes; i += SYNC_EVERY) {
          const t0 = now()
          for (let j = i; j < i + SYNC_EVERY; j++) if ((yield* uring.write(file, j * BLOCK, buf)) === BLOCK) ok++
          yield* uring.fdatasync(file)
          ctx.samples.add((now() - t0) * 1000)
        }
        return ok
      })))
      return { ops: writes, bytes: writes * BLOCK, verified: appended(path, writes) ? verified : 0 }
    },
    close
  }
}

// ---------------------------------------------------------------------------------------------
// This library without Effect: the internal RingClient, callbacks straight from the batch.

const AT_FDCWD = -100
const O_CLOEXEC = 0o2000000
const ENOENT = 2

const clientCall = (client: RingClient, start: (id: number) => number, keep?: unknown): Promise<number> =>
  new Promise((resolve, reject) => {
    client.submit((_native, id) => start(id), (res) => (res >= 0 ? resolve(res) : reject(new Error(`errno ${-res}`))), keep)
  })

export const uringClient: Peer = async (ctx) => {
  const client = new RingClient({ entries: 16384, registeredFiles: 4096 })
  const n = client.native
  const close = async () => {
    client.shutdown()
  }
  const w = ctx.workload
  if (w.kind === "rand" || w.kind === "seq") {
    const plan = readPlan(ctx)
    const fd = NFS.openSync(ctx.data.largePath, "r")
    const slot = await clientCall(client, (id) => n.registerFile(id, fd))
    const bufs = buffers(w.qd, plan.size)
    return {
      run: async (durationMs) => {
        const r = await callbackBatches(ctx, w.qd, now() + durationMs, Infinity, (l, _i, done) => {
          const id = plan.next()
          const buf = bufs[l]!
          client.submit(
            (native, op) => native.read(op, slot, true, buf, plan.offset(id), false),
            (res) => done(plan.check(buf, res, id)),
            buf
          )
        })
        return { ...r, bytes: r.ops * plan.size }
      },
      close: async () => {
        await clientCall(client, (id) => n.unregisterFile(id, slot))
        NFS.closeSync(fd)
        client.shutdown()
      }
    }
  }
  if (w.kind === "small" || w.kind === "stat") {
    const { paths, exists } = statPaths(ctx.data)
    const count = pathCount(ctx)
    const bufs = buffers(w.qd, SMALL_CHUNK)
    const outs = buffers(w.qd, 256)
    return {
      run: async (durationMs) => {
        const r = await callbackBatches(ctx, w.qd, now() + durationMs, Infinity, cycling(count, (l, k, done) => {
          if (w.kind === "stat") {
            const out = outs[l]!
            client.submit(
              (native, op) => native.statx(op, AT_FDCWD, paths[k]!, 0, STATX_ALL_MASK, out),
              (res) =>
                done(exists[k] ? res === 0 && readU32(out, 40) === SMALL_SIZE && readU32(out, 44) === 0 : res === -ENOENT),
              out
            )
            return
          }
          const buf = bufs[l]!
          client.submit((native, op) => native.openat(op, AT_FDCWD, smallPath(ctx.data, k), O_CLOEXEC, 0), (fd) => {
            if (fd < 0) return done(false)
            let total = 0
            const readMore = () =>
              client.submit((native, op) => native.read(op, fd, false, buf, total, false), (got) => {
                // Only the first chunk is kept for checking; files here are one short read long.
                const ok = got >= 0
                if (ok) total += got
                if (ok && got === SMALL_CHUNK) {
                  readMore()
                  return
                }
                const valid = ok && checkSmall(buf, total, k)
                client.submit((native, op) => native.close(op, fd), (closed) => done(valid && closed === 0))
              }, buf)
            readMore()
          })
        }))
        return { ...r, bytes: w.kind === "small" ? r.ops * SMALL_SIZE : 0 }
      },
      close
    }
  }
  const path = `${ctx.data.appendDir}/uring-client.dat`
  const buf = appendBuffer()
  return {
    run: async () => {
      const fd = NFS.openSync(path, "w")
      const writes = ctx.data.appendWrites
      let verified = 0
      await new Promise<void>((resolve, reject) => {
        let j = 0
        let t0 = now()
        const step = () => {
          if (j >= writes) return resolve()
          if (j % SYNC_EVERY === 0) t0 = now()
          client.submit((native, op) => native.write(op, fd, false, buf, j * BLOCK, false), (res) => {
            if (res < 0) return reject(new Error(`write errno ${-res}`))
            if (res === BLOCK) verified++
            j++
            if (j % SYNC_EVERY !== 0) return step()
            client.submit((native, op) => native.fsync(op, fd, false, true), (res2) => {
              if (res2 < 0) return reject(new Error(`fdatasync errno ${-res2}`))
              ctx.samples.add((now() - t0) * 1000)
              step()
            })
          }, buf)
        }
        step()
      })
      NFS.closeSync(fd)
      return { ops: writes, bytes: writes * BLOCK, verified: appended(path, writes) ? verified : 0 }
    },
    close
  }
}

