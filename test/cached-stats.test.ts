/**
 * Stats by path the dentry cache can answer are taken on the calling thread (`cachedReads`, on by
 * default): no ring op, no fiber suspension, on file systems that keep attributes in memory. What
 * the caches cannot answer goes through the ring. Past a turn's budget, stats (and cached
 * `readFile`s) wait for the next turn and are taken there first, not sent to the ring.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { CACHED_FILE_COST, CACHED_PER_TURN, type RingClient } from "../src/internal/RingClient.js"
import { AtFlags, type Metadata } from "../src/index.js"
import { fdCount, mkfifo, pattern, tempDir, tmpfs } from "./helpers/fixtures.js"
import { countRingOps, makeWithClient } from "./reliability/helpers.js"

const EAGAIN = -11

/** Counts `client`'s stats on the calling thread by outcome, and its ops for the ring. */
const watch = (client: RingClient) => {
  const seen = { here: 0, missing: 0, toRing: 0, spent: 0, ring: 0 }
  const { statCached } = client
  client.statCached = (...args) => {
    const result = statCached.apply(client, args)
    if (result === undefined) seen.spent++
    else if (result === 0) seen.here++
    else if (result === EAGAIN) seen.toRing++
    else seen.missing++
    return result
  }
  countRingOps(client, seen)
  return seen
}

const reset = (seen: ReturnType<typeof watch>) => Object.assign(seen, { here: 0, missing: 0, toRing: 0, spent: 0, ring: 0 })

/** What two stats of one file must agree on (atime aside: a read between them may move it). */
const identity = (meta: Metadata) => ({
  type: meta.type,
  mode: meta.mode,
  ino: meta.ino,
  size: meta.size,
  nlink: meta.nlink,
  uid: meta.uid,
  mtimeNs: meta.mtimeNs,
  ctimeNs: meta.ctimeNs,
  devMajor: meta.devMajor,
  devMinor: meta.devMinor
})

