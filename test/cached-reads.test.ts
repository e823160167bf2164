/**
 * Reads the page cache can answer are done on the calling thread (`cachedReads`, on by default):
 * no ring op, no fiber suspension. Only a file whose fd number is known to be that file (an open
 * `OwnedFd`, or a slot registered from one) and not opened with O_DIRECT takes that path; what is
 * not cached goes through the ring, which also finishes a range cached only in part.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Fiber, Option, Runtime, Scope } from "effect"
import fc from "fast-check"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { CACHED_PER_TURN, type RingClient, WAITED_PER_TURN } from "../src/internal/RingClient.js"
import { type FileLike, make, type UringShape } from "../src/index.js"
import { cacheRange, fdCount, pattern, tempDir } from "./helpers/fixtures.js"
import { countRingOps, makeWithClient, realSleep } from "./reliability/helpers.js"

/**
 * Counts what `client` is asked for from now on: reads on the calling thread, and ops for the
 * ring (with the bytes of those that may complete on the spot).
 */
const watch = (client: RingClient) => {
  const seen = { cached: 0, ring: 0, ringBytes: [] as Array<number>, batches: [] as Array<number | undefined> }
  const { readCached, readManyCached } = client
  client.readCached = (...args) => {
    seen.cached++
    return readCached.apply(client, args)
  }
  // What each batch left to the ring (`undefined`: the turn's budget was spent, nothing read here).
  client.readManyCached = (...args) => {
    const left = readManyCached.apply(client, args)
    seen.batches.push(left)
    return left
  }
  countRingOps(client, seen)
  return seen
}

/** What a read of `length` bytes at `offset` returns from `data`. */
const bytesAt = (data: Uint8Array, offset: number, length: number) =>
  data.subarray(Math.min(offset, data.length), Math.min(offset + length, data.length))

/** Whether each slice a batch returned holds the bytes its range names in `data`. */
const batchMatches = (
  data: Uint8Array,
  ranges: ReadonlyArray<{ readonly offset: number; readonly length: number }>,
  slices: ReadonlyArray<Uint8Array>
) => slices.length === ranges.length && ranges.every(({ length, offset }, i) => Buffer.compare(slices[i]!, bytesAt(data, offset, length)) === 0)

/**
 * Counts the whole files `client` read on the calling thread, those it left an fd open for, and
 * the errors it gave there.
 */
const watchFiles = (client: RingClient) => {
  const seen = { here: 0, kept: 0, failed: 0 }
  const { readFileCached } = client
  client.readFileCached = (dirfd, path, buffer) => {
    const read = readFileCached.call(client, dirfd, path, buffer)
    // EAGAIN: the ring does it all.
    if (read !== undefined && read < 0 && read !== -11) seen.failed++
    if (read !== undefined && read >= 0) {
      seen.here++
      if (Buffer.from(buffer.buffer, buffer.byteOffset + buffer.length - 4, 4).readInt32LE() >= 0) seen.kept++
    }
    return read
  }
  return seen
}

/** A file of `size` pattern bytes, read once so the page cache holds it. */
const cachedFile = (dir: string, name: string, size: number, seed = 3) => {
  const path = Path.join(dir, name)
  const data = pattern(size, seed)
  Fs.writeFileSync(path, data)
  Fs.readFileSync(path)
  return { path, data }
}

/**
 * A file of `size` pattern bytes at `path`, opened by `uring` in the current scope, read with no
 * readahead, and with the page ranges `evicted` (`[first page, count]`) dropped from the page
 * cache where nothing holds them (`evict` drops them again): a file cached in part.
 */
const partlyCached = (uring: UringShape, path: string, size: number, seed: number, evicted: ReadonlyArray<readonly [number, number]>) =>
  Effect.gen(function*() {
    const data = pattern(size, seed)
    Fs.writeFileSync(path, data)
    const file = yield* uring.open(path)
    // Only clean pages can be dropped.
    Fs.fdatasyncSync(file.fd)
    yield* uring.fadvise(file, 0, 0, "random")
    const evict = Effect.forEach(evicted, ([first, count]) => uring.fadvise(file, first * 4096, count * 4096, "dontNeed"), { discard: true })
    yield* evict
    return { data, file, evict }
  })

