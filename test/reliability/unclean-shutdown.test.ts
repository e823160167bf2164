/**
 * A shutdown that gives up on an op the kernel cannot cancel: a read of a FUSE file whose daemon
 * (crates/uring-core/examples/fuse_hold.rs, a process of its own) holds the answer back, so a
 * kernel worker waits on the page however the ring cancels. The layer's close keeps to its
 * deadline and says so in a warning; the read's fiber resumes once the kernel is done with the
 * read instead of waiting for ever. Needs root (mount), as CI has.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Fiber, Logger, LogLevel, Option, Scope } from "effect"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Worker } from "node:worker_threads"
import { make } from "../../src/index.js"
import { realSleep, waitUntil } from "./helpers.js"

const manifest = Path.join(import.meta.dirname, "..", "..", "crates", "uring-core", "Cargo.toml")

/** The daemon's executable: `cargo test` has built it already in CI, which makes this a no-op. */
const daemonExecutable = (): string => {
  const messages = execFileSync(
    "cargo",
    ["build", "--release", "--example", "fuse_hold", "--manifest-path", manifest, "--message-format=json-render-diagnostics"],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }
  )
  const artifact = messages.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line))
    .find((message) => message.reason === "compiler-artifact" && message.target?.name === "fuse_hold")
  if (typeof artifact?.executable !== "string") throw new Error("cargo built no fuse_hold executable")
  return artifact.executable
}

interface Daemon {
  /** The FUSE file, 4096 bytes of 0x5a. */
  readonly file: string
  /** Reads the daemon holds back so far. */
  readonly held: () => number
  /** Answers the held reads, and later ones at once. */
  readonly release: () => void
}

/** Starts the daemon; the scope's end stops it (unmounting), or kills it and detaches its mount. */
const fuseDaemon: Effect.Effect<Daemon, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ child: ChildProcess; daemon: Daemon; dir: string }>((resolve, reject) => {
      const child = spawn(daemonExecutable(), [], { stdio: ["pipe", "pipe", "inherit"] })
      let held = 0
      let pending = ""
      child.on("error", reject)
      // Ended before mounting (no /dev/fuse, not root): fail now, not at the test's timeout.
      child.once("exit", (code, signal) => reject(new Error(`fuse_hold ended before it was ready (${signal ?? code})`)))
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        pending += chunk
        let end: number
        while ((end = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, end)
          pending = pending.slice(end + 1)
          if (line === "held") held++
          else if (line.startsWith("ready ")) {
            const dir = line.slice("ready ".length)
            resolve({
              child,
              dir,
              daemon: { file: Path.join(dir, "f"), held: () => held, release: () => child.stdin!.write("release\n") }
            })
          }
        }
      })
    })
  ),
  ({ child, dir }) =>
    Effect.promise(() =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const killer = setTimeout(() => child.kill("SIGKILL"), 5_000)
        child.on("exit", () => {
          clearTimeout(killer)
          // Killed, it left its mount behind (with a dead connection): detach it.
          if (Fs.existsSync(dir) && Fs.readFileSync("/proc/self/mountinfo", "utf8").includes(` ${dir} `)) {
            spawnSync("umount", ["-l", dir])
          }
          resolve()
        })
        child.stdin!.end()
      })
    )
).pipe(Effect.map(({ daemon }) => daemon))

/** Whether one of this process's io-wq workers sleeps where only a fatal signal wakes it (state D). */
const kernelWorkerWaiting = (): boolean =>
  Fs.readdirSync("/proc/self/task").some((task) => {
    try {
      const comm = Fs.readFileSync(`/proc/self/task/${task}/comm`, "utf8")
      const stat = Fs.readFileSync(`/proc/self/task/${task}/stat`, "utf8")
      return comm.startsWith("iou-wrk") && stat.slice(stat.lastIndexOf(") ") + 2).startsWith("D")
    } catch {
      return false // the task ended meanwhile
    }
  })

