/**
 * Files changing under the caller: reads loop on a file while another fiber, or another process,
 * truncates it step by step or unlinks it. Every read returns the kernel's result (a short count,
 * 0 at end of file) or a typed error, never garbage: each byte returned equals the original
 * pattern at its offset (or is one of the zeros the kernel itself writes into a page being
 * truncated, see `reader`), nothing past the count is written, and nothing crashes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { FileLike, UringShape } from "../../src/index.js"
import { tempDir } from "../helpers/fixtures.js"
import { makeWithClient, prng, realSleep, seedFromEnv } from "./helpers.js"

const SIZE = 4 << 20
const CANARY = 0
/** A position-dependent pattern with no zero byte, so a zero can only be the canary or a hole. */
const content = (n: number): Uint8Array => {
  const bytes = new Uint8Array(n)
  for (let i = 0; i < n; i++) bytes[i] = ((i * 131 + (i >> 9) * 7 + (i >> 17)) % 255) + 1
  return bytes
}
const ORIGINAL = content(SIZE)

interface Tally {
  reads: number
  /** Fewer bytes than the original file held at that range: the file had shrunk. */
  cut: number
  /** Reads that saw zeros where the pattern was: a truncation zeroing a partial page mid-copy. */
  zeroed: number
  errors: Record<string, number>
}

const bump = (tally: Tally, tag: string) => {
  tally.errors[tag] = (tally.errors[tag] ?? 0) + 1
}

/**
 * Reads in a loop until `stop()`; checks every byte it gets back against the original.
 *
 * A byte may be the original or 0, nothing else. The zeros are the kernel's: truncating to an
 * unaligned size zeroes the tail of the last page, and a read already copying that page (reads
 * take no lock against truncation) returns them. Plain pread(2) in a loop shows the same, about
 * once in 50,000 reads on this machine. The pattern has no zero byte, so anything else the
 * library returned (another op's data, a stale buffer, a wrong offset) is caught.
 */
const reader = (uring: UringShape, file: FileLike, seed: number, stop: () => boolean, tally: Tally) =>
  Effect.gen(function*() {
    const rng = prng(seed)
    while (!stop()) {
      const offset = rng.int(0, SIZE - 1)
      const length = rng.int(1, rng.next() < 0.5 ? 4096 : 1 << 20)
      const available = Math.min(length, SIZE - offset)
      const kind = rng.int(0, 2)
      const check = (bytes: Uint8Array) => {
        const expected = ORIGINAL.subarray(offset, offset + bytes.length)
        let zeroed = false
        for (let j = 0; j < bytes.length; j++) {
          if (bytes[j] === expected[j]) continue
          if (bytes[j] === 0) {
            zeroed = true
            continue
          }
          throw new Error(
            `seed ${seed}: ${["read", "readExact", "readInto"][kind]} at ${offset} (${length} bytes) returned ` +
              `${bytes.length} bytes; byte ${offset + j} is ${bytes[j]}, the file had ${expected[j]} there`
          )
        }
        if (bytes.length > length) throw new Error(`seed ${seed}: ${bytes.length} bytes for a ${length}-byte read`)
        tally.reads++
        if (zeroed) tally.zeroed++
        if (bytes.length < available) tally.cut++
      }
      if (kind === 0) {
        const result = yield* Effect.either(uring.read(file, offset, length))
        if (Either.isRight(result)) check(result.right)
        else bump(tally, result.left._tag)
      } else if (kind === 1) {
        const result = yield* Effect.either(uring.readExact(file, offset, length))
        if (Either.isRight(result)) {
          expect(result.right.length).toBe(length)
          check(result.right)
        } else {
          const error = result.left
          if (error._tag === "UnexpectedEof") {
            expect(error.read).toBeLessThan(length)
            tally.reads++
            if (error.read < available) tally.cut++
          } else {
            bump(tally, error._tag)
          }
        }
      } else {
        const buffer = new Uint8Array(length).fill(CANARY)
        const result = yield* Effect.either(uring.readInto(file, offset, buffer))
        if (Either.isRight(result)) {
          check(buffer.subarray(0, result.right))
          if (!buffer.subarray(result.right).every((b) => b === CANARY)) {
            throw new Error(`seed ${seed}: readInto wrote past the ${result.right} bytes it reported`)
          }
        } else {
          bump(tally, result.left._tag)
        }
      }
    }
  })

const newTally = (): Tally => ({ reads: 0, cut: 0, zeroed: 0, errors: {} })

const add = (total: Tally, tally: Tally) => {
  total.reads += tally.reads
  total.cut += tally.cut
  total.zeroed += tally.zeroed
  for (const [tag, n] of Object.entries(tally.errors)) total.errors[tag] = (total.errors[tag] ?? 0) + n
}

const runReaders = <E>(uring: UringShape, files: ReadonlyArray<FileLike>, seed: number, mutate: Effect.Effect<void, E>) =>
  Effect.gen(function*() {
    let stopped = false
    const tally = newTally()
    const readers = yield* Effect.forEach(files.flatMap((file) => [file, file, file]), (file, i) =>
      Effect.fork(reader(uring, file, seed * 31 + i, () => stopped, tally)))
    yield* mutate
    stopped = true
    yield* Fiber.joinAll(readers)
    // Shrinking or unlinking a file gives short reads and end of file, never an error.
    expect(tally.errors).toEqual({})
    return tally
  })

