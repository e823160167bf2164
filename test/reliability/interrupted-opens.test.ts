/**
 * Interrupted opens and registrations: an open waiting in the kernel (a FIFO with nobody at the
 * other end) is cancelled when its fiber is interrupted, and a storm of interrupted opens and
 * registrations of regular files, some of which succeed before the cancel reaches them, leaves
 * no fd open and no slot in use. Seeded (RELIABILITY_SEED overrides).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { OpenFlags } from "../../src/index.js"
import { fdCount, mkfifo, tempDir } from "../helpers/fixtures.js"
import { forkStorm, makeWithClient, prng, seedFromEnv, type StormOp, waitUntil } from "./helpers.js"

const ROUNDS = 20
const PER_ROUND = 400

type Kind = "open" | "openAt" | "withFile" | "confined" | "register"
const KINDS: ReadonlyArray<Kind> = ["open", "openAt", "withFile", "confined", "register"]

interface Op extends StormOp {
  readonly kind: Kind
}

describe("interrupted opens", () => {
  it.live("an open waiting for a FIFO's other end is cancelled when interrupted, leaving no fd", () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir("effect-uring-open-fifo-")
      const fifo = Path.join(dir, "fifo")
      mkfifo(fifo)
      const { client, uring } = yield* makeWithClient({ ringSize: 64 })
      const confined = yield* uring.openDir(dir)
      const fdsBefore = fdCount()
      // Each opens the FIFO for writing, which blocks in the kernel until it has a reader. With
      // plain O_WRONLY (no O_CREAT), io_uring's first try does not block and fails ENXIO: the
      // engine tries once more on a kernel worker, which waits as open(2) does.
      const writeOnly = { flags: OpenFlags.O_WRONLY }
      const waiting = [
        Effect.scoped(uring.open(fifo, { flag: "a" })),
        Effect.scoped(uring.openAt(confined.fd, "fifo", { flag: "a" })),
        uring.withFile(fifo, { flag: "a" }, () => Effect.void),
        Effect.scoped(confined.open("fifo", { flag: "a" })),
        Effect.scoped(uring.open(fifo, writeOnly)),
        Effect.scoped(confined.open("fifo", writeOnly))
      ]
      const fibers = yield* Effect.forEach(waiting, (effect) => Effect.fork(effect))
      expect(yield* waitUntil(() => client.native.inFlight === waiting.length, 5_000)).toBe(true)
      const interrupting = yield* Effect.fork(Fiber.interruptAll(fibers))
      const ended = yield* waitUntil(() => fibers.every((fiber) => fiber.unsafePoll() !== null), 5_000)
      if (!ended) {
        // Let the opens finish so the test ends either way: a reader for the FIFO.
        const reader = Fs.openSync(fifo, Fs.constants.O_RDONLY | Fs.constants.O_NONBLOCK)
        yield* Fiber.join(interrupting)
        Fs.closeSync(reader)
      }
      expect(ended, "interrupting the opens waited for the FIFO to get its other end").toBe(true)
      for (const fiber of fibers) expect(Exit.isInterrupted(yield* Fiber.await(fiber))).toBe(true)
      expect(client.pending).toBe(0)
      expect(fdCount()).toBe(fdsBefore)
    })))

  it.live(`${ROUNDS * PER_ROUND} opens and registrations of regular files, a random half interrupted: no fd or slot left`, () =>
    Effect.scoped(Effect.gen(function*() {
      const seed = seedFromEnv(0x5eed_0031)
      const rng = prng(seed)
      const dir = yield* tempDir("effect-uring-open-storm-")
      Fs.writeFileSync(Path.join(dir, "f"), "x")
      const path = Path.join(dir, "f")
      const { client, uring } = yield* makeWithClient({ registeredFiles: 64 })
      const confined = yield* uring.openDir(dir)
      const fdsBefore = fdCount()
      let interrupted = 0
      let finishedFirst = 0

      const effectOf = (op: Op): Effect.Effect<unknown, unknown> => {
        switch (op.kind) {
          case "open":
            return Effect.scoped(uring.open(path))
          case "openAt":
            return Effect.scoped(uring.openAt(confined.fd, "f"))
          case "withFile":
            return uring.withFile(path, {}, () => Effect.void)
          case "confined":
            return Effect.scoped(confined.open("f"))
          case "register":
            return Effect.scoped(Effect.flatMap(uring.open(path), uring.register))
        }
      }

      for (let round = 0; round < ROUNDS; round++) {
        const ops = Array.from({ length: PER_ROUND }, (): Op => {
          const moment = rng.int(0, 2)
          return {
            kind: KINDS[rng.int(0, KINDS.length - 1)]!,
            interrupt: rng.next() < 0.5,
            moment,
            delay: moment === 1 ? rng.int(1, 20) : rng.int(0, 2)
          }
        })
        const { fibers, interrupted: exits } = yield* forkStorm(ops, effectOf)
        yield* Fiber.joinAll(fibers.filter((_, i) => !ops[i]!.interrupt))
        for (const { exit } of exits) {
          if (Exit.isSuccess(exit)) finishedFirst++
          else {
            expect(Exit.isInterrupted(exit), `seed ${seed}: ${String(exit.cause)}`).toBe(true)
            interrupted++
          }
        }
        expect(client.pending, `seed ${seed}`).toBe(0)
        expect(fdCount(), `seed ${seed}: round ${round} left fds open`).toBe(fdsBefore)
        expect(client.native.registeredInUse, `seed ${seed}: round ${round} left slots in use`).toBe(0)
      }
      // How many finished before their interruption varies with the machine's load: only reported.
      expect(interrupted).toBeGreaterThan(0)
      console.log(`open storm: seed ${seed}, ${interrupted} interrupted, ${finishedFirst} finished first`)
    })), 60_000)
})
