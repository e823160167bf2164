/**
 * `UringFileSystem.layerWithFallback`: io_uring where a ring can be created, Node's file system otherwise, with one log
 * line saying which and why. The real refusal is tested in an unprivileged child process run while
 * `kernel.io_uring_disabled` is 1, which refuses only processes without CAP_SYS_ADMIN outside `kernel.io_uring_group`.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Logger } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import { UringFileSystem } from "../../src/index.js"

const SYSCTL = "/proc/sys/kernel/io_uring_disabled"
const GROUP_SYSCTL = "/proc/sys/kernel/io_uring_group"
/**
 * Who the refused child runs as: no capabilities, and a group of its own. While io_uring is disabled, the io_uring
 * group is nobody's (65534), so the unprivileged children other test files run in parallel (uid and gid 65534) can
 * still create rings, and root processes can anyway: only this child is refused.
 */
const REFUSED = { uid: 65534, gid: 65533 }
const ALLOWED_GROUP = "65534"
const child = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "fixtures", "fallback-child.ts")
const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")

interface ChildReport {
  readonly backend: "io_uring" | "node"
  readonly text: string
  readonly logs: Array<string>
}

/** Builds the fallback layer in this process, capturing its log lines. */
const choose = (env: Record<string, string>, layer = UringFileSystem.layerWithFallback) =>
  Effect.gen(function*() {
    const logs: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      logs.push(`${logLevel.label}: ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    const backend = yield* Effect.map(FileSystem.FileSystem, UringFileSystem.isUringFileSystem).pipe(
      Effect.provide(layer),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    )
    return { backend: backend ? "io_uring" : "node", logs }
  })

const runChildSync = (env: NodeJS.ProcessEnv, ids: { uid?: number; gid?: number } = {}): ChildReport => {
  const result = spawnSync(process.execPath, ["--import", "tsx", child], { ...ids, cwd: root, env, encoding: "utf8", timeout: 60_000 })
  if (result.status !== 0) throw new Error(`child failed (${result.status}): ${result.stderr}`)
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!) as ChildReport
}

/** The current value of a sysctl, failing with what the test needs if it cannot also write it. */
const writableSysctl = (path: string): string => {
  try {
    const value = Fs.readFileSync(path, "utf8").trim()
    Fs.accessSync(path, Fs.constants.W_OK)
    return value
  } catch (error) {
    throw new Error(
      `this test needs to write ${path} (root on a kernel with kernel.io_uring_disabled, 6.6+), and cannot: ${String(error)}`
    )
  }
}

/**
 * Runs the unprivileged child with io_uring disabled for it only while it builds its layer: it loads first and says
 * `ready`; then the sysctls go to 1 and the allowed group, the child builds the layer and says `built`, and the old
 * values come back at once (and in any case in `finally`).
 */
const runChildWithIoUringDisabled = async (): Promise<{ report: ChildReport; valueDuring: string }> => {
  const old = writableSysctl(SYSCTL)
  const oldGroup = writableSysctl(GROUP_SYSCTL)
  const restore = () => {
    Fs.writeFileSync(SYSCTL, old)
    Fs.writeFileSync(GROUP_SYSCTL, oldGroup)
  }
  const proc = spawn(process.execPath, ["--import", "tsx", child, "--wait"], { ...REFUSED, cwd: root, stdio: ["pipe", "pipe", "pipe"] })
  let stderr = ""
  proc.stderr.on("data", (data) => (stderr += String(data)))
  const exited = new Promise<number | null>((resolve) => {
    proc.on("close", resolve)
    // Spawning failed: no "close" follows an "error" without a process.
    proc.on("error", (error) => {
      stderr += String(error)
      resolve(null)
    })
  })
  const lines = Readline.createInterface({ input: proc.stdout })
  const next = (() => {
    const queue: Array<string> = []
    const waiting: Array<(line: string) => void> = []
    lines.on("line", (line) => {
      const waiter = waiting.shift()
      if (waiter) waiter(line)
      else queue.push(line)
    })
    exited.then(() => {
      for (const waiter of waiting.splice(0)) waiter("")
    })
    return () => queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise<string>((r) => waiting.push(r))
  })()
  let valueDuring = ""
  try {
    const ready = await next()
    if (ready !== "ready") throw new Error(`child did not start: ${ready} ${stderr}`)
    try {
      Fs.writeFileSync(GROUP_SYSCTL, ALLOWED_GROUP)
      Fs.writeFileSync(SYSCTL, "1")
      valueDuring = Fs.readFileSync(SYSCTL, "utf8").trim()
      proc.stdin.end("go\n")
      const built = await next()
      if (built !== "built") throw new Error(`child did not build its layer: ${built} ${stderr}`)
    } finally {
      restore()
    }
    const report = await next()
    const code = await exited
    if (code !== 0) throw new Error(`child failed (${code}): ${stderr}`)
    return { report: JSON.parse(report) as ChildReport, valueDuring }
  } finally {
    restore()
    proc.kill()
  }
}

describe("UringFileSystem.layerWithFallback", () => {
  it.effect("uses io_uring where a ring can be created, and says so", () =>
    Effect.gen(function*() {
      const chosen = yield* choose({})
      expect(chosen.backend).toBe("io_uring")
      expect(chosen.logs).toHaveLength(1)
      expect(chosen.logs[0]).toMatch(/^INFO: UringFileSystem: using io_uring/)
    }))

  it.effect("URING_DISABLE=1 forces Node's file system, and says why", () =>
    Effect.gen(function*() {
      const chosen = yield* choose({ URING_DISABLE: "1" })
      expect(chosen.backend).toBe("node")
      expect(chosen.logs).toEqual([
        "INFO: UringFileSystem: using Node's FileSystem because URING_DISABLE=1 forces the fallback"
      ])
      expect((yield* choose({ URING_DISABLE: "0" })).backend).toBe("io_uring")
    }))

  it.effect("invalid ring settings fall back to Node's file system, and the log says the settings are why", () =>
    Effect.gen(function*() {
      const chosen = yield* choose({}, UringFileSystem.layerWithFallbackConfig({ ringSize: 0 }))
      expect(chosen.backend).toBe("node")
      expect(chosen.logs).toHaveLength(1)
      expect(chosen.logs[0]).toMatch(
        /^WARN: UringFileSystem: using Node's FileSystem because the ring configuration is invalid: invalid configuration ringSize: /
      )
    }))

  it("a child process with URING_DISABLE=1 in its environment gets Node's file system", () => {
    const report = runChildSync({ ...process.env, URING_DISABLE: "1" })
    expect(report).toMatchObject({ backend: "node", text: "works" })
    const normal = runChildSync({ ...process.env, URING_DISABLE: "" })
    expect(normal).toMatchObject({ backend: "io_uring", text: "works" })
  })

  it("an unprivileged child process run while kernel.io_uring_disabled=1 falls back to Node's file system, and logs the refusal", async () => {
    const before = [Fs.readFileSync(SYSCTL, "utf8").trim(), Fs.readFileSync(GROUP_SYSCTL, "utf8").trim()]
    // The same child as the same user gets io_uring while it is allowed: the refusal below is the sysctl's.
    expect(runChildSync({ ...process.env, URING_DISABLE: "" }, REFUSED)).toMatchObject({ backend: "io_uring", text: "works" })
    const { report, valueDuring } = await runChildWithIoUringDisabled()
    expect(valueDuring).toBe("1")
    expect(report.backend).toBe("node")
    expect(report.text).toBe("works")
    expect(report.logs).toHaveLength(1)
    expect(report.logs[0]).toMatch(/^WARN: UringFileSystem: using Node's FileSystem because io_uring is unavailable: /)
    expect(report.logs[0]).toContain("EPERM")
    expect([Fs.readFileSync(SYSCTL, "utf8").trim(), Fs.readFileSync(GROUP_SYSCTL, "utf8").trim()]).toEqual(before)
  })
})
