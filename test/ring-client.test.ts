/**
 * The internal ring client straight over the binding: each operation once, completions in
 * batches, the process-lifetime rules and worker threads.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Worker } from "node:worker_threads"
import { AtFlags, OpenFlags, RenameFlags } from "../src/index.js"
import type { NativeRing, NativeRingOptions } from "../src/internal/native.js"
import { load } from "../src/internal/native.js"
import {
  CACHED_FILE_COST,
  CACHED_PER_TURN,
  DELIVERED_PER_TURN,
  NOW_BYTES_PER_TURN,
  NOW_PER_TURN,
  RingClient,
  WAITED_BYTES_PER_TURN,
  WAITED_PER_TURN
} from "../src/internal/RingClient.js"
import { cacheRange, mkfifo } from "./helpers/fixtures.js"

const run = (client: RingClient, start: (native: NativeRing, id: number) => number, keep?: unknown) =>
  new Promise<number>((resolve) => client.submit(start, resolve, keep))

const CWD = AtFlags.AT_FDCWD

/**
 * Runs `body` while errors the client rethrows apart (in a microtask of their own) that `mine`
 * recognizes are collected instead of reaching the process; every other microtask runs as it would.
 */
const collectingRethrown = async (mine: (error: Error) => boolean, body: () => Promise<unknown>): Promise<Array<Error>> => {
  const reported: Array<Error> = []
  const original = globalThis.queueMicrotask
  globalThis.queueMicrotask = (f) =>
    original(() => {
      try {
        f()
      } catch (error) {
        if (!(error instanceof Error && mine(error))) throw error
        reported.push(error)
      }
    })
  try {
    await body()
  } finally {
    globalThis.queueMicrotask = original
  }
  return reported
}

/**
 * Runs `body` on a new client with `/proc/self/exe` open for reading; the ring is shut down and the
 * fd closed however `body` ends. Returns the (shut down) client.
 */
const withExe = async (options: NativeRingOptions, body: (client: RingClient, fd: number) => Promise<void> | void) => {
  const client = new RingClient(options)
  const fd = Fs.openSync("/proc/self/exe", "r")
  try {
    await body(client, fd)
  } finally {
    client.shutdown()
    Fs.closeSync(fd)
  }
  return client
}

