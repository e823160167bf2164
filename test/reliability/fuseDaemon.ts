/**
 * The FUSE daemon of the reliability tests (crates/uring-core/examples/fuse_hold.rs), a process of
 * its own: a file whose reads wait until told, so the thread reading waits on them however the
 * ring cancels. Needs root (mount), as CI has.
 */
import { Effect, type Scope } from "effect"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

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

/** How the daemon serves its file (`fuse_hold`'s options). */
export interface Serving {
  /** Bytes of the file: 4096 unless said. */
  readonly size?: number
  /** The file is opened for direct I/O (`FOPEN_DIRECT_IO`) and read a page per request. */
  readonly directIo?: boolean
  /** Every byte of page n is n + 1 (mod 256), not 0x5a. */
  readonly numbered?: boolean
  /** Every read is answered at once, none held. */
  readonly answer?: boolean
  /** Opens of the file are held too (counted by `held`), and answered after ten seconds if not released. */
  readonly holdOpens?: boolean
}

/** The byte at `offset` of a file served `numbered`. */
export const numberedByte = (offset: number): number => (Math.floor(offset / 4096) + 1) % 256

const argsOf = (serving: Serving): Array<string> => [
  ...(serving.size === undefined ? [] : ["--size", String(serving.size)]),
  ...(serving.directIo ? ["--direct-io"] : []),
  ...(serving.numbered ? ["--numbered"] : []),
  ...(serving.answer ? ["--answer"] : []),
  ...(serving.holdOpens ? ["--hold-opens"] : [])
]

export interface Daemon {
  /** The FUSE file: 4096 bytes of 0x5a unless served otherwise. */
  readonly file: string
  /** Reads (and opens, with `holdOpens`) the daemon holds back so far. */
  readonly held: () => number
  /** Answers the held reads and opens, and later ones at once. */
  readonly release: () => void
}

/** Starts the daemon; the scope's end stops it (unmounting), or kills it and detaches its mount. */
export const fuseDaemonServing = (serving: Serving): Effect.Effect<Daemon, never, Scope.Scope> => Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ child: ChildProcess; daemon: Daemon; dir: string }>((resolve, reject) => {
      const child = spawn(daemonExecutable(), argsOf(serving), { stdio: ["pipe", "pipe", "inherit"] })
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

/** The daemon serving its 4096 bytes of 0x5a, every read held until released. */
export const fuseDaemon: Effect.Effect<Daemon, never, Scope.Scope> = fuseDaemonServing({})

/**
 * How many of this process's threads that run ops sleep on the held page where only a fatal signal
 * wakes them (state D): the kernel's io-wq workers, and the ring's off-ring threads, which copy
 * FUSE files with plain reads (crates/uring-core/src/off_ring.rs).
 */
export const threadsWaitingOnDaemon = (): number =>
  Fs.readdirSync("/proc/self/task").filter((task) => {
    try {
      const comm = Fs.readFileSync(`/proc/self/task/${task}/comm`, "utf8")
      const stat = Fs.readFileSync(`/proc/self/task/${task}/stat`, "utf8")
      const runsOps = comm.startsWith("iou-wrk") || comm.startsWith("uring-off-ring")
      return runsOps && stat.slice(stat.lastIndexOf(") ") + 2).startsWith("D")
    } catch {
      return false // the task ended meanwhile
    }
  }).length
