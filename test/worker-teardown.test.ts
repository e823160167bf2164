/**
 * A worker terminated while it holds fds its rings handed to JavaScript: its finalizers never
 * run, so the ring's env cleanup hook closes them, as Node closes a worker's FileHandles. And only
 * those: an fd JavaScript closed before (through a ring, or off it) is not closed again, though
 * its number names another file by then. The worker (fixtures/worker-owned-fds.mjs) runs the
 * service on real files; the parent looks at what its fds name in /proc/self/fd.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Worker } from "node:worker_threads"
import { tempDir } from "./helpers/fixtures.js"

const WORKER = Path.join(import.meta.dirname, "fixtures", "worker-owned-fds.mjs")

/** The fds of this process that name `dir` or a file in it. */
const fdsIn = (dir: string): Array<number> =>
  Fs.readdirSync("/proc/self/fd").map(Number).filter((fd) => {
    try {
      const target = Fs.readlinkSync(`/proc/self/fd/${fd}`)
      return target === dir || target.startsWith(`${dir}/`)
    } catch {
      return false // closed meanwhile, the listing's own among them
    }
  })

/**
 * Starts the fixture worker in `mode` and waits for its first message; terminated when the scope
 * ends, if not before. `trackUnmanagedFds`: Node's own closing of the fds the worker opened with
 * `fs.open` at its exit (on by default).
 */
const startWorker = (mode: string, dir: string, config: object = {}, trackUnmanagedFds = true) =>
  Effect.acquireRelease(
    Effect.async<{ readonly worker: Worker; readonly message: any }, Error>((resume) => {
      const worker = new Worker(WORKER, { workerData: { mode, dir, config }, trackUnmanagedFds })
      worker.once("message", (message) => resume(Effect.succeed({ worker, message })))
      worker.once("error", (error) => resume(Effect.fail(error)))
      worker.once("exit", (code) => resume(Effect.fail(new Error(`the worker exited with ${code} before it was ready`))))
    }),
    ({ worker }) => Effect.promise(() => worker.terminate())
  )

const terminate = (worker: Worker) => Effect.promise(() => worker.terminate())

describe("a worker terminated while it holds fds", () => {
  it.scopedLive("has every fd its scope holds closed: open, openAt, a confined dir's, the FileSystem's", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("effect-uring-teardown-")
      for (const name of ["open", "openAt", "confined", "platform"]) Fs.writeFileSync(Path.join(dir, name), name)
      const { worker } = yield* startWorker("scoped", dir)
      // Four files, the root opened for `openAt` and the confined dir's root.
      expect(fdsIn(dir)).toHaveLength(6)
      yield* terminate(worker)
      expect(fdsIn(dir)).toEqual([])
    }))

  for (const cachedReads of [true, false]) {
    it.scopedLive(`has no fd of a file it was reading with readFile left open (cachedReads: ${cachedReads})`, () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("effect-uring-teardown-")
        // Larger than readFile's first read (16 KiB): each first op leaves the fd to JavaScript.
        Fs.writeFileSync(Path.join(dir, "big"), new Uint8Array(1 << 20).fill(1))
        for (let round = 0; round < 3; round++) {
          const { worker } = yield* startWorker("readFile", dir, { ring: { cachedReads } })
          // Mid-way: reads in flight, and fds left open between their first op and the rest.
          yield* Effect.sleep(`${20 + 20 * round} millis`)
          yield* terminate(worker)
          expect(fdsIn(dir)).toEqual([])
        }
      }))
  }

  for (const closer of ["ring", "iopoll"]) {
    it.scopedLive(`leaves open a plain fd that took the number of one closed through ${closer === "ring" ? "the ring" : "an IOPOLL ring (off the ring)"}`, () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("effect-uring-teardown-")
        for (const name of ["ring", "plain"]) Fs.writeFileSync(Path.join(dir, name), name)
        // Node would close the plain fd itself at the worker's exit: not here, so that a close
        // of its number by the ring's teardown shows.
        const { worker, message } = yield* startWorker("closed", dir, { closer }, false)
        const fd: number = message.fd
        yield* terminate(worker)
        expect(Fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe(Path.join(dir, "plain"))
        Fs.closeSync(fd)
        expect(fdsIn(dir)).toEqual([])
      }))
  }
})