describe("a shutdown that gives up on an op the kernel cannot cancel", () => {
  it.live("closes by its deadline with a warning, and the read's fiber resumes when the kernel is done", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemon
      const warnings: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel === LogLevel.Warning) warnings.push(String(message))
        })
      )
      const ringScope = yield* Scope.make()
      // Provided where the layer is made: its finalizer logs with what was in place then.
      const uring = yield* Scope.extend(make({ shutdownTimeoutMs: 200 }), ringScope).pipe(Effect.provide(capture))
      // In the test's scope, which outlives the ring: its fd is then closed without it.
      const file = yield* uring.open(daemon.file)
      // A daemon fiber: were it never resumed, interrupting it at the test's end would wait for
      // the kernel for ever, where this test should fail on the timeout below.
      const read = yield* Effect.forkDaemon(uring.read(file, 0, 16))
      expect(yield* waitUntil(() => daemon.held() > 0, 5_000), "the read reached the daemon").toBe(true)
      // A cancel that found the read still queued for a worker would end it at once.
      expect(yield* waitUntil(kernelWorkerWaiting, 5_000), "a kernel worker waits on the held page").toBe(true)

      const started = Date.now()
      yield* Scope.close(ringScope, Exit.void)
      expect(Date.now() - started, "the close kept to its deadline").toBeLessThan(5_000)
      expect(warnings.filter((warning) => warning.includes("still in the kernel"))).toHaveLength(1)
      expect(read.unsafePoll(), "the read waits: the kernel still has it").toBeNull()

      daemon.release()
      const resumed = yield* Effect.either(Effect.timeout(Fiber.await(read), "10 seconds"))
      expect(Either.isRight(resumed), "the read's fiber resumed once the kernel was done with it").toBe(true)
      const exit = Either.getOrThrow(resumed)
      if (Exit.isSuccess(exit)) {
        // The kernel finished the read after all: its bytes are the file's.
        expect(Array.from(exit.value)).toEqual(Array.from({ length: 16 }, () => 0x5a))
      } else {
        // Or honoured the cancel on the way out (ECANCELED after the close, or EINTR).
        const tag = Option.map(Cause.failureOption(exit.cause), (error) => error._tag)
        expect(["RingClosed", "Canceled"]).toContain(Option.getOrElse(tag, () => Cause.pretty(exit.cause)))
      }
    })))

  it.live("a worker whose ring gave up on a read ends only once the kernel is done with it", () =>
    Effect.scoped(Effect.gen(function*() {
      const daemon = yield* fuseDaemon
      const worker = new Worker(Path.join(import.meta.dirname, "..", "fixtures", "worker-stuck-read.mjs"), {
        workerData: { file: daemon.file }
      })
      let exitCode: number | undefined
      worker.on("exit", (code) => exitCode = code)
      const messages: Array<{ readonly clean?: boolean; readonly inFlight: number }> = []
      worker.on("message", (message) => messages.push(message))
      yield* Effect.addFinalizer(() => Effect.promise(() => worker.terminate()))
      // Runs before the terminate above (finalizers run last first): a failing check must not
      // leave the worker's teardown waiting on a read the daemon holds until its own finalizer.
      yield* Effect.addFinalizer(() => Effect.sync(daemon.release))
      expect(yield* waitUntil(() => messages.length === 1, 5_000), "the worker submitted its read").toBe(true)
      expect(yield* waitUntil(() => daemon.held() > 0, 5_000), "the read reached the daemon").toBe(true)
      expect(yield* waitUntil(kernelWorkerWaiting, 5_000), "a kernel worker waits on the held page").toBe(true)

      worker.postMessage("close")
      expect(yield* waitUntil(() => messages.length === 2, 5_000), "the worker's close returned").toBe(true)
      expect(messages[1]).toEqual({ clean: false, inFlight: 1 })
      // Its teardown waits for the kernel, which still has the read and its buffer.
      yield* realSleep(300)
      expect(exitCode, "the worker ended while the kernel still had its read").toBeUndefined()

      // Whichever of the completion thread and the teardown's own reaping takes the read (timing
      // decides), the worker ends; the gate in delivery.rs is what keeps the first from calling
      // into a threadsafe function Node frees after the teardown, which this does not force.
      daemon.release()
      expect(yield* waitUntil(() => exitCode !== undefined, 10_000), "the worker ended once the read was done").toBe(true)
      expect(exitCode).toBe(0)
      // The process is healthy: a ring of this thread reads.
      const uring = yield* make()
      expect((yield* uring.readFile("/etc/hostname")).length).toBe(Fs.statSync("/etc/hostname").size)
    })))
})