describe("RingClient over the binding", () => {
  it("runs each operation once", async () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ring-client-"))
    const at = (name: string) => Path.join(dir, name)
    const client = new RingClient({ entries: 32, registeredFiles: 8 })
    try {
      expect(client.native.entries).toBe(32)
      expect(client.native.registeredCapacity).toBe(8)
      const fd = await run(client, (n, id) => n.openat(id, CWD, at("f"), OpenFlags.O_CREAT | OpenFlags.O_RDWR | OpenFlags.O_CLOEXEC, 0o644))
      expect(fd).toBeGreaterThan(2)
      const data = new TextEncoder().encode("ring client")
      expect(await run(client, (n, id) => n.write(id, fd, false, data, 0, false), data)).toBe(11)
      expect(await run(client, (n, id) => n.write(id, fd, false, data, 11, true), data)).toBe(11)
      const buffer = new Uint8Array(22)
      expect(await run(client, (n, id) => n.read(id, fd, false, buffer, 0, true), buffer)).toBe(22)
      expect(new TextDecoder().decode(buffer)).toBe("ring clientring client")
      expect(await run(client, (n, id) => n.fsync(id, fd, false, false))).toBe(0)
      expect(await run(client, (n, id) => n.fsync(id, fd, false, true))).toBe(0)
      expect(await run(client, (n, id) => n.fallocate(id, fd, false, 0, 4096, 0))).toBe(0)
      expect(await run(client, (n, id) => n.fadvise(id, fd, false, 0, 0, 2))).toBe(0)
      expect(await run(client, (n, id) => n.ftruncate(id, fd, false, 5))).toBe(0)
      expect(Fs.statSync(at("f")).size).toBe(5)
      const statx = new Uint8Array(256)
      expect(await run(client, (n, id) => n.fstat(id, fd, false, 0xfff, statx), statx)).toBe(0)
      expect(new DataView(statx.buffer).getBigUint64(40, true)).toBe(5n)
      expect(await run(client, (n, id) => n.statx(id, CWD, at("f"), 0, 0xfff, statx), statx)).toBe(0)
      expect(new DataView(statx.buffer).getBigUint64(32, true)).toBe(BigInt(Fs.statSync(at("f")).ino))
      const slot = await run(client, (n, id) => n.registerFile(id, fd))
      expect(slot).toBe(0)
      expect(client.native.registeredInUse).toBe(1)
      expect(await run(client, (n, id) => n.read(id, slot, true, buffer, 0, false), buffer)).toBe(5)
      expect(await run(client, (n, id) => n.unregisterFile(id, slot))).toBe(0)
      expect(client.native.registeredInUse).toBe(0)
      expect(await run(client, (n, id) => n.close(id, fd))).toBe(0)
      expect(await run(client, (n, id) => n.mkdirat(id, CWD, at("d"), 0o755))).toBe(0)
      expect(await run(client, (n, id) => n.renameat(id, CWD, at("f"), CWD, at("d/g"), RenameFlags.RENAME_NOREPLACE))).toBe(0)
      expect(await run(client, (n, id) => n.symlinkat(id, "g", CWD, at("d/s")))).toBe(0)
      expect(await run(client, (n, id) => n.linkat(id, CWD, at("d/g"), CWD, at("d/h"), 0))).toBe(0)
      expect(await run(client, (n, id) => n.unlinkat(id, CWD, at("d/h"), 0))).toBe(0)
      const dirFd = await run(client, (n, id) => n.openat2(id, CWD, at("d"), OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC, 0, 0))
      expect(await run(client, (n, id) => n.openat2(id, dirFd, "../d/g", OpenFlags.O_CLOEXEC, 0, 8 /* RESOLVE_BENEATH */))).toBe(-18)
      expect(await run(client, (n, id) => n.close(id, dirFd))).toBe(0)
      expect(await run(client, (n, id) => n.unlinkat(id, CWD, at("d"), AtFlags.AT_REMOVEDIR))).toBe(-39)
      expect(await run(client, (n, id) => n.openat(id, CWD, at("missing"), 0, 0))).toBe(-2)
      expect(client.pending).toBe(0)
    } finally {
      client.shutdown()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("delivers completions in batches and refuses bad input synchronously", async () => {
    const client = await withExe({ entries: 16 }, async (client, fd) => {
      const buffers = Array.from({ length: 5000 }, () => new Uint8Array(64))
      const batchesBefore = client.batches
      const results = await Promise.all(buffers.map((b, i) => run(client, (n, id) => n.read(id, fd, false, b, i * 64, false), b)))
      expect(results.every((r) => r === 64)).toBe(true)
      // One crossing into JS carries many completions. Each batch carries at least one, and ops reach the
      // kernel 16 to a flush: as many batches as ops would take every completion reaped alone.
      expect(client.batches - batchesBefore).toBeLessThan(5000)
      const whole = Fs.readFileSync("/proc/self/exe")
      expect(Buffer.compare(buffers[10]!, whole.subarray(640, 704))).toBe(0)
      expect(() => client.submit((n, id) => n.read(id, -1, false, new Uint8Array(1), 0, false), () => {})).toThrow(/ERR_URING_INVALID_ARGUMENT/)
      expect(() => client.submit((n, id) => n.read(id, fd, false, new Uint8Array(1), -1, false), () => {})).toThrow(/ERR_URING_INVALID_ARGUMENT/)
      expect(() => client.submit((n, id) => n.statx(id, CWD, "a\0b", 0, 0, new Uint8Array(256)), () => {})).toThrow(/NUL/)
      expect(() => client.submit((n, id) => n.statx(id, CWD, "/", 0, 0, new Uint8Array(16)), () => {})).toThrow(/statx output/)
      expect(() => client.submit((n, id) => n.read(id, 5, true, new Uint8Array(1), 0, false), () => {})).toThrow(/not registered/)
      expect(() => client.submit((n, id) => (n.read as Function)(id, fd, false, "not bytes", 0, false), () => {})).toThrow(/Uint8Array/)
      // N-API's own int32 conversion would make 2^32 + fd the fd itself, and NaN fd 0.
      for (const bad of [2 ** 32 + fd, Number.NaN, Infinity, 1.5, "3"]) {
        expect(() => client.submit((n, id) => n.read(id, bad as number, false, new Uint8Array(1), 0, false), () => {})).toThrow(/ERR_URING_INVALID_ARGUMENT/)
        expect(() => client.submit((n, id) => n.openat(id, CWD, "/", bad as number, 0), () => {})).toThrow(/ERR_URING_INVALID_ARGUMENT/)
      }
      expect(() => client.submit((n, id) => n.mkdirat(id, CWD, "/tmp/never", 2 ** 32 + 0o700), () => {})).toThrow(/ERR_URING_INVALID_ARGUMENT/)
      const group = (ranges: Array<number>, results: number) => () =>
        client.submit((n, id) => n.readMany(id, fd, false, new Uint8Array(10), Float64Array.from(ranges), new Int32Array(results), false), () => {})
      expect(group([0, 8, 0, 8], 2)).toThrow(/longer than the buffer/)
      expect(group([0], 1)).toThrow(/an offset and a length per range/)
      expect(group([0, 8], 2)).toThrow(/a result slot per range/)
      // The engine writes result slots and readFile's kept fd itself: memory that could shrink or
      // be shared under it is refused (the kernel would only fault with EFAULT).
      const Resizable = ArrayBuffer as unknown as new(n: number, o: { maxByteLength: number }) => ArrayBuffer
      for (const backing of [new Resizable(64, { maxByteLength: 128 }), new SharedArrayBuffer(64) as unknown as ArrayBuffer]) {
        expect(() => client.submit((n, id) => n.readMany(id, fd, false, new Uint8Array(8), Float64Array.of(0, 8), new Int32Array(backing, 0, 1), false), () => {}))
          .toThrow(/ERR_URING_INVALID_ARGUMENT.*engine writes/)
        expect(() => client.submit((n, id) => n.readFile(id, CWD, "/proc/self/exe", new Uint8Array(backing)), () => {}))
          .toThrow(/ERR_URING_INVALID_ARGUMENT.*engine writes/)
      }
      expect(client.pending).toBe(0)
    })
    expect(() => client.submit((n, id) => n.close(id, 100), () => {})).toThrow(/ERR_URING_CLOSED/)
  })

  /** Reads 64 bytes over and over from each callback until `stop(ops)` says so; resolves with the count. */
  const readLoop = (client: RingClient, fd: number, lanes: number, stop: (ops: number) => boolean) =>
    new Promise<{ ops: number; wrong: number }>((resolve) => {
      const whole = Fs.readFileSync("/proc/self/exe").subarray(0, 64 * 64)
      let ops = 0
      let wrong = 0
      let active = lanes
      const lane = (buffer: Uint8Array, at: number) =>
        client.submit((n, id) => n.read(id, fd, false, buffer, at * 64, false), (result) => {
          ops++
          if (result !== 64 || Buffer.compare(buffer, whole.subarray(at * 64, at * 64 + 64)) !== 0) wrong++
          if (stop(ops)) {
            if (--active === 0) resolve({ ops, wrong })
          } else {
            lane(buffer, (at + 1) % 64)
          }
        }, buffer)
      for (let l = 0; l < lanes; l++) lane(new Uint8Array(64), l % 64)
    })

  it("completes cached reads on the JS thread, and callbacks that always resubmit still let timers run", async () => {
    await withExe({ entries: 64 }, async (client, fd) => {
      let fired = false
      setTimeout(() => fired = true, 20)
      const batchesBefore = client.batches
      // Completions run as an endless chain of microtasks would keep the timer from ever firing.
      const { ops, wrong } = await readLoop(client, fd, 4, (ops) => (fired && ops >= 2000) || ops >= 500_000)
      expect(fired).toBe(true)
      expect(wrong).toBe(0)
      // Inline completions do not come through `onComplete` (and those that do come in batches):
      // how many do depends on when the submission thread is idle, so only fewer batches than ops is sure.
      expect(client.batches - batchesBefore).toBeLessThan(ops)
      expect(client.pending).toBe(0)
    })
  })

  /** Calls `submitNow` and reports whether its callback ran before it returned. */
  const submitNow = (client: RingClient, start: (native: NativeRing, id: number) => number, keep: Uint8Array) => {
    let early: number | undefined
    let late: (result: number) => void = () => {}
    const result = new Promise<number>((resolve) => late = resolve)
    client.submitNow(start, (r) => {
      early = r
      late(r)
    }, keep, keep.byteLength)
    return { now: early !== undefined, result }
  }

  const nextTurn = () => new Promise((resolve) => setImmediate(resolve))
  /** Until when a test waits for the ring's threads, which a loaded machine may not run for a while. */
  const patience = () => Date.now() + 10_000
  /**
   * Waits, turn by turn, for the ring's submission thread to be idle (only then does the JS thread
   * submit, and only then are queued ops left for the turn's flush): until a cached read of `fd`
   * submitted now completes on the spot. Whether it did, by the deadline.
   */
  const untilIdle = async (client: RingClient, fd: number): Promise<boolean> => {
    for (const deadline = patience(); Date.now() < deadline; await nextTurn()) {
      const probe = new Uint8Array(8)
      if (submitNow(client, (n, id) => n.read(id, fd, false, probe, 0, false), probe).now) return true
    }
    return false
  }

  it("submitNow completes a cached read before it returns, within a budget per turn of the event loop", async () => {
    await withExe({ entries: 64 }, async (client, fd) => {
      const whole = Fs.readFileSync("/proc/self/exe")
      const readAt = (buffer: Uint8Array, at: number) => (n: NativeRing, id: number) => n.read(id, fd, false, buffer, at, false)
      // The ring's submission thread must be idle for the JS thread to submit.
      expect(await untilIdle(client, fd)).toBe(true)
      const buffers = Array.from({ length: NOW_PER_TURN + 20 }, () => new Uint8Array(64))
      const ops = buffers.map((buffer, i) => submitNow(client, readAt(buffer, i * 64), buffer))
      const early = ops.filter((op) => op.now).length
      expect(early).toBeGreaterThan(0)
      expect(early).toBeLessThanOrEqual(NOW_PER_TURN - 1)
      // Past the budget, completions wait for the turn's flush.
      expect(ops.slice(NOW_PER_TURN - 1).some((op) => op.now)).toBe(false)
      expect(await Promise.all(ops.map((op) => op.result))).toEqual(buffers.map(() => 64))
      buffers.forEach((buffer, i) => expect(Buffer.compare(buffer, whole.subarray(i * 64, i * 64 + 64))).toBe(0))
      // A turn that spends its whole budget on ops completed at once still renews it for the next. Both turns
      // need an idle submission thread, so the pair is retried until they get one; a budget never renewed
      // fails every try.
      let renewed = false
      for (const deadline = patience(); !renewed && Date.now() < deadline;) {
        await nextTurn()
        const spent = Array.from({ length: NOW_PER_TURN }, (_, i) => submitNow(client, readAt(new Uint8Array(8), i * 8), new Uint8Array(8)))
        await Promise.all(spent.map((op) => op.result))
        if (!spent.every((op) => op.now)) continue
        await nextTurn()
        const probe = submitNow(client, readAt(new Uint8Array(8), 0), new Uint8Array(8))
        renewed = probe.now
        await probe.result
      }
      expect(renewed).toBe(true)
      // A new turn has a new budget, but never more bytes than it allows.
      await nextTurn()
      const big = new Uint8Array(NOW_BYTES_PER_TURN + 1)
      const large = submitNow(client, readAt(big, 0), big)
      expect(large.now).toBe(false)
      expect(await large.result).toBe(Math.min(big.length, whole.length))
      expect(client.pending).toBe(0)
    })
  })

  it("readFileCached reads whole cached files on this thread, each counted as several cached reads", async () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ring-client-"))
    const client = new RingClient({ entries: 16 })
    try {
      const path = Path.join(dir, "f")
      const text = "a small cached file"
      Fs.writeFileSync(path, text)
      Fs.readFileSync(path)
      await nextTurn()
      const buffer = new Uint8Array(4096 + 4)
      const kept = () => Buffer.from(buffer.buffer, 4096, 4).readInt32LE()
      const results = Array.from({ length: CACHED_PER_TURN / CACHED_FILE_COST + 2 }, () => {
        buffer.fill(0)
        const read = client.readFileCached(AtFlags.AT_FDCWD, path, buffer)
        return read === undefined ? undefined : { read, kept: kept(), text: Buffer.from(buffer.subarray(0, Math.max(read, 0))).toString() }
      })
      const files = CACHED_PER_TURN / CACHED_FILE_COST
      expect(results.slice(0, files).every((r) => r?.read === text.length && r.kept === -1 && r.text === text)).toBe(true)
      // Past the budget nothing is opened until the event loop turns; no op went to the ring.
      expect(results.slice(files)).toEqual([undefined, undefined])
      expect(client.pending).toBe(0)
      await nextTurn()
      expect(client.readFileCached(AtFlags.AT_FDCWD, path, buffer)).toBe(text.length)
    } finally {
      client.shutdown()
      Fs.rmSync(dir, { recursive: true })
    }
  })

  it("statCached shares that budget; work waiting for the next turn runs first there, in order, once the budget is renewed", async () => {
    await withExe({ entries: 16 }, async (client, fd) => {
      // A submission thread still awake (just started, on a loaded machine) would take the op
      // below before the turn's flush does.
      expect(await untilIdle(client, fd)).toBe(true)
      const out = new Uint8Array(256)
      const stats = Array.from({ length: CACHED_PER_TURN / CACHED_FILE_COST + 1 }, () =>
        client.statCached(CWD, "/proc/self/exe", 0, 0xfff, out))
      // The executable is on ext4, XFS, Btrfs or tmpfs here, or the ring's (-EAGAIN).
      expect(stats.slice(0, -1).every((r) => r === 0 || r === -11)).toBe(true)
      expect(stats.at(-1)).toBeUndefined()
      const order: Array<string> = []
      const reported = await collectingRethrown((error) => error.message === "a waiting caller's bug", async () => {
        // Renewed budget: an answer (0, or -EAGAIN off the file systems it trusts), not undefined.
        client.nextTurn(() => order.push(`first ${client.statCached(CWD, "/", 0, 0xfff, out) !== undefined}`) > 0)
        client.nextTurn(() => {
          throw new Error("a waiting caller's bug")
        })
        // Finds the budget spent in its first turn: it and all behind it wait for the turn after.
        let tries = 0
        client.nextTurn(() => {
          order.push(`try ${++tries}`)
          return tries > 1
        })
        client.nextTurn(() => order.push("last") > 0)
        // Queued now and flushed by that turn after the waiting work (its completion may come later).
        const done = run(client, (n, id) => n.statx(id, CWD, "/", 0, 0xfff, new Uint8Array(256))).then(() => order.push("op"))
        await done
        await nextTurn()
      })
      expect(reported).toHaveLength(1)
      expect(order.filter((step) => step !== "op")).toEqual(["first true", "try 1", "try 2", "last"])
      expect(order.indexOf("op")).toBeGreaterThan(1)
    })
  })

  it("readCached reads what the page cache holds on this thread, within the turn's budget", async () => {
    await withExe({ entries: 16 }, async (client, fd) => {
      const whole = Fs.readFileSync("/proc/self/exe")
      const reads = Array.from({ length: CACHED_PER_TURN + 8 }, (_, i) => {
        const buffer = new Uint8Array(64)
        return { buffer, at: i * 64, result: client.readCached(fd, buffer, i * 64) }
      })
      for (const { at, buffer, result } of reads.slice(0, CACHED_PER_TURN)) {
        expect(result).toBe(64)
        expect(Buffer.compare(buffer, whole.subarray(at, at + 64))).toBe(0)
      }
      // Past the budget nothing is read until the event loop turns; no op went to the ring.
      expect(reads.slice(CACHED_PER_TURN).map((read) => read.result)).toEqual(Array(8).fill(undefined))
      expect(reads[CACHED_PER_TURN]!.buffer.every((b) => b === 0)).toBe(true)
      expect(client.pending).toBe(0)
      await nextTurn()
      expect(client.readCached(fd, new Uint8Array(8), whole.length)).toBe(0)
      // The bytes count against the same per-turn budget as ops completed on the spot.
      await nextTurn()
      const big = new Uint8Array(NOW_BYTES_PER_TURN / 2)
      cacheRange(fd, big.length)
      expect(client.readCached(fd, big, 0)).toBe(Math.min(big.length, whole.length))
      expect(client.readCached(fd, big, 0)).toBe(Math.min(big.length, whole.length))
      expect(client.readCached(fd, new Uint8Array(1), 0)).toBeUndefined()
      // Errors come back as -errno: a descriptor that is not open.
      await nextTurn()
      expect(client.readCached(1 << 20, new Uint8Array(8), 0)).toBe(-9)
    })
  })

  it("a read that waited a turn takes from the turn's allowance for waited reads, which others cannot spend", async () => {
    await withExe({ entries: 16 }, async (client, fd) => {
      const whole = Fs.readFileSync("/proc/self/exe")
      const readAt = (i: number, waited: boolean) => {
        const buffer = new Uint8Array(8)
        const result = client.readCached(fd, buffer, i * 8, waited)
        return result === undefined || Buffer.compare(buffer, whole.subarray(i * 8, i * 8 + 8)) === 0 ? result : "wrong"
      }
      const woken: Array<string> = []
      client.afterTurn(() => woken.push("first"))
      for (let i = 0; i < CACHED_PER_TURN; i++) expect(readAt(i, false)).toBe(8)
      // The budget is spent: a plain read is refused, a waited one is read, up to the allowance.
      expect(readAt(0, false)).toBeUndefined()
      for (let i = 0; i < WAITED_PER_TURN; i++) expect(readAt(i, true)).toBe(8)
      expect(readAt(0, true)).toBeUndefined()
      expect(readAt(0, false)).toBeUndefined()
      client.afterTurn(() => woken.push("second"))
      expect(woken).toEqual([])
      // The next turn renews both, and wakes the waiting callers in order, once.
      await nextTurn()
      expect(woken).toEqual(["first", "second"])
      expect(readAt(1, true)).toBe(8)
      // The allowance's bytes are bounded too: a waited read larger than what is left is refused.
      await nextTurn()
      const big = new Uint8Array(NOW_BYTES_PER_TURN)
      cacheRange(fd, big.length)
      expect(client.readCached(fd, big, 0)).toBe(Math.min(big.length, whole.length))
      expect(client.readCached(fd, new Uint8Array(WAITED_BYTES_PER_TURN), 0, true)).toBe(Math.min(WAITED_BYTES_PER_TURN, whole.length))
      expect(client.readCached(fd, new Uint8Array(1), 0, true)).toBeUndefined()
      expect(woken).toEqual(["first", "second"])
      expect(client.pending).toBe(0)
    })
  })

  /** `ranges` as one group (`readMany`) into a fresh buffer; `results` receives each range's result. */
  const readGroup = (fd: number, ranges: Float64Array) => {
    const count = ranges.length / 2
    const buffer = new Uint8Array(ranges.reduce((sum, v, i) => i % 2 ? sum + v : sum, 0))
    const results = new Int32Array(count)
    const start = (n: NativeRing, id: number) => n.readMany(id, fd, false, buffer, ranges, results, false)
    return { buffer, results, start }
  }

  it("a group flushed at once completes before submitNow returns, and only that group", async () => {
    await withExe({ entries: 64 }, async (client, fd) => {
      const whole = Fs.readFileSync("/proc/self/exe")
      const ranges = Float64Array.of(0, 8, 100, 8, 4096, 16, 50, 8)
      const expected = Buffer.concat([whole.subarray(0, 8), whole.subarray(100, 108), whole.subarray(4096, 4112), whole.subarray(50, 58)])
      // The ring's submission thread must be idle for the JS thread to submit: wait for a turn where it is.
      let other: { ran: boolean; result: Promise<number> } | undefined
      let first: { group: ReturnType<typeof readGroup>; completions: Array<number> } | undefined
      for (const deadline = patience(); first?.completions.length !== 1 && Date.now() < deadline;) {
        await other?.result
        while (client.pending > 0) await nextTurn()
        await nextTurn()
        // Queued before the group: the group's flush submits it too, but its callback waits for the turn.
        const state = { ran: false, result: Promise.resolve(0) }
        state.result = new Promise<number>((resolve) =>
          client.submit((n, id) => n.read(id, fd, false, new Uint8Array(8), 8, false), (r) => {
            state.ran = true
            resolve(r)
          }))
        other = state
        const group = readGroup(fd, ranges)
        const completions: Array<number> = []
        client.submitNow(group.start, (count) => completions.push(count), group, group.buffer.byteLength)
        first = { group, completions }
      }
      // One completion for the whole group, its count; each range's result in its slot.
      expect(first!.completions).toEqual([4])
      expect([...first!.group.results]).toEqual([8, 8, 16, 8])
      expect(Buffer.compare(first!.group.buffer, expected)).toBe(0)
      expect(other!.ran).toBe(false)
      expect(await other!.result).toBe(8)
      await nextTurn()
      expect(client.pending).toBe(0)
    })
  })

  it("a callback that throws is reported apart and does not strand the rest of its turn", async () => {
    const ranges = Float64Array.of(0, 8, 8, 8, 16, 8, 24, 8)
    const reported = await collectingRethrown((error) => error.message.startsWith("boom"), () =>
      withExe({ entries: 64 }, async (client, fd) => {
        // Three groups dispatched by the same turn's flush; the first two callbacks throw.
        const runs = [0, 1, 2].map((k) => {
          const group = readGroup(fd, ranges)
          const seen: Array<number> = []
          client.submit(group.start, (count) => {
            seen.push(count, ...group.results)
            if (k < 2) throw new Error(`boom ${k}`)
          }, group)
          return seen
        })
        // Ops the JS thread could not submit inline come back through the completion thread,
        // whenever a loaded machine runs it: wait for them by time, not by a count of turns.
        for (const deadline = patience(); client.pending > 0 && Date.now() < deadline;) await nextTurn()
        expect(runs).toEqual([[4, 8, 8, 8, 8], [4, 8, 8, 8, 8], [4, 8, 8, 8, 8]])
        expect(client.pending).toBe(0)
      }))
    expect(reported.map((error) => error.message).sort()).toEqual(["boom 0", "boom 1"])
  })

  /** Runs `body` with a fresh ring and a FIFO opened r+ (a read waits for data, never sees EOF). */
  const withFifo = async (
    body: (client: RingClient, fd: number) => Promise<void>,
    options: NativeRingOptions = {}
  ) => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ring-client-fifo-"))
    const client = new RingClient({ entries: 8, ...options })
    const path = Path.join(dir, "fifo")
    mkfifo(path)
    const fd = Fs.openSync(path, "r+")
    try {
      await body(client, fd)
    } finally {
      client.shutdown()
      Fs.closeSync(fd)
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }

  it("submitNow leaves a read the kernel cannot finish at once to its callback", () =>
    withFifo(async (client, fd) => {
      const buffer = new Uint8Array(16)
      const op = submitNow(client, (n, id) => n.read(id, fd, false, buffer, 0, false), buffer)
      expect(op.now).toBe(false)
      expect(client.pending).toBe(1)
      Fs.writeSync(fd, "late")
      expect(await op.result).toBe(4)
      expect(new TextDecoder().decode(buffer.subarray(0, 4))).toBe("late")
      expect(client.pending).toBe(0)
    }))

  // The event loop reaps what the kernel finishes later (it polls the ring's eventfd), or with
  // callerReaps off the completion thread does; either way the callback hears of it.
  for (const callerReaps of [true, false]) {
    it(`a read the kernel finishes later reaches its callback, callerReaps ${callerReaps}`, () =>
      withFifo(async (client, fd) => {
        // Who reaps: the event loop through the eventfd, or the completion thread.
        expect(client.native.callerReaps).toBe(callerReaps)
        const buffer = new Uint8Array(16)
        for (const word of ["one", "three", "seven"]) {
          const result = run(client, (n, id) => n.read(id, fd, false, buffer, 0, false), buffer)
          await new Promise((resolve) => setTimeout(resolve, 5))
          expect(client.pending).toBe(1)
          Fs.writeSync(fd, word)
          expect(await result).toBe(word.length)
          expect(new TextDecoder().decode(buffer.subarray(0, word.length))).toBe(word)
        }
      }, { callerReaps }))
  }

  // The poll callback that reaps a completion calls JavaScript itself, so the callback runs in
  // that turn's poll phase, before its setImmediate callbacks; the threadsafe function would
  // queue it for the next turn, after them. The write that completes the read runs the kernel's
  // completion work on this thread before it returns, so the eventfd is ready when the turn polls.
  it("a completion the event loop reaps reaches its callback before that turn's setImmediate", () =>
    withFifo(async (client, fd) => {
      expect(client.native.callerReaps).toBe(true)
      const buffer = new Uint8Array(16)
      const order: Array<string> = []
      const result = run(client, (n, id) => n.read(id, fd, false, buffer, 0, false), buffer)
      void result.then(() => order.push("completion"))
      await new Promise((resolve) => setTimeout(resolve, 5))
      expect(client.pending).toBe(1)
      Fs.writeSync(fd, "now")
      // Without letting the loop turn, give the kernel time to post the completion (from the
      // submission thread's task work, if that thread submitted the read) before the loop polls:
      // on a loaded host it could otherwise come after this turn's poll, and the order below
      // would test the host, not the reap.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100)
      setImmediate(() => order.push("immediate"))
      expect(await result).toBe(3)
      await nextTurn()
      expect(order).toEqual(["completion", "immediate"])
    }))

  it("a callback the event loop reaps for may shut the ring down, and the next ring works", () =>
    withFifo(async (client, fd) => {
      const buffer = new Uint8Array(16)
      const closed = new Promise<boolean>((resolve) =>
        client.submit((n, id) => n.read(id, fd, false, buffer, 0, false), (result) => {
          expect(result).toBe(5)
          resolve(client.shutdown())
        }, buffer)
      )
      await new Promise((resolve) => setTimeout(resolve, 5))
      Fs.writeSync(fd, "close")
      expect(await closed).toBe(true)
      expect(client.closed).toBe(true)
      await withExe({ entries: 8 }, async (next, exe) => {
        const data = new Uint8Array(16)
        expect(await run(next, (n, id) => n.read(id, exe, false, data, 0, false), data)).toBe(16)
        const stat = new Uint8Array(256)
        expect(await run(next, (n, id) => n.statx(id, CWD, "/etc/hostname", 0, 0xfff, stat), stat)).toBe(0)
      })
    }))

  // Whoever reaps it: the event loop calling JS itself, or the completion thread through the
  // threadsafe function (after which Node itself would only print a warning). The flush gets no
  // room for completions: one already there would come back from it and never reach the callback.
  it.each([true, false])("what the raw completion callback throws is an uncaught exception, callerReaps %s", (callerReaps) => {
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `
      import { load } from ${JSON.stringify(Path.join(import.meta.dirname, "..", "src", "internal", "native.ts"))}
      process.on("uncaughtException", (error) => { console.log("uncaught: " + error.message); process.exit(0) })
      const ring = new (load().NativeRing)({ callerReaps: ${callerReaps} }, () => { throw new Error("from the callback") })
      ring.statx(1, -100, "/etc/hostname", 0, 0xfff, new Uint8Array(256))
      ring.flush(new Int32Array(0), false)
      ring.ref()
    `], { encoding: "utf8", timeout: 20_000, cwd: Path.join(import.meta.dirname, "..") })
    expect(child.stderr).not.toMatch(/Error|warning/i)
    expect(child.stdout).toContain("uncaught: from the callback")
    expect(child.status).toBe(0)
  })

  // A write to a pipe goes in parts, each submitted once the last one is reaped. With the JS
  // thread blocked in a synchronous wait (here for a worker that reads the pipe), the event loop
  // cannot reap: the completion thread does in its place once the JS thread stands still.
  it("an op in parts goes on while the JS thread is blocked in a synchronous wait", () =>
    withFifo(async (client, fd) => {
      const total = 256 * 1024
      const path = Fs.readlinkSync(`/proc/self/fd/${fd}`)
      const progress = new Int32Array(new SharedArrayBuffer(4))
      const worker = new Worker(
        `const fs = require("node:fs"); const { workerData } = require("node:worker_threads")
        const progress = new Int32Array(workerData.progress); const fd = fs.openSync(workerData.path, "r")
        const piece = Buffer.alloc(4096); let got = 0
        while (got < workerData.total) { got += fs.readSync(fd, piece, 0, piece.length, null); Atomics.store(progress, 0, got) }
        Atomics.notify(progress, 0); fs.closeSync(fd)`,
        { eval: true, workerData: { progress: progress.buffer, path, total } }
      )
      const data = new Uint8Array(total).fill(7)
      const op = submitNow(client, (n, id) => n.write(id, fd, false, data, 0, true), data)
      const deadline = Date.now() + 10_000
      while (Atomics.load(progress, 0) < total && Date.now() < deadline) {
        Atomics.wait(progress, 0, Atomics.load(progress, 0), 100)
      }
      expect(Atomics.load(progress, 0)).toBe(total)
      expect(await op.result).toBe(total)
      await worker.terminate()
    }))

  it("shutdown cancels a pending read, still delivers its completion, and says it closed clean", () =>
    withFifo(async (client, fd) => {
      const buffer = new Uint8Array(16)
      const result = run(client, (n, id) => n.read(id, fd, false, buffer, 0, false), buffer)
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(client.pending).toBe(1)
      // Clean: the kernel gave the read back (cancelled) before the deadline.
      expect(client.shutdown()).toBe(true)
      expect(await result).toBe(-125)
      expect(client.pending).toBe(0)
      expect(client.shutdown()).toBe(true)
    }))

  it("with inlineSubmit off, every completion comes from the completion thread", async () => {
    await withExe({ entries: 64, inlineSubmit: false }, async (client, fd) => {
      const { ops, wrong } = await readLoop(client, fd, 1, (ops) => ops >= 200)
      expect(wrong).toBe(0)
      // One lane: one op in flight, so each completion is its own batch.
      expect(client.batches).toBe(ops)
    })
  })

  it("completions from the completion thread are dispatched at most a turn's allowance at a time; the rest wait a turn", async () => {
    await withExe({ entries: 4096, inlineSubmit: false }, async (client, fd) => {
      // Thousands of lanes that resubmit from their callbacks: Node runs queued completion calls
      // back to back in one loop iteration, and without the allowance it never ended while they came.
      let sinceTurn = 0
      let most = 0
      let turns = 0
      let stopped = false
      const ping = () => {
        most = Math.max(most, sinceTurn)
        sinceTurn = 0
        turns++
        if (!stopped) setImmediate(ping)
      }
      setImmediate(ping)
      const dispatch = (client as any).dispatch.bind(client)
      ;(client as any).dispatch = (pairs: Int32Array, length: number) => {
        sinceTurn += length / 2
        return dispatch(pairs, length)
      }
      const { ops, wrong } = await readLoop(client, fd, 4096, (ops) => ops >= 100_000)
      stopped = true
      expect(wrong).toBe(0)
      expect(ops).toBeGreaterThanOrEqual(100_000)
      expect(client.pending).toBe(0)
      // Between two turns' pings: what the callback dispatched after one flush, and the next
      // flush's deferred share, each within the allowance.
      expect(most).toBeLessThanOrEqual(2 * DELIVERED_PER_TURN)
      expect(turns).toBeGreaterThan(100_000 / (2 * DELIVERED_PER_TURN))
    })
  })

  it("reports a refused configuration with its own codes", () => {
    const { NativeRing } = load()
    expect(() => new NativeRing({ deferTaskrun: true }, () => {})).toThrow(/ERR_URING_INVALID_CONFIG.*completion thread/)
    expect(() => new NativeRing({ entries: 0 }, () => {})).toThrow(/ERR_URING_INVALID_CONFIG/)
    expect(load().probe()).toBe(0)
  })

  it("refuses a call without `new`, which would give the global object the ring's functions", () => {
    const { NativeRing } = load()
    const call = NativeRing as unknown as (options: NativeRingOptions, onComplete: () => void) => unknown
    expect(() => call({ entries: 8 }, () => {})).toThrow(/must be called with `new`/)
    expect(Object.hasOwn(globalThis, "openat")).toBe(false)
  })

  it("the per-op functions are each ring's own: bound to it, not to `this`", async () => {
    const a = new RingClient({ entries: 8 })
    const b = new RingClient({ entries: 8 })
    const fd = Fs.openSync("/etc/hostname", "r")
    try {
      const { read, write, flush } = a.native
      expect(Object.keys(a.native)).toEqual(expect.arrayContaining(["read", "write", "readFile", "statx", "flush", "cancel", "ref", "unref"]))
      expect(read).not.toBe(b.native.read)
      // Detached, or called on another ring, they still queue on their own ring.
      const buffer = new Uint8Array(8)
      const result = run(a, (_, id) => read.call(b.native, id, fd, false, buffer, 0, false), buffer)
      expect([a.pending, b.pending, b.native.inFlight]).toEqual([1, 0, 0])
      expect(await result).toBe(Fs.readFileSync("/etc/hostname").subarray(0, 8).length)
      expect(flush(new Int32Array(2), false)).toBe(0)
      expect(() => (write as Function)(2, fd, false, "not bytes", 0, false)).toThrow(/ERR_URING_INVALID_ARGUMENT.*Uint8Array/)
      expect(() => (flush as Function)([0, 0])).toThrow(/ERR_URING_INVALID_ARGUMENT.*Int32Array/)
      expect(() => (read as Function)()).toThrow(/ERR_URING_INVALID_ARGUMENT/)
      expect(() => (a.native.statx as Function)(4, CWD, 7, 0, 0, new Uint8Array(256))).toThrow(/ERR_URING_INVALID_ARGUMENT.*string path/)
      expect(() => a.native.unlinkat(4, CWD, "a\0b", 0)).toThrow(/ERR_URING_INVALID_ARGUMENT.*NUL/)
      a.shutdown()
      expect(() => read(3, fd, false, buffer, 0, false)).toThrow(/ERR_URING_CLOSED/)
      expect(await run(b, (n, id) => n.read(id, fd, false, buffer, 0, false), buffer)).toBeGreaterThan(0)
    } finally {
      a.shutdown()
      b.shutdown()
      Fs.closeSync(fd)
    }
  })

  it("a Rust panic becomes a JS exception, and the ring keeps working", async () => {
    await withExe({ entries: 8 }, async (client, fd) => {
      const native = client.native as NativeRing & { __panicForTests(message: string): void }
      expect(() => native.__panicForTests("deliberate")).toThrow(/deliberate/)
      const buffer = new Uint8Array(8)
      expect(await run(client, (n, id) => n.read(id, fd, false, buffer, 0, false), buffer)).toBe(8)
    })
  })

  it("a process that never closes its ring exits by itself once its work is done", () => {
    const script = Path.join(import.meta.dirname, "fixtures", "unclosed-ring.ts")
    const started = Date.now()
    const child = spawnSync(process.execPath, ["--import", "tsx", script, "/etc/hostname"], {
      encoding: "utf8",
      timeout: 20_000,
      cwd: Path.join(import.meta.dirname, "..")
    })
    expect(child.signal).toBeNull()
    expect(child.status).toBe(0)
    expect(child.stdout).toContain(`read ${Fs.statSync("/etc/hostname").size} bytes`)
    expect(Date.now() - started).toBeLessThan(20_000)
  })

  it("a worker terminated with a thousand reads in flight leaves the process healthy", async () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ring-worker-"))
    try {
      for (let round = 0; round < 3; round++) {
        const worker = new Worker(Path.join(import.meta.dirname, "fixtures", "worker-ring.mjs"), { workerData: { dir } })
        const message = await new Promise<{ inFlight: number }>((resolve, reject) => {
          worker.once("message", resolve)
          worker.once("error", reject)
        })
        expect(message.inFlight).toBe(1000)
        expect(await worker.terminate()).toBe(1)
      }
      // The main thread's own ring still works.
      await withExe({ entries: 8 }, async (client, fd) => {
        const buffer = new Uint8Array(16)
        expect(await run(client, (n, id) => n.read(id, fd, false, buffer, 0, false), buffer)).toBe(16)
      })
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