/**
 * A ring in a scope of its own, and `path` opened by it in a scope that outlives the ring (that
 * its fd is then closed all the same is uring.test.ts's "an OwnedFd whose scope outlives the
 * ring"); `closeRing` closes the ring alone.
 */
const fileOutlivingItsRing = (path: string) =>
  Effect.gen(function*() {
    const ringScope = yield* Scope.make()
    const uring = yield* Scope.extend(make(), ringScope)
    const fileScope = yield* Scope.make()
    const file = yield* Scope.extend(uring.open(path), fileScope)
    yield* Effect.addFinalizer(() => Scope.close(fileScope, Exit.void))
    return { uring, file, closeRing: Scope.close(ringScope, Exit.void) }
  })

describe("cached reads", () => {
  it.scoped("a cached range is read on the calling thread, with the ring's results; off, the ring reads it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const { data, path } = cachedFile(dir, "f", 3 * 4096 + 100)
      const { client, uring } = yield* makeWithClient()
      const file = yield* uring.open(path)
      const seen = watch(client)
      // Done before the effect returns: runSyncExit would die on a suspension.
      const buffer = new Uint8Array(4096)
      expect(Effect.runSyncExit(uring.readInto(file, 4096, buffer))).toEqual(Exit.succeed(4096))
      expect(Buffer.compare(buffer, data.subarray(4096, 8192))).toBe(0)
      // Short only where the file ends, 0 past it; readExact and read alike.
      expect(Effect.runSyncExit(uring.readInto(file, 3 * 4096, buffer))).toEqual(Exit.succeed(100))
      expect(Effect.runSyncExit(uring.readInto(file, 4 * 4096, buffer))).toEqual(Exit.succeed(0))
      const exact = Effect.runSyncExit(uring.readExact(file, 10, 5000))
      expect(Exit.map(exact, (bytes) => Buffer.compare(bytes, data.subarray(10, 5010)))).toEqual(Exit.succeed(0))
      const eof = Effect.runSyncExit(Effect.flip(uring.readExact(file, 3 * 4096, 200)))
      expect(Exit.map(eof, (error) => error._tag)).toEqual(Exit.succeed("UnexpectedEof"))
      expect(Exit.map(Effect.runSyncExit(uring.read(file, 0, 64)), (bytes) => bytes.length)).toEqual(Exit.succeed(64))
      expect(seen).toEqual({ cached: 6, ring: 0, ringBytes: [], batches: [] })

      const ringOnly = yield* makeWithClient({ cachedReads: false })
      const same = yield* ringOnly.uring.open(path)
      const ringSeen = watch(ringOnly.client)
      const viaRing = new Uint8Array(4096)
      expect(yield* ringOnly.uring.readInto(same, 4096, viaRing)).toBe(4096)
      expect(Buffer.compare(viaRing, data.subarray(4096, 8192))).toBe(0)
      expect(ringSeen).toEqual({ cached: 0, ring: 1, ringBytes: [4096], batches: [] })
    }))

  it.scoped("only open OwnedFds without O_DIRECT, and slots registered from them, read on the calling thread", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const a = cachedFile(dir, "a", 8192, 1)
      const b = cachedFile(dir, "b", 8192, 2)
      const { client, uring } = yield* makeWithClient({ registeredFiles: 8 })
      const seen = watch(client)
      /** Reads block 0 of `file`; says where it was read and checks it against `expected`. */
      const readsAt = (file: FileLike, expected = a.data) =>
        Effect.gen(function*() {
          const before = { ...seen }
          const buffer = new Uint8Array(4096)
          expect(yield* uring.readInto(file, 0, buffer)).toBe(4096)
          expect(Buffer.compare(buffer, expected.subarray(0, 4096))).toBe(0)
          return seen.ring > before.ring ? "ring" : seen.cached > before.cached ? "here" : "nowhere"
        })

      // A plain number could be any file, opened any way: the ring reads it.
      const plain = Fs.openSync(a.path, "r")
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(plain)))
      expect(yield* readsAt(plain)).toBe("ring")
      expect(yield* readsAt(yield* uring.register(plain))).toBe("ring")
      // O_DIRECT: the kernel may wait for the device even with RWF_NOWAIT. (The read's buffer
      // need not be aligned for this: only where it goes matters.)
      const direct = yield* uring.open(a.path, { direct: true })
      const before = seen.ring
      yield* Effect.either(uring.readInto(direct, 0, new Uint8Array(4096)))
      expect(seen.ring).toBe(before + 1)

      const owned = yield* uring.open(a.path)
      expect(yield* readsAt(owned)).toBe("here")
      const registered = yield* uring.register(owned)
      expect(yield* readsAt(registered)).toBe("here")
      // Once its OwnedFd is closed the number may name another file; the slot still holds the first.
      yield* uring.close(owned)
      // The lowest free number, once any lower one freed meanwhile (a closed ring's) is taken.
      const opened: Array<number> = []
      yield* Effect.addFinalizer(() => Effect.sync(() => opened.forEach((fd) => Fs.closeSync(fd))))
      do opened.push(Fs.openSync(b.path, "r"))
      while (opened.length < 64 && opened.at(-1)! < owned.fd)
      const reused = opened.at(-1)!
      expect(reused).toBe(owned.fd)
      expect(yield* readsAt(registered)).toBe("ring")
      const closed = yield* Effect.flip(uring.readInto(owned, 0, new Uint8Array(4096)))
      expect(closed._tag).toBe("InvalidArgument")
    }))

  it.scoped("a range cached only in part: the cached prefix here, the rest through the ring", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const { data, path } = cachedFile(dir, "partly", 8 * 1024 * 1024)
      const { client, uring } = yield* makeWithClient()
      const file = yield* uring.open(path)
      Fs.fdatasyncSync(file.fd)
      // No readahead: reading block 0 caches just that block.
      yield* uring.fadvise(file, 0, 0, "random")
      // DONTNEED skips pages something else holds for a moment (a busy machine); then more than
      // block 0 is still cached and read here: try again.
      const seen = watch(client)
      const onlyFirstCached = () => seen.ring === 1 && seen.ringBytes[0] === 60 * 1024
      for (let attempt = 0; attempt < 50 && !onlyFirstCached(); attempt++) {
        yield* uring.fadvise(file, 0, 0, "dontNeed")
        cacheRange(file.fd, 4096)
        Object.assign(seen, { cached: 0, ring: 0, ringBytes: [], batches: [] })
        const bytes = yield* uring.readExact(file, 0, 64 * 1024)
        expect(Buffer.compare(bytes, data.subarray(0, 64 * 1024))).toBe(0)
      }
      expect(seen).toEqual({ cached: 1, ring: 1, ringBytes: [60 * 1024], batches: [] })
    }))

  it.scoped("fadvise dontNeed over more than 4 GiB drops every page of the range, in pieces or to the end", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const page = 4096
      // A sparse file of 4 GiB and 1 MiB, with 16 pages of data at 4 GiB.
      const tail = 2 ** 32
      const path = Path.join(dir, "long-advice")
      const fd = Fs.openSync(path, "w+")
      Fs.writeSync(fd, pattern(16 * page), 0, 16 * page, tail)
      Fs.ftruncateSync(fd, tail + 2 ** 20)
      Fs.fdatasyncSync(fd)
      Fs.closeSync(fd)
      const { client, uring } = yield* makeWithClient()
      const file = yield* uring.open(path)
      const seen = { ring: 0 }
      countRingOps(client, seen)
      // A page is cached when the calling thread's read gets it (else EAGAIN).
      const cached = (at: number) => client.native.readCached(file.fd, new Uint8Array(page), at) === page
      /** Whether advice on `length` bytes from 0 dropped every probed page, and the ring ops it took. */
      const drops = (length: number, probes: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          // DONTNEED skips pages something holds for a moment (a busy machine): try again.
          for (let attempt = 0; attempt < 50; attempt++) {
            cacheRange(file.fd, 16 * page, tail)
            expect(probes.every(cached)).toBe(true)
            seen.ring = 0
            yield* uring.fadvise(file, 0, length, "dontNeed")
            if (probes.every((at) => !cached(at))) return { dropped: true, ops: seen.ring }
          }
          return { dropped: false, ops: seen.ring }
        })
      // Short of the end: two pieces of at most 32 bits each, after a stat for the size. Sent
      // whole, io_uring's 32-bit length would advise on 128 pages at the start of the file and
      // leave these. (The range ends past the data: DONTNEED keeps a large folio it covers only in part.)
      expect(yield* drops(tail + 128 * page, [tail + 4 * page, tail + 15 * page])).toEqual({ dropped: true, ops: 3 })
      // Reaching the end, even from a length near 2^53 (two million pieces): one op to the end.
      expect(yield* drops(Number.MAX_SAFE_INTEGER, [tail + 4 * page, tail + 15 * page])).toEqual({ dropped: true, ops: 2 })
    }))

  it.scoped("property: whatever part of a file the page cache holds, reads and batches return the file's bytes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const { client, uring } = yield* makeWithClient()
      const run = Runtime.runPromise(yield* Effect.runtime<never>())
      const seen = watch(client)
      const page = 4096
      // Reads the page cache answered only in part (a short count ending on a page boundary).
      let partial = 0
      const readCached = client.readCached.bind(client)
      client.readCached = (fd, buffer, offset) => {
        const result = readCached(fd, buffer, offset)
        if (result !== undefined && result > 0 && result < buffer.length && (offset + result) % page === 0) partial++
        return result
      }
      let runs = 0
      const check = (size: number, evicted: ReadonlyArray<readonly [number, number]>, reads: ReadonlyArray<readonly [number, number, boolean]>) =>
        Effect.scoped(Effect.gen(function*() {
          runs++
          const { data, evict, file } = yield* partlyCached(uring, Path.join(dir, `f${runs}`), size, runs, evicted)
          // The reads as one batch, then one by one: the ring's reads bring pages back into the cache.
          const batch = reads.map(([offset, length]) => ({ offset, length }))
          expect(batchMatches(data, batch, yield* uring.readBatch(file, batch))).toBe(true)
          yield* evict
          for (const [offset, length, exact] of reads) {
            const expected = bytesAt(data, offset, length)
            if (exact) {
              const result = yield* Effect.either(uring.readExact(file, offset, length))
              if (length === 0 || offset + length <= size) {
                expect(Either.map(result, (bytes) => Buffer.compare(bytes, expected))).toEqual(Either.right(0))
              } else {
                expect(Either.isLeft(result) && result.left._tag).toBe("UnexpectedEof")
              }
            } else {
              const buffer = new Uint8Array(length)
              expect(yield* uring.readInto(file, offset, buffer)).toBe(expected.length)
              expect(Buffer.compare(buffer.subarray(0, expected.length), expected)).toBe(0)
            }
          }
        }))
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 0, max: 24 * page + 77 }),
            fc.array(fc.tuple(fc.nat(26), fc.integer({ min: 1, max: 6 })), { minLength: 1, maxLength: 8 }),
            fc.array(fc.tuple(fc.nat(26 * page), fc.integer({ min: 0, max: 17 * page }), fc.boolean()), { minLength: 1, maxLength: 8 }),
            (size, evicted, reads) => run(check(size, evicted, reads))
          ),
          { numRuns: 80 }
        )
      )
      expect(runs).toBeGreaterThanOrEqual(80)
      // Every path was taken: reads from the page cache here, the rest through the ring, and
      // ranges cached in part, finished by the ring; batches read whole here, and batches with
      // ranges left to the ring.
      expect(seen.cached).toBeGreaterThan(0)
      expect(seen.ringBytes.length).toBeGreaterThan(0)
      expect(partial).toBeGreaterThan(0)
      expect(seen.batches.some((left) => left === 0)).toBe(true)
      expect(seen.batches.some((left) => left !== undefined && left > 0)).toBe(true)
    }))

  it.scoped("a fiber that only ever reads cached data still lets the event loop turn", () =>
    Effect.gen(function*() {
      const { data, path } = cachedFile(yield* tempDir(), "loop", 64 * 4096)
      const { uring } = yield* makeWithClient()
      const file = yield* uring.open(path)
      let fired = false
      setTimeout(() => fired = true, 20)
      // Effect itself would yield to timers only after millions of steps; the per-turn budget
      // sends the fiber to the next turn every 1024 reads.
      const buffer = new Uint8Array(4096)
      let reads = 0
      let wrong = 0
      while (!fired && reads < 1_000_000) {
        const at = (reads++ % 64) * 4096
        yield* uring.readInto(file, at, buffer)
        if (Buffer.compare(buffer, data.subarray(at, at + 4096)) !== 0) wrong++
      }
      expect(fired).toBe(true)
      expect(reads).toBeLessThan(200_000)
      expect(wrong).toBe(0)
    }))

  it.scoped("reads past the turn's budget wait for the next turn and are read here then, not by the ring", () =>
    Effect.gen(function*() {
      const { data, path } = cachedFile(yield* tempDir(), "many", 64 * 4096)
      const { client, uring } = yield* makeWithClient()
      const file = yield* uring.register(yield* uring.open(path))
      const seen = watch(client)
      const perFiber = 40
      // 64 fibers: 2560 reads, two and a half turns' budget.
      const wrong = yield* Effect.forEach(Array.from({ length: 64 }, (_, f) => f), (f) =>
        Effect.gen(function*() {
          const buffer = new Uint8Array(4096)
          let bad = 0
          for (let i = 0; i < perFiber; i++) {
            const at = ((f + i) % 64) * 4096
            if ((yield* uring.readInto(file, at, buffer)) !== 4096 || Buffer.compare(buffer, data.subarray(at, at + 4096)) !== 0) bad++
          }
          return bad
        }), { concurrency: "unbounded" })
      expect(wrong.reduce((a, b) => a + b, 0)).toBe(0)
      expect(seen.ring).toBe(0)
      // Each refused read is tried again once, after its turn.
      expect(seen.cached).toBeGreaterThan(64 * perFiber)
      expect(seen.cached).toBeLessThan(2 * 64 * perFiber)
    }))

  it.scoped("a turn reads at most its budget and the allowance for reads that waited; the rest go to the ring", () =>
    Effect.gen(function*() {
      const { data, path } = cachedFile(yield* tempDir(), "crowd", 4096)
      const { client, uring } = yield* makeWithClient()
      const file = yield* uring.open(path)
      const seen = watch(client)
      // One 8-byte read per fiber: the first turn's budget reads the first fibers', the rest wait;
      // the next turn reads its budget and the allowance for waited reads, and the ring the rest.
      const fibers = CACHED_PER_TURN + CACHED_PER_TURN + WAITED_PER_TURN + 50
      const reads = yield* Effect.forEach(Array.from({ length: fibers }, (_, f) => f), (f) =>
        Effect.suspend(() => {
          const buffer = new Uint8Array(8)
          const at = (f % 512) * 8
          return Effect.map(uring.readInto(file, at, buffer), (n) => n === 8 && Buffer.compare(buffer, data.subarray(at, at + 8)) === 0)
        }), { concurrency: "unbounded" })
      expect(reads.every(Boolean)).toBe(true)
      expect(seen.ring).toBe(50)
    }))

  it.scoped("a read interrupted while it waits for the next turn is never done", () =>
    Effect.gen(function*() {
      const { path } = cachedFile(yield* tempDir(), "late", 4096)
      const { client, uring } = yield* makeWithClient()
      const file = yield* uring.open(path)
      const seen = watch(client)
      const spare = new Uint8Array(8)
      // Spend the turn's budget without letting the loop turn.
      for (let i = 0; i < CACHED_PER_TURN; i++) yield* uring.readInto(file, 0, spare)
      const target = new Uint8Array(4096).fill(0xee)
      const before = seen.cached
      const reader = yield* Effect.fork(uring.readInto(file, 0, target))
      // Let it run up to its wait (a refused try), still before the turn.
      while (seen.cached === before) yield* Effect.yieldNow()
      yield* Fiber.interrupt(reader)
      yield* realSleep(30)
      expect(seen.cached).toBe(before + 1)
      expect(seen.ring).toBe(0)
      expect(target.every((b) => b === 0xee)).toBe(true)
    }))

  it.scoped("past the turn's budget, a read on a ring that has been closed fails at once, without waiting a turn", () =>
    Effect.gen(function*() {
      const { closeRing, file, uring } = yield* fileOutlivingItsRing(cachedFile(yield* tempDir(), "spent", 4096).path)
      const buffer = new Uint8Array(16)
      // Spend the turn's budget, then close the ring before the loop turns.
      for (let i = 0; i < CACHED_PER_TURN; i++) yield* uring.readInto(file, 0, buffer)
      yield* closeRing
      // Done before the effect returns: runSyncExit would die on a suspension.
      const exit = Effect.runSyncExit(uring.readInto(file, 0, buffer))
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      expect(Option.map(failure, (error) => error._tag)).toEqual(Option.some("RingClosed"))
    }))

  it.scoped("a cached read on a ring that has been closed fails with RingClosed", () =>
    Effect.gen(function*() {
      const { closeRing, file, uring } = yield* fileOutlivingItsRing(cachedFile(yield* tempDir(), "f", 4096).path)
      expect(yield* uring.readInto(file, 0, new Uint8Array(16))).toBe(16)
      yield* closeRing
      const error = yield* Effect.flip(uring.readInto(file, 0, new Uint8Array(16)))
      expect(error._tag).toBe("RingClosed")
      const batch = yield* Effect.flip(uring.readBatch(file, [{ offset: 0, length: 16 }]))
      expect(batch._tag).toBe("RingClosed")
    }))
  it.scoped("readFile: a cached file is read here with no op; one cached in part is finished by the ring, a name never looked up looked up there", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const { client, uring } = yield* makeWithClient()
      const before = fdCount()
      const small = cachedFile(dir, "small", 5000)
      const seen = watch(client)
      const files = watchFiles(client)
      expect(Buffer.compare(yield* uring.readFile(small.path), small.data)).toBe(0)
      expect({ files, ring: seen.ring }).toEqual({ files: { here: 1, kept: 0, failed: 0 }, ring: 0 })

      // Cached up to block 2 of 16: those here, the fd kept, the rest through the ring.
      const { data, path } = cachedFile(dir, "partly", 16 * 4096)
      const file = yield* uring.open(path)
      Fs.fdatasyncSync(file.fd)
      yield* uring.fadvise(file, 0, 0, "random")
      // DONTNEED skips pages something else holds for a moment (a busy machine): try again.
      let attempt = 0
      do {
        yield* uring.fadvise(file, 0, 0, "dontNeed")
        cacheRange(file.fd, 2 * 4096)
        Object.assign(seen, { cached: 0, ring: 0, ringBytes: [], batches: [] })
        Object.assign(files, { here: 0, kept: 0, failed: 0 })
        expect(Buffer.compare(yield* uring.readFile(path), data)).toBe(0)
      } while (++attempt < 50 && seen.ring === 0)
      expect(files).toEqual({ here: 1, kept: 1, failed: 0 })
      expect(seen.ring).toBeGreaterThan(0)

      yield* uring.close(file)

      // A name never looked up is not in the dentry cache: the ring's op looks it up (and finds it
      // missing). Once looked up, the cached answer is given here.
      const missing = Path.join(dir, "missing")
      Object.assign(seen, { cached: 0, ring: 0, ringBytes: [], batches: [] })
      Object.assign(files, { here: 0, kept: 0, failed: 0 })
      expect((yield* Effect.flip(uring.readFile(missing)))._tag).toBe("NotFound")
      expect({ files, ring: seen.ring }).toEqual({ files: { here: 0, kept: 0, failed: 0 }, ring: 1 })
      expect((yield* Effect.flip(uring.readFile(missing)))._tag).toBe("NotFound")
      expect({ files, ring: seen.ring }).toEqual({ files: { here: 0, kept: 0, failed: 1 }, ring: 1 })
      expect(fdCount()).toBe(before)
    }))

  it.scoped("readFile: a fiber that only ever reads cached files still lets the event loop turn", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const small = cachedFile(dir, "small", 4096)
      const { client, uring } = yield* makeWithClient()
      const files = watchFiles(client)
      let fired = false
      setTimeout(() => fired = true, 20)
      let reads = 0
      let wrong = 0
      while (!fired && reads < 1_000_000) {
        reads++
        if (Buffer.compare(yield* uring.readFile(small.path), small.data) !== 0) wrong++
      }
      expect(fired).toBe(true)
      expect(reads).toBeLessThan(200_000)
      expect(files.here).toBeGreaterThan(0)
      expect(wrong).toBe(0)
    }))

  describe("readBatch", () => {
    it.scoped("cached ranges are read here in the batch's one call, with no ring op; off, the ring reads them all", () =>
      Effect.gen(function*() {
        // Ends 100 bytes into its fourth page.
        const { data, path } = cachedFile(yield* tempDir(), "f", 3 * 4096 + 100)
        const ranges = [
          { offset: 4096, length: 4096 },
          // Short inside a page: the end of the file, answered here.
          { offset: 3 * 4096 - 50, length: 4096 },
          { offset: 5 * 4096, length: 10 },
          { offset: 7, length: 0 },
          { offset: 0, length: 8192 }
        ]
        for (const cachedReads of [true, false]) {
          const { client, uring } = yield* makeWithClient({ cachedReads })
          const file = yield* uring.open(path)
          const seen = watch(client)
          // Done before the effect returns when read here: runSyncExit would die on a suspension.
          const slices = cachedReads ? Effect.runSync(uring.readBatch(file, ranges)) : yield* uring.readBatch(file, ranges)
          expect(slices.map((slice) => slice.length)).toEqual([4096, 150, 0, 0, 8192])
          expect(batchMatches(data, ranges, slices)).toBe(true)
          expect({ batches: seen.batches, ring: seen.ring }).toEqual(cachedReads ? { batches: [0], ring: 0 } : { batches: [], ring: 1 })
        }
      }))

    it.scoped("ranges not cached, or cached in part, are one op to the ring; the others keep what was read here", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir()
        const { data, path } = cachedFile(dir, "partly", 64 * 4096)
        const { client, uring } = yield* makeWithClient()
        const file = yield* uring.open(path)
        Fs.fdatasyncSync(file.fd)
        // No readahead: reading a block caches just that block.
        yield* uring.fadvise(file, 0, 0, "random")
        const seen = watch(client)
        // Blocks 0 and 2 cached: block 1 is not, blocks 2-3 only in part, so two ranges are the ring's.
        const ranges = [
          { offset: 0, length: 4096 },
          { offset: 4096, length: 4096 },
          { offset: 2 * 4096, length: 2 * 4096 },
          { offset: 2 * 4096 + 10, length: 100 }
        ]
        const buffer = new Uint8Array(8192 + 4096 + 4096 + 100)
        // DONTNEED skips pages something else holds for a moment (a busy machine): try again, a
        // moment later.
        for (let attempt = 0; attempt < 50 && !(seen.batches.length === 1 && seen.batches[0] === 2); attempt++) {
          if (attempt > 0) yield* realSleep(10)
          yield* uring.fadvise(file, 0, 0, "dontNeed")
          for (const block of [0, 2]) cacheRange(file.fd, 4096, block * 4096)
          Object.assign(seen, { cached: 0, ring: 0, ringBytes: [], batches: [] })
          buffer.fill(0xee)
          const slices = yield* uring.readBatch(file, ranges, { buffer })
          expect(batchMatches(data, ranges, slices)).toBe(true)
        }
        expect({ batches: seen.batches, ring: seen.ring }).toEqual({ batches: [2], ring: 1 })
      }))

    it.scoped("a cached batch through a released slot, or another ring's, is refused before any read", () =>
      Effect.gen(function*() {
        const { path } = cachedFile(yield* tempDir(), "slots", 8192)
        const { client, uring } = yield* makeWithClient({ registeredFiles: 4 })
        const other = yield* makeWithClient({ registeredFiles: 4 })
        const seen = watch(client)
        const ranges = [{ offset: 0, length: 4096 }, { offset: 4096, length: 4096 }]
        const foreign = yield* other.uring.register(yield* other.uring.open(path))
        const slotScope = yield* Scope.make()
        const released = yield* Scope.extend(uring.register(yield* uring.open(path)), slotScope)
        expect((yield* uring.readBatch(released, ranges)).map((slice) => slice.length)).toEqual([4096, 4096])
        yield* Scope.close(slotScope, Exit.void)
        const ringBefore = seen.ring
        for (const file of [released, foreign]) {
          const outcome = yield* Effect.either(uring.readBatch(file, ranges))
          const reason = Either.isLeft(outcome) && outcome.left._tag === "InvalidArgument" ? outcome.left.reason : "not refused"
          expect(reason).toMatch(file === foreign ? /another ring/ : /released/)
        }
        // Only the first batch was read, here; the refused ones reached neither this thread nor the ring.
        expect({ batches: seen.batches, ring: seen.ring - ringBefore }).toEqual({ batches: [0], ring: 0 })
      }))

    it.scoped("a batch on a file open for writing only gets the ring's answer: BadDescriptor", () =>
      Effect.gen(function*() {
        const { path } = cachedFile(yield* tempDir(), "w", 8192)
        const { client, uring } = yield* makeWithClient()
        const file = yield* uring.open(path, { flag: "a" })
        const seen = watch(client)
        const error = yield* Effect.flip(uring.readBatch(file, [{ offset: 0, length: 4096 }, { offset: 4096, length: 4096 }]))
        expect(error._tag).toBe("BadDescriptor")
        // Tried here (EBADF leaves both to the ring), then read by the ring, which reported it.
        expect({ batches: seen.batches, ring: seen.ring }).toEqual({ batches: [2], ring: 1 })
      }))

    it.scoped("a fiber that only ever reads cached batches still lets the event loop turn", () =>
      Effect.gen(function*() {
        const { data, path } = cachedFile(yield* tempDir(), "loop", 64 * 4096)
        const { client, uring } = yield* makeWithClient()
        const file = yield* uring.open(path)
        const seen = watch(client)
        let fired = false
        setTimeout(() => fired = true, 20)
        const ranges = Array.from({ length: 16 }, (_, i) => ({ offset: ((i * 7) % 64) * 4096, length: 4096 }))
        const buffer = new Uint8Array(16 * 4096)
        let batches = 0
        let wrong = 0
        while (!fired && batches < 100_000) {
          batches++
          if (!batchMatches(data, ranges, yield* uring.readBatch(file, ranges, { buffer }))) wrong++
        }
        expect(fired).toBe(true)
        expect(batches).toBeLessThan(20_000)
        expect(seen.batches.filter((left) => left === 0).length).toBeGreaterThan(0)
        // Past the turn's budget a batch is not tried here.
        expect(seen.batches).toContain(undefined)
        expect(wrong).toBe(0)
      }))
  })
})