describe("cached stats", () => {
  it.scoped("a path the dentry cache holds is stat'ed here with no op, as the ring would; off, the ring does it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const file = Path.join(dir, "file")
      Fs.writeFileSync(file, pattern(5000))
      const link = Path.join(dir, "link")
      Fs.symlinkSync(file, link)
      const fifo = Path.join(dir, "fifo")
      mkfifo(fifo)
      const shm = Path.join(yield* tmpfs("1m"), "file")
      Fs.writeFileSync(shm, pattern(100))
      const { client, uring } = yield* makeWithClient()
      const { uring: ringOnly } = yield* makeWithClient({ cachedReads: false })
      const seen = watch(client)

      const paths = [[file, "File"], [link, "File"], [fifo, "FIFO"], [dir, "Directory"], [shm, "File"]] as const
      // Looked up once: a symlink just made is followed by the ring the first time.
      for (const [path] of paths) Fs.statSync(path)
      for (const [path, type] of paths) {
        reset(seen)
        // Done before the effect returns: runSyncExit would die on a suspension.
        const here = Effect.runSyncExit(uring.stat(path))
        expect([path, Exit.isSuccess(here)]).toEqual([path, true])
        const meta = (here as Exit.Success<Metadata, never>).value
        expect(meta.type).toBe(type)
        expect(identity(meta)).toEqual(identity(yield* ringOnly.stat(path)))
        expect({ here: seen.here, ring: seen.ring }).toEqual({ here: 1, ring: 0 })
      }
      const linkItself = yield* uring.stat(link, { followSymlinks: false })
      expect(linkItself.type).toBe("SymbolicLink")
      expect(identity(linkItself)).toEqual(identity(yield* ringOnly.stat(link, { followSymlinks: false })))
      expect(linkItself.size).toBe(BigInt(Fs.lstatSync(link).size))

      // Beneath a directory handle, too; the directory itself (AT_EMPTY_PATH) is the ring's.
      const handle = yield* uring.open(dir, { flag: "r" })
      reset(seen)
      expect((yield* uring.statAt(handle, "file")).size).toBe(5000n)
      expect({ here: seen.here, ring: seen.ring }).toEqual({ here: 1, ring: 0 })
      expect((yield* uring.statAt(handle, "", AtFlags.AT_EMPTY_PATH)).type).toBe("Directory")
      expect(seen.ring).toBe(1)

      // procfs is not a file system whose attributes this trusts here: the ring stats it.
      reset(seen)
      expect((yield* uring.stat("/proc/self/status")).type).toBe("File")
      expect({ toRing: seen.toRing, ring: seen.ring }).toEqual({ toRing: 1, ring: 1 })
    }))

  it.scoped("a missing path: looked up by the ring the first time, NotFound here once the dentry cache knows", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const { client, uring } = yield* makeWithClient()
      const seen = watch(client)
      const missing = Path.join(dir, "missing")
      const first = yield* Effect.flip(uring.stat(missing))
      expect(first._tag).toBe("NotFound")
      expect({ toRing: seen.toRing, ring: seen.ring }).toEqual({ toRing: 1, ring: 1 })
      reset(seen)
      const again = yield* Effect.flip(uring.stat(missing))
      expect(again).toMatchObject({ _tag: "NotFound", operation: "stat", path: missing, errno: 2 })
      expect({ missing: seen.missing, ring: seen.ring }).toEqual({ missing: 1, ring: 0 })
      // A file in place of a directory: the lookup's own ENOTDIR.
      const file = Path.join(dir, "file")
      Fs.writeFileSync(file, "x")
      Fs.statSync(file)
      expect((yield* Effect.flip(uring.stat(Path.join(file, "below"))))._tag).toBe("NotADirectory")
      // Refused before anything runs, as ever.
      expect((yield* Effect.flip(uring.stat("a\0b")))._tag).toBe("InvalidArgument")
    }))

  it.scoped("past the turn's budget, stats wait for the next turn and are taken there, none through the ring", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const count = 3 * (CACHED_PER_TURN / CACHED_FILE_COST)
      const paths = Array.from({ length: count }, (_, k) => Path.join(dir, `f${k}`))
      paths.forEach((path, k) => Fs.writeFileSync(path, pattern(k % 50)))
      paths.forEach((path) => Fs.statSync(path))
      const { client, uring } = yield* makeWithClient()
      const seen = watch(client)
      const sizes = yield* Effect.forEach(paths, (path) => Effect.map(uring.stat(path), (meta) => meta.size), {
        concurrency: "unbounded"
      })
      expect(sizes).toEqual(paths.map((_, k) => BigInt(k % 50)))
      expect({ here: seen.here, ring: seen.ring }).toEqual({ here: count, ring: 0 })
      // Each stat past the first turn's budget found it spent once; a later turn tries waiting
      // stats only until one finds it spent again, not every one of them each turn.
      const perTurn = CACHED_PER_TURN / CACHED_FILE_COST
      expect(seen.spent).toBeGreaterThanOrEqual(count - perTurn)
      expect(seen.spent).toBeLessThanOrEqual(count - perTurn + 4)
    }))

  it.scoped("a stat waiting for the next turn can be interrupted", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const path = Path.join(dir, "f")
      Fs.writeFileSync(path, "x")
      Fs.statSync(path)
      const { client, uring } = yield* makeWithClient()
      const seen = watch(client)
      // Spends this turn's budget on the calling thread.
      const out = new Uint8Array(256)
      while (client.statCached(AtFlags.AT_FDCWD, path, 0, 0, out) !== undefined);
      reset(seen)
      const waiting = yield* Effect.fork(uring.stat(path))
      yield* Effect.yieldNow()
      expect(seen.spent).toBe(1)
      const exit = yield* Fiber.interrupt(waiting)
      expect(Exit.isInterrupted(exit)).toBe(true)
      // The next turn comes and goes without trying it again.
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      expect({ spent: seen.spent, here: seen.here }).toEqual({ spent: 1, here: 0 })
      expect((yield* uring.stat(path)).size).toBe(1n)
      expect(seen.ring).toBe(0)
    }))

  it.scoped("statAt waiting for the next turn checks its directory again: one closed meanwhile is refused", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      Fs.writeFileSync(Path.join(dir, "f"), "x")
      Fs.statSync(Path.join(dir, "f"))
      const { client, uring } = yield* makeWithClient()
      const handle = yield* uring.open(dir, { flag: "r" })
      const out = new Uint8Array(256)
      while (client.statCached(AtFlags.AT_FDCWD, dir, 0, 0, out) !== undefined);
      const waiting = yield* Effect.fork(uring.statAt(handle, "f"))
      yield* Effect.yieldNow()
      // Its number may name another directory by the time the next turn comes.
      yield* uring.close(handle)
      const error = yield* Effect.flip(Fiber.join(waiting))
      expect(error).toMatchObject({ _tag: "InvalidArgument", operation: "statAt" })
      expect(error.message).toMatch(/closed/)
    }))

  it.scoped("readFile: past the turn's budget, cached files wait for the next turn and are read there, none through the ring", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const count = 3 * (CACHED_PER_TURN / CACHED_FILE_COST)
      const paths = Array.from({ length: count }, (_, k) => Path.join(dir, `f${k}`))
      paths.forEach((path, k) => Fs.writeFileSync(path, pattern(100 + k % 50, k)))
      paths.forEach((path) => Fs.readFileSync(path))
      const { client, uring } = yield* makeWithClient()
      const seen = watch(client)
      const before = fdCount()
      const files = yield* Effect.forEach(paths, (path) => uring.readFile(path), { concurrency: "unbounded" })
      files.forEach((data, k) => expect(Buffer.compare(data, pattern(100 + k % 50, k))).toBe(0))
      expect(seen.ring).toBe(0)
      expect(fdCount()).toBe(before)
    }))

  it.scoped("readFile: one waiting for the next turn finishes before its interruption does, and leaves no fd open", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      // Larger than the first read: the calling thread's read leaves its fd open for the rest.
      const path = Path.join(dir, "f")
      const data = pattern(40_000)
      Fs.writeFileSync(path, data)
      Fs.readFileSync(path)
      const { client, uring } = yield* makeWithClient()
      const before = fdCount()
      const out = new Uint8Array(256)
      while (client.statCached(AtFlags.AT_FDCWD, path, 0, 0, out) !== undefined);
      const waiting = yield* Effect.fork(uring.readFile(path))
      yield* Effect.yieldNow()
      const exit = yield* Fiber.interrupt(waiting)
      // Interrupted or done, it took no fd along.
      if (Exit.isSuccess(exit)) expect(Buffer.compare(exit.value, data)).toBe(0)
      else expect(Exit.isInterrupted(exit)).toBe(true)
      expect(fdCount()).toBe(before)
    }))
})