describe("files changing under the caller", () => {
  it.live("a file truncated step by step by another fiber", () =>
    Effect.scoped(Effect.gen(function*() {
      const seed = seedFromEnv(0x7a11)
      const rng = prng(seed)
      const dir = yield* tempDir("effect-uring-trunc-")
      const { client, uring } = yield* makeWithClient({ ringSize: 64 })
      const total = newTally()
      for (let cycle = 0; cycle < 6; cycle++) {
        const path = Path.join(dir, `f${cycle}`)
        Fs.writeFileSync(path, ORIGINAL)
        yield* Effect.scoped(Effect.gen(function*() {
          const owned = yield* uring.open(path)
          const registered = yield* uring.register(owned)
          const truncator = Fs.openSync(path, "r+")
          const tally = yield* runReaders(uring, [owned, registered], seed + cycle, Effect.gen(function*() {
            // Unaligned sizes: partial pages are the interesting case.
            for (let size = SIZE; size > 0; size -= rng.int(1, 300_000)) {
              Fs.ftruncateSync(truncator, size)
              yield* realSleep(rng.int(0, 2))
            }
            Fs.ftruncateSync(truncator, 0)
            yield* realSleep(5)
          }))
          Fs.closeSync(truncator)
          add(total, tally)
        }))
      }
      expect(total.reads).toBeGreaterThan(100)
      expect(total.cut).toBeGreaterThan(0)
      expect(client.native.inFlight).toBe(0)
      expect(client.native.registeredInUse).toBe(0)
      console.log(`truncated by a fiber: ${JSON.stringify(total)}`)
    })), 60_000)

  it.live("a file unlinked (and then truncated through another fd) while reads loop", () =>
    Effect.scoped(Effect.gen(function*() {
      const seed = seedFromEnv(0x0417)
      const dir = yield* tempDir("effect-uring-unlink-")
      const { client, uring } = yield* makeWithClient({ ringSize: 64 })
      const path = Path.join(dir, "f")
      Fs.writeFileSync(path, ORIGINAL)
      const owned = yield* uring.open(path)
      const registered = yield* uring.register(owned)
      const other = Fs.openSync(path, "r+")
      // Unlinked: the inode lives on through the open fds, so reads still see all of it.
      const afterUnlink = yield* runReaders(uring, [owned, registered], seed, Effect.gen(function*() {
        yield* realSleep(20)
        yield* uring.unlink(path)
        yield* realSleep(100)
      }))
      expect(Fs.existsSync(path)).toBe(false)
      expect(afterUnlink.cut).toBe(0)
      expect(afterUnlink.zeroed).toBe(0)
      // Now shrink the unlinked inode through the other fd.
      const afterTruncate = yield* runReaders(uring, [owned, registered], seed + 1, Effect.gen(function*() {
        for (let size = SIZE; size > 0; size -= 150_001) {
          Fs.ftruncateSync(other, size)
          yield* realSleep(1)
        }
        Fs.ftruncateSync(other, 0)
        yield* realSleep(10)
      }))
      expect(afterTruncate.cut).toBeGreaterThan(0)
      Fs.closeSync(other)
      // Past the end of the now-empty file: 0 bytes, not an error.
      expect((yield* uring.read(owned, 0, 100)).length).toBe(0)
      expect(client.native.inFlight).toBe(0)
      console.log(`unlinked: ${JSON.stringify(afterUnlink)}; then truncated: ${JSON.stringify(afterTruncate)}`)
    })), 60_000)

  it.live("a file truncated and unlinked by another process", () =>
    Effect.scoped(Effect.gen(function*() {
      const seed = seedFromEnv(0x9c55)
      const dir = yield* tempDir("effect-uring-proc-")
      const { client, uring } = yield* makeWithClient({ ringSize: 64 })
      const total = newTally()
      for (let cycle = 0; cycle < 3; cycle++) {
        const path = Path.join(dir, `f${cycle}`)
        Fs.writeFileSync(path, ORIGINAL)
        yield* Effect.scoped(Effect.gen(function*() {
          const owned = yield* uring.open(path)
          const script = `
            const fs = require("node:fs")
            const path = process.argv[1]
            let size = ${SIZE}
            const step = () => {
              size -= 100000 + Math.floor(Math.random() * 100000)
              if (size <= 0) { fs.truncateSync(path, 0); fs.unlinkSync(path); return }
              fs.truncateSync(path, size)
              setTimeout(step, 1)
            }
            setTimeout(step, 20)
          `
          const tally = yield* runReaders(uring, [owned], seed + cycle, Effect.async<void, Error>((resume) => {
            const child = spawn(process.execPath, ["-e", script, path], { stdio: "inherit" })
            // A failure resumes the fiber: thrown from a listener, it would leave the test waiting for its timeout.
            child.on("error", (error) => resume(Effect.fail(error)))
            child.on("exit", (code, signal) =>
              resume(code === 0 ? realSleep(5) : Effect.fail(new Error(`the truncating child exited with ${code ?? signal}`))))
            return Effect.sync(() => child.kill("SIGKILL"))
          }))
          expect(Fs.existsSync(path)).toBe(false)
          expect((yield* uring.read(owned, 0, 10)).length).toBe(0)
          add(total, tally)
        }))
      }
      expect(total.cut).toBeGreaterThan(0)
      expect(client.native.inFlight).toBe(0)
      // The ring is still healthy.
      expect((yield* uring.stat(dir)).isDirectory).toBe(true)
      console.log(`changed by another process: ${JSON.stringify(total)}`)
    })), 60_000)
})
