/**
 * Test fixtures: temp directories, FIFOs, small tmpfs mounts (CI runs as root) and fd counting.
 */
import { Effect, type Scope } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * Reads `length` bytes of `fd` at `offset` through Node, so the page cache holds them when a test
 * expects a read on the calling thread to find them there. Right before that expectation: reclaim
 * (DAMON, on these hosts) drops file pages nothing maps within moments of their read.
 */
export const cacheRange = (fd: number, length: number, offset = 0): void => {
  Fs.readSync(fd, new Uint8Array(length), 0, length, offset)
}

/** A fresh directory removed when the scope ends. */
export const tempDir = (prefix = "effect-uring-test-"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Creates a FIFO at `path`. */
export const mkfifo = (path: string): void => {
  execFileSync("mkfifo", [path])
}

/**
 * A FIFO `fifo` in `dir`, opened read-write: reads from it wait until data is written (no writer
 * ever goes away). The fd is closed when the scope ends.
 */
export const openFifo = (dir: string): Effect.Effect<number, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const path = Path.join(dir, "fifo")
      mkfifo(path)
      return Fs.openSync(path, "r+")
    }),
    (fd) => Effect.sync(() => Fs.closeSync(fd))
  )

/**
 * A tmpfs of `size` (e.g. "1m") mounted on a fresh directory (`at`, if given, created here: its
 * parent must exist and it must not), unmounted and removed when the scope ends.
 */
export const tmpfs = (size: string, options = "", at?: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = at ?? Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-uring-tmpfs-"))
      if (at !== undefined) Fs.mkdirSync(at)
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}${options ? `,${options}` : ""}`, "tmpfs", dir])
      return dir
    }),
    (dir) =>
      Effect.sync(() => {
        execFileSync("umount", ["-l", dir])
        Fs.rmdirSync(dir)
      })
  )

/** procfs mounted on `at` (an empty directory that must exist), unmounted when the scope ends. */
export const procfs = (at: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      execFileSync("mount", ["-t", "proc", "proc", at])
      return at
    }),
    (dir) => Effect.sync(() => execFileSync("umount", ["-l", dir]))
  )

const RING_FD = "anon_inode:[io_uring]"
const EVENT_FD = "anon_inode:[eventfd]"
/** The mount table the engine follows for the process's life once a ring has started (remote_mounts.rs). */
const MOUNT_TABLE = `/proc/${process.pid}/mountinfo`

/** What each open fd of this process names (undefined: closed meanwhile, e.g. the listing's own). */
const fdTargets = (): Array<string | undefined> =>
  Fs.readdirSync("/proc/self/fd").map((fd) => {
    try {
      return Fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      return undefined
    }
  })

/**
 * Open fds of this process, io_uring instances, eventfds and the engine's mount table aside: a
 * closed ring's fd goes when the garbage collector frees the ring, at a moment no test can name
 * (`ringFdCount` counts those), each open ring holds an eventfd its event loop polls
 * (`eventFdCount`, which also counts libuv's own), and the first ring opens the mount table, kept
 * for the process (`mountTableFdCount`).
 */
export const fdCount = (): number =>
  fdTargets().filter((target) =>
    target !== undefined && target !== RING_FD && target !== EVENT_FD && target !== MOUNT_TABLE
  ).length

/** The fds this process holds on its mount table: the engine's one, once a ring has started. */
export const mountTableFdCount = (): number => fdTargets().filter((target) => target === MOUNT_TABLE).length

/** The io_uring instances this process holds an fd of. */
export const ringFdCount = (): number => fdTargets().filter((target) => target === RING_FD).length

/** The eventfds this process holds: one per open ring, and libuv's. */
export const eventFdCount = (): number => fdTargets().filter((target) => target === EVENT_FD).length

/** This process's threads named `name` (a thread's `comm`). */
export const threadsNamed = (name: string): number =>
  Fs.readdirSync("/proc/self/task").filter((task) => {
    try {
      return Fs.readFileSync(`/proc/self/task/${task}/comm`, "utf8").trim() === name
    } catch {
      return false // the thread ended meanwhile
    }
  }).length

/** Bytes 0..n-1 of a repeating, position-dependent pattern. */
export const pattern = (n: number, seed = 7): Uint8Array => {
  const bytes = new Uint8Array(n)
  for (let i = 0; i < n; i++) bytes[i] = (i * seed + (i >> 8)) & 0xff
  return bytes
}
