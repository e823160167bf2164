/**
 * Bad input: every refused input of the README's "Arguments refused before anything reaches the
 * kernel" table, through every method that takes it, fails with the table's typed error
 * (InvalidArgument, RingClosed, InvalidConfig), and nothing is submitted: the ring client's
 * submit never returns a token for it, nothing is pending, the native ring has nothing in
 * flight, and no completion batch arrives afterwards.
 *
 * Each test collects every mismatch before asserting, so one run lists all of them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Layer, Option, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { AtFlags, make, OwnedFd, RegisteredFile, Uring, type UringShape } from "../../src/index.js"
import type { RingClient } from "../../src/internal/RingClient.js"
import { fdCount, tempDir } from "../helpers/fixtures.js"
import { makeWithClient, outcomeOf, realSleep } from "./helpers.js"

const CWD = AtFlags.AT_FDCWD

interface Case {
  readonly name: string
  readonly effect: Effect.Effect<unknown, { readonly _tag: string }, Scope.Scope>
}


/** Counts submissions the client accepted (a submit that returned instead of throwing). */
const countSubmissions = (client: RingClient) => {
  const counter = { accepted: 0 }
  const submit = client.submit.bind(client)
  client.submit = (start, onResult, keep) => {
    const submitted = submit(start, onResult, keep)
    counter.accepted++
    return submitted
  }
  return counter
}

/** Runs every case; returns the mismatches (wrong outcome, or something was submitted). */
const runCases = (client: RingClient | undefined, expected: string, cases: ReadonlyArray<Case>) =>
  Effect.gen(function*() {
    const counter = client === undefined ? { accepted: 0 } : countSubmissions(client)
    const batches = client?.batches ?? 0
    const mismatches: Array<string> = []
    for (const c of cases) {
      const before = counter.accepted
      const got = outcomeOf(yield* Effect.exit(Effect.scoped(c.effect)))
      if (got !== expected) mismatches.push(`${c.name}: ${got}`)
      if (counter.accepted !== before) mismatches.push(`${c.name}: submitted`)
    }
    if (client !== undefined) {
      // Nothing is pending, and no completion arrives later.
      yield* realSleep(20)
      if (client.pending !== 0) mismatches.push(`${client.pending} ops pending`)
      if (client.native.inFlight !== 0) mismatches.push(`${client.native.inFlight} ops in flight`)
      if (client.batches !== batches) mismatches.push(`${client.batches - batches} completion batches arrived`)
    }
    return { mismatches, count: cases.length }
  })

const badNumbers: ReadonlyArray<[string, number | bigint]> = [
  ["-1", -1],
  ["-1n", -1n],
  ["1.5", 1.5],
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["-Infinity", Number.NEGATIVE_INFINITY],
  ["-0.5", -0.5]
]
const beyond2to53: ReadonlyArray<[string, number | bigint]> = [
  ["2^53", 2 ** 53],
  ["2^53 + 2", 2 ** 53 + 2],
  ["2n^53", 2n ** 53n],
  ["2n^63", 2n ** 63n],
  ["2^64", 2 ** 64],
  ["2n^64", 2n ** 64n],
  ["Number.MAX_VALUE", Number.MAX_VALUE]
]
const overReadLimit: ReadonlyArray<[string, number | bigint]> = [
  ["2 GiB - 4 KiB + 1", 0x7ffff001],
  ["2^31", 2 ** 31],
  ["2n^40", 2n ** 40n]
]

const resizable = () => new Uint8Array(new (ArrayBuffer as any)(8, { maxByteLength: 16 }) as ArrayBuffer)
const detached = () => {
  const backing = new ArrayBuffer(8)
  const view = new Uint8Array(backing)
  structuredClone(backing, { transfer: [backing] })
  return view
}
const detachedSubarray = () => {
  const backing = new ArrayBuffer(64)
  const view = new Uint8Array(backing, 8, 16)
  structuredClone(backing, { transfer: [backing] })
  return view
}

/** Every method that takes a file (fd-based), with the file as the only variable. */
const fileMethods = (uring: UringShape, file: any): Array<[string, Effect.Effect<unknown, any, Scope.Scope>]> => [
  ["read", uring.read(file, 0, 1)],
  ["readInto", uring.readInto(file, 0, new Uint8Array(1))],
  ["readExact", uring.readExact(file, 0, 1)],
  ["write", uring.write(file, 0, new Uint8Array(1))],
  ["writeAll", uring.writeAll(file, 0, new Uint8Array(1))],
  ["fsync", uring.fsync(file)],
  ["fdatasync", uring.fdatasync(file)],
  ["fstat", uring.fstat(file)],
  ["fallocate", uring.fallocate(file, 0, 1)],
  ["fadvise", uring.fadvise(file, 0, 1, "normal")],
  ["ftruncate", uring.ftruncate(file, 1)]
]

/** Every method that takes a directory handle, with the directory as the only variable. */
const dirMethods = (uring: UringShape, dir: any, name: string): Array<[string, Effect.Effect<unknown, any, Scope.Scope>]> => [
  ["openAt", uring.openAt(dir, name)],
  ["statAt", uring.statAt(dir, name)],
  ["renameAt from", uring.renameAt(dir, name, CWD, `${name}-2`)],
  ["renameAt to", uring.renameAt(CWD, `${name}-2`, dir, name)],
  ["unlinkAt", uring.unlinkAt(dir, name)],
  ["mkdirAt", uring.mkdirAt(dir, name)],
  ["symlinkAt", uring.symlinkAt("target", dir, name)],
  ["linkAt from", uring.linkAt(dir, name, CWD, `${name}-2`)],
  ["linkAt to", uring.linkAt(CWD, `${name}-2`, dir, name)]
]

/** Every method that takes a path, with one path argument bad and the others fine. */
const pathMethods = (uring: UringShape, bad: string, ok: string): Array<[string, Effect.Effect<unknown, any, Scope.Scope>]> => [
  ["open", uring.open(bad)],
  ["openAt", uring.openAt(CWD, bad)],
  ["stat", uring.stat(bad)],
  ["stat (no follow)", uring.stat(bad, { followSymlinks: false })],
  ["statAt", uring.statAt(CWD, bad)],
  ["rename from", uring.rename(bad, ok)],
  ["rename to", uring.rename(ok, bad)],
  ["renameAt from", uring.renameAt(CWD, bad, CWD, ok)],
  ["renameAt to", uring.renameAt(CWD, ok, CWD, bad)],
  ["unlink", uring.unlink(bad)],
  ["unlinkAt", uring.unlinkAt(CWD, bad)],
  ["rmdir", uring.rmdir(bad)],
  ["mkdir", uring.mkdir(bad)],
  ["mkdirAt", uring.mkdirAt(CWD, bad)],
  ["symlink target", uring.symlink(bad, ok)],
  ["symlink path", uring.symlink(ok, bad)],
  ["symlinkAt target", uring.symlinkAt(bad, CWD, ok)],
  ["symlinkAt path", uring.symlinkAt(ok, CWD, bad)],
  ["link from", uring.link(bad, ok)],
  ["link to", uring.link(ok, bad)],
  ["linkAt from", uring.linkAt(CWD, bad, CWD, ok)],
  ["linkAt to", uring.linkAt(CWD, ok, CWD, bad)]
]

const setup = Effect.gen(function*() {
  const dir = yield* tempDir("effect-uring-bad-input-")
  const path = Path.join(dir, "f")
  Fs.writeFileSync(path, "bad input")
  const { client, uring } = yield* makeWithClient({ registeredFiles: 8 })
  const file = yield* uring.open(path, { flag: "r+" })
  return { dir, path, client, uring, file }
})

const report = ({ count, mismatches }: { count: number; mismatches: Array<string> }) => {
  expect(count).toBeGreaterThan(0)
  expect(mismatches, `${mismatches.length} of ${count} cases`).toEqual([])
}

describe("arguments refused before anything reaches the kernel", () => {
  it.live("negative, fractional, NaN and infinite offsets and lengths; offsets beyond 2^53 (and 2^63)", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, file, uring } = yield* setup
      const cases: Array<Case> = []
      for (const [label, v] of [...badNumbers, ...beyond2to53]) {
        cases.push(
          { name: `read offset ${label}`, effect: uring.read(file, v, 1) },
          { name: `readInto offset ${label}`, effect: uring.readInto(file, v, new Uint8Array(1)) },
          { name: `readExact offset ${label}`, effect: uring.readExact(file, v, 1) },
          { name: `write offset ${label}`, effect: uring.write(file, v, new Uint8Array(1)) },
          { name: `writeAll offset ${label}`, effect: uring.writeAll(file, v, new Uint8Array(1)) },
          { name: `fallocate offset ${label}`, effect: uring.fallocate(file, v, 1) },
          { name: `fallocate length ${label}`, effect: uring.fallocate(file, 0, v) },
          { name: `fadvise offset ${label}`, effect: uring.fadvise(file, v, 1, "normal") },
          { name: `fadvise length ${label}`, effect: uring.fadvise(file, 0, v, "normal") },
          { name: `ftruncate length ${label}`, effect: uring.ftruncate(file, v) }
        )
      }
      for (const [label, v] of [...badNumbers, ...beyond2to53, ...overReadLimit]) {
        cases.push(
          { name: `read length ${label}`, effect: uring.read(file, 0, v) },
          { name: `readExact length ${label}`, effect: uring.readExact(file, 0, v) }
        )
      }
      // Through a registered file too (a different resolution path in the service).
      const registered = yield* uring.register(file)
      for (const [label, v] of badNumbers) {
        cases.push(
          { name: `read(registered) offset ${label}`, effect: uring.read(registered, v, 1) },
          { name: `writeAll(registered) offset ${label}`, effect: uring.writeAll(registered, v, new Uint8Array(1)) },
          { name: `ftruncate(registered) length ${label}`, effect: uring.ftruncate(registered, v) }
        )
      }
      report(yield* runCases(client, "InvalidArgument", cases))
    })))

  it.live("paths with NUL bytes, empty paths, paths of 4096 bytes or more", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, dir, uring } = yield* setup
      const ok = Path.join(dir, "fine")
      const badPaths: ReadonlyArray<[string, string]> = [
        ["NUL inside", Path.join(dir, "a\0b")],
        ["NUL at the end", `${ok}\0`],
        ["only NUL", "\0"],
        ["empty", ""],
        ["4096 ASCII bytes", `/${"a".repeat(4095)}`],
        ["5000 bytes", "x".repeat(5000)],
        ["4096 bytes in 2048 characters (UTF-8)", "é".repeat(2048)]
      ]
      const cases = badPaths.flatMap(([label, bad]) =>
        pathMethods(uring, bad, ok).map(([method, effect]) => ({ name: `${method}: ${label}`, effect }))
      )
      report(yield* runCases(client, "InvalidArgument", cases))
      // The boundary: 4095 bytes is a valid length (the kernel answers, here ENAMETOOLONG for the component).
      const limit = yield* Effect.flip(uring.stat(`/${"a".repeat(4094)}`))
      expect(limit._tag).toBe("NameTooLong")
      expect(Fs.readdirSync(dir)).toEqual(["f"])
    })))

  it.live("a detached or resizable ArrayBuffer behind a buffer", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, file, uring } = yield* setup
      const registered = yield* uring.register(file)
      const buffers: ReadonlyArray<[string, () => Uint8Array]> = [
        ["detached", detached],
        ["detached (a view at an offset)", detachedSubarray],
        ["resizable", resizable],
        ["shared", () => new Uint8Array(new SharedArrayBuffer(8))]
      ]
      const cases: Array<Case> = []
      for (const [label, make] of buffers) {
        for (const target of [file, registered]) {
          const on = target === file ? "fd" : "registered"
          cases.push(
            { name: `readInto(${on}) ${label}`, effect: uring.readInto(target, 0, make()) },
            { name: `write(${on}) ${label}`, effect: uring.write(target, 0, make()) },
            { name: `writeAll(${on}) ${label}`, effect: uring.writeAll(target, 0, make()) }
          )
        }
      }
      report(yield* runCases(client, "InvalidArgument", cases))
    })))

  it.live("readBatch ranges that together exceed the largest Uint8Array (each within the limit)", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, file, uring } = yield* setup
      const registered = yield* uring.register(file)
      const huge = Array.from({ length: 3 }, (_, i) => ({ offset: i * 0x7ffff000, length: 0x7ffff000 }))
      const cases: Array<Case> = [
        { name: "readBatch(fd) of 3 x (2 GiB - 4 KiB)", effect: uring.readBatch(file, huge) },
        { name: "readBatch(registered) of 3 x (2 GiB - 4 KiB)", effect: uring.readBatch(registered, huge) },
        { name: "readBatch of 2^32 + 1 bytes", effect: uring.readBatch(file, [...huge.slice(0, 2), { offset: 0, length: 8193 }]) }
      ]
      report(yield* runCases(client, "InvalidArgument", cases))
      const error = yield* Effect.flip(uring.readBatch(file, huge))
      expect(error).toMatchObject({ _tag: "InvalidArgument", argument: "ranges" })
    })))

  // Minimal reproduction: writeAll slices `data` (data.subarray) before validating it, so a
  // detached buffer throws a TypeError inside Effect.suspend and the fiber dies with a defect.
  it.live("writeAll with a detached buffer fails with InvalidArgument, not a defect", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, file, uring } = yield* setup
      const counter = countSubmissions(client)
      const exit = yield* Effect.exit(uring.writeAll(file, 0, detached()))
      expect(outcomeOf(exit)).toBe("InvalidArgument")
      expect(counter.accepted).toBe(0)
    })))

  it.live("values that are not buffers, fds, offsets or modes at all", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, dir, file, uring } = yield* setup
      const notBuffers: ReadonlyArray<[string, any]> = [
        ["a string", "abc"],
        ["an array", [1, 2, 3]],
        ["an Int16Array", new Int16Array(4)],
        ["a DataView", new DataView(new ArrayBuffer(4))],
        ["null", null]
      ]
      const cases: Array<Case> = []
      for (const [label, value] of notBuffers) {
        cases.push(
          { name: `readInto ${label}`, effect: uring.readInto(file, 0, value) },
          { name: `write ${label}`, effect: uring.write(file, 0, value) },
          { name: `writeAll ${label}`, effect: uring.writeAll(file, 0, value) }
        )
      }
      for (const [label, fd] of [["-1", -1], ["1.5", 1.5], ["2^31", 2 ** 31], ["NaN", Number.NaN], ["'3'", "3"]] as const) {
        for (const [method, effect] of fileMethods(uring, fd)) cases.push({ name: `${method} fd ${label}`, effect })
        cases.push({ name: `close fd ${label}`, effect: uring.close(fd as any) })
        cases.push({ name: `register fd ${label}`, effect: uring.register(fd as any) })
      }
      for (const [method, effect] of dirMethods(uring, -5, Path.join(dir, "x"))) {
        cases.push({ name: `${method} dir -5`, effect })
      }
      for (const [label, offset] of [["'0'", "0"], ["null", null], ["an object", {}]] as const) {
        cases.push({ name: `read offset ${label}`, effect: uring.read(file, offset as any, 1) })
        cases.push({ name: `writeAll offset ${label}`, effect: uring.writeAll(file, offset as any, new Uint8Array(1)) })
      }
      for (const mode of [-1, 0o10000, 1.5]) {
        cases.push({ name: `mkdir mode ${mode}`, effect: uring.mkdir(Path.join(dir, "m"), mode) })
        cases.push({ name: `open mode ${mode}`, effect: uring.open(Path.join(dir, "m"), { flag: "w", mode }) })
      }
      cases.push({ name: "open flag 'rw'", effect: uring.open(Path.join(dir, "m"), { flag: "rw" as any }) })
      for (const advice of ["bogus", "toString", 6, -1, 1.5]) {
        cases.push({ name: `fadvise advice ${String(advice)}`, effect: uring.fadvise(file, 0, 0, advice as any) })
      }
      for (const mode of [-1, 1.5, 2 ** 32, "1"]) {
        cases.push({ name: `fallocate mode ${String(mode)}`, effect: uring.fallocate(file, 0, 1, mode as any) })
      }
      for (const [label, ranges] of [["null", null], ["a range object", { offset: 0, length: 1 }], ["[null]", [null]], ["[1]", [1]]] as const) {
        cases.push({ name: `readBatch ranges ${label}`, effect: uring.readBatch(file, ranges as any) })
      }
      for (const flags of [-1, 1.5, 2 ** 31, "0"]) {
        cases.push({ name: `statAt flags ${String(flags)}`, effect: uring.statAt(file, "x", flags as any) })
      }
      // Values a reason cannot show with JSON.stringify or String.
      cases.push(
        { name: "fadvise advice 5n", effect: uring.fadvise(file, 0, 0, 5n as any) },
        { name: "open flag 5n", effect: uring.open(Path.join(dir, "m"), { flag: 5n as any }) },
        { name: "readBatch ranges without a prototype", effect: uring.readBatch(file, Object.create(null)) }
      )
      report(yield* runCases(client, "InvalidArgument", cases))
    })))

  it.live("open options: raw O_* bits that are not a 32-bit integer, and options that are not an object", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, dir, path, uring } = yield* setup
      const confined = yield* uring.openDir(dir)
      const cases: Array<Case> = []
      // Each once opened the file (1.5 and 2^32 + 2 for writing: 1 and 2 are O_WRONLY and O_RDWR).
      for (const flags of [-1, 1.5, 2 ** 32 + 2, Number.NaN, "1"]) {
        const options = { flags } as any
        cases.push(
          { name: `open flags ${String(flags)}`, effect: uring.open(path, options) },
          { name: `openAt flags ${String(flags)}`, effect: uring.openAt(CWD, path, options) },
          { name: `withFile flags ${String(flags)}`, effect: uring.withFile(path, options, () => Effect.void) },
          { name: `writeFile flags ${String(flags)}`, effect: uring.writeFile(path, new Uint8Array(1), options) },
          { name: `confined open flags ${String(flags)}`, effect: confined.open("f", options) }
        )
      }
      // Node's fs takes a flag string where these take options: read as the defaults, "w" opened
      // for reading and "a" truncated.
      for (const options of ["w", "a", 0o644, true] as Array<any>) {
        cases.push(
          { name: `open options ${String(options)}`, effect: uring.open(path, options) },
          { name: `withFile options ${String(options)}`, effect: uring.withFile(path, options, () => Effect.void) },
          { name: `writeFile options ${String(options)}`, effect: uring.writeFile(path, new Uint8Array(1), options) },
          { name: `rename options ${String(options)}`, effect: uring.rename(path, `${path}2`, options) },
          { name: `confined open options ${String(options)}`, effect: confined.open("f", options) }
        )
      }
      report(yield* runCases(client, "InvalidArgument", cases))
      expect(Fs.readFileSync(path, "utf8")).toBe("bad input")
    })))

  it.live("every other method's options that are not an object, and switches that are not booleans", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, dir, file, path, uring } = yield* setup
      const confined = yield* uring.openDir(dir)
      const link = Path.join(dir, "l")
      Fs.symlinkSync(path, link)
      const other = `${path}2`
      const cases: Array<Case> = []
      // Each once ran as the defaults.
      for (const options of ["w", 0o644, true] as Array<any>) {
        cases.push(
          { name: `stat options ${String(options)}`, effect: uring.stat(path, options) },
          { name: `readFile options ${String(options)}`, effect: uring.readFile(path, options) },
          { name: `readBatch options ${String(options)}`, effect: uring.readBatch(file, [{ offset: 0, length: 1 }], options) },
          { name: `unlinkAt options ${String(options)}`, effect: uring.unlinkAt(CWD, path, options) },
          { name: `linkAt options ${String(options)}`, effect: uring.linkAt(CWD, path, CWD, other, options) },
          { name: `renameAt options ${String(options)}`, effect: uring.renameAt(CWD, path, CWD, other, options) },
          { name: `confined stat options ${String(options)}`, effect: confined.stat("f", options) },
          { name: `confined rename options ${String(options)}`, effect: confined.rename("f", "f2", options) }
        )
      }
      // Each once read as something else: `sync: 1` opened without O_SYNC, `followSymlinks: "false"` followed.
      for (const value of [1, "false", null] as Array<any>) {
        for (const key of ["direct", "sync", "dsync", "noFollow", "directory", "noAtime"]) {
          const options = { flag: "r+", [key]: value } as any
          cases.push(
            { name: `open ${key}: ${String(value)}`, effect: uring.open(path, options) },
            { name: `writeFile ${key}: ${String(value)}`, effect: uring.writeFile(path, new Uint8Array(1), options) },
            { name: `confined open ${key}: ${String(value)}`, effect: confined.open("f", options) }
          )
        }
        cases.push(
          { name: `stat followSymlinks: ${String(value)}`, effect: uring.stat(link, { followSymlinks: value }) },
          { name: `confined stat followSymlinks: ${String(value)}`, effect: confined.stat("l", { followSymlinks: value }) },
          { name: `linkAt followSymlinks: ${String(value)}`, effect: uring.linkAt(CWD, link, CWD, other, { followSymlinks: value }) },
          { name: `unlinkAt removeDir: ${String(value)}`, effect: uring.unlinkAt(CWD, path, { removeDir: value }) },
          { name: `rename noReplace: ${String(value)}`, effect: uring.rename(path, other, { noReplace: value }) },
          { name: `renameAt exchange: ${String(value)}`, effect: uring.renameAt(CWD, path, CWD, other, { exchange: value }) },
          { name: `confined rename noReplace: ${String(value)}`, effect: confined.rename("f", "f2", { noReplace: value }) }
        )
      }
      report(yield* runCases(client, "InvalidArgument", cases))
      expect(Fs.readFileSync(path, "utf8")).toBe("bad input")
      expect(Fs.readdirSync(dir).sort()).toEqual(["f", "l"])
      // The switches' names in the reasons, so a caller sees which one.
      const refused = yield* Effect.flip(uring.open(path, { sync: 1 } as any))
      expect(refused).toMatchObject({ _tag: "InvalidArgument", operation: "open", argument: "sync" })
      expect(refused.message).toContain("must be a boolean (got 1)")
    })))

  it.live("paths of a confined directory that are not strings fail as values, not as throws", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, dir, uring } = yield* setup
      const confined = yield* uring.openDir(dir)
      const cases: Array<Case> = []
      for (const [label, value] of [["5", 5], ["null", null], ["undefined", undefined], ["an object", {}]] as const) {
        const path = value as any
        // Building each effect must not throw: a throw here fails the test outright.
        cases.push(
          { name: `mkdir ${label}`, effect: confined.mkdir(path) },
          { name: `unlink ${label}`, effect: confined.unlink(path) },
          { name: `rmdir ${label}`, effect: confined.rmdir(path) },
          { name: `rename from ${label}`, effect: confined.rename(path, "x") },
          { name: `rename to ${label}`, effect: confined.rename("f", path) },
          { name: `symlink at ${label}`, effect: confined.symlink("f", path) },
          { name: `link to ${label}`, effect: confined.link("f", path) },
          { name: `stat ${label}`, effect: confined.stat(path) },
          { name: `lstat ${label}`, effect: confined.stat(path, { followSymlinks: false }) },
          { name: `open ${label}`, effect: confined.open(path) }
        )
      }
      report(yield* runCases(client, "InvalidArgument", cases))
    })))

  it.live("a RegisteredFile after its scope ended, of another ring, or of a closed OwnedFd; a closed OwnedFd", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, dir, file, path, uring } = yield* setup
      const released = yield* Effect.scoped(uring.register(file))
      expect(released.isReleased).toBe(true)
      // A registration of another, still open ring.
      const other = yield* make({ ringSize: 8, registeredFiles: 8 })
      const foreign = yield* other.register(yield* other.open(path))
      expect(foreign.ringId).not.toBe(uring.ringId)
      // A forged handle with this ring's id but a slot never registered (the binding refuses it).
      const forged = new RegisteredFile(5, file.fd, uring.ringId)
      const closed = yield* Effect.scoped(uring.open(path))
      expect(closed.isClosed).toBe(true)
      const closedExplicitly = yield* uring.open(path)
      yield* uring.close(closedExplicitly)
      // A registration of the directory whose OwnedFd was then closed: the slot lives on, but the
      // number the *At ops would take may name another file now.
      const source = yield* uring.open(dir)
      const orphaned = yield* uring.register(source)
      yield* uring.close(source)

      const cases: Array<Case> = []
      for (const [label, handle] of [["released RegisteredFile", released], ["RegisteredFile of another ring", foreign], [
        "never-registered slot",
        forged
      ]] as const) {
        for (const [method, effect] of fileMethods(uring, handle)) cases.push({ name: `${method}: ${label}`, effect })
      }
      for (const [label, handle] of [["OwnedFd closed by its scope", closed], ["OwnedFd closed by close()", closedExplicitly]] as const) {
        for (const [method, effect] of fileMethods(uring, handle)) cases.push({ name: `${method}: ${label}`, effect })
        for (const [method, effect] of dirMethods(uring, handle, "x")) cases.push({ name: `${method}: ${label}`, effect })
        cases.push({ name: `close: ${label}`, effect: uring.close(handle) })
        cases.push({ name: `register: ${label}`, effect: uring.register(handle) })
      }
      for (const [method, effect] of dirMethods(uring, orphaned, "x")) {
        cases.push({ name: `${method}: RegisteredFile of a closed OwnedFd`, effect })
      }
      cases.push({ name: "fstat: RegisteredFile of a closed OwnedFd", effect: uring.fstat(orphaned) })
      report(yield* runCases(client, "InvalidArgument", cases))
      expect(Fs.readdirSync(dir)).toEqual(["f"])
      expect(file).toBeInstanceOf(OwnedFd)
    })))

  it.live("any call after the layer's scope ended: RingClosed", () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir("effect-uring-closed-")
      const path = Path.join(dir, "f")
      Fs.writeFileSync(path, "closed")
      const fd = Fs.openSync(path, "r+")
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(fd)))
      const at = (name: string) => Path.join(dir, name)
      const everyMethod = (uring: UringShape): Array<Case> => [
        ...fileMethods(uring, fd).map(([name, effect]) => ({ name, effect })),
        { name: "open", effect: uring.open(path) },
        { name: "openAt", effect: uring.openAt(CWD, path) },
        { name: "stat", effect: uring.stat(path) },
        { name: "statAt", effect: uring.statAt(CWD, path) },
        { name: "close", effect: uring.close(fd) },
        { name: "rename", effect: uring.rename(path, at("g")) },
        { name: "renameAt", effect: uring.renameAt(CWD, path, CWD, at("g")) },
        { name: "unlink", effect: uring.unlink(path) },
        { name: "unlinkAt", effect: uring.unlinkAt(CWD, path) },
        { name: "rmdir", effect: uring.rmdir(at("d")) },
        { name: "mkdir", effect: uring.mkdir(at("d")) },
        { name: "mkdirAt", effect: uring.mkdirAt(CWD, at("d")) },
        { name: "symlink", effect: uring.symlink("f", at("s")) },
        { name: "symlinkAt", effect: uring.symlinkAt("f", CWD, at("s")) },
        { name: "link", effect: uring.link(path, at("h")) },
        { name: "linkAt", effect: uring.linkAt(CWD, path, CWD, at("h")) },
        { name: "register", effect: uring.register(fd) },
        { name: "writeAll (empty data)", effect: uring.writeAll(fd, 0, new Uint8Array(0)) },
        { name: "read (length 0)", effect: uring.read(fd, 0, 0) }
      ]
      // make() with the client in reach.
      const scope = yield* Scope.make()
      const { client, uring } = yield* Scope.extend(makeWithClient(), scope)
      const registered = yield* Scope.extend(uring.register(fd), scope)
      yield* Scope.close(scope, Exit.void)
      const viaMake = yield* runCases(client, "RingClosed", [
        ...everyMethod(uring),
        // Its registration was released with the layer: refused either way, never submitted.
        ...fileMethods(uring, registered).map(([name, effect]) => ({ name: `${name} (registered)`, effect }))
      ])
      expect(viaMake.mismatches.filter((m) => !/\(registered\): InvalidArgument$/.test(m))).toEqual([])
      // The public layer.
      const layerScope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(Uring.layer(), layerScope)
      yield* Scope.close(layerScope, Exit.void)
      report(yield* runCases(undefined, "RingClosed", everyMethod(Effect.runSync(Effect.provide(Uring, context)))))
      expect(Fs.readdirSync(dir)).toEqual(["f"])
    })))

  it.live("invalid settings: InvalidConfig from make, Uring.layer and Uring.layerConfig, and no ring is created", () =>
    Effect.gen(function*() {
      // Threads by id: one of a ring closed just before may still be listed, then leave.
      const threadsBefore = new Set(Fs.readdirSync("/proc/self/task"))
      const newThreads = () => Fs.readdirSync("/proc/self/task").filter((id) => !threadsBefore.has(id))
      const fdsBefore = fdCount()
      const configs: ReadonlyArray<[string, Record<string, unknown>]> = [
        ["ringSize", { ringSize: 0 }],
        ["ringSize", { ringSize: -1 }],
        ["ringSize", { ringSize: 32769 }],
        ["ringSize", { ringSize: 1.5 }],
        ["ringSize", { ringSize: Number.NaN }],
        ["ringSize", { ringSize: "16" }],
        ["registeredFiles", { registeredFiles: -1 }],
        ["registeredFiles", { registeredFiles: 2 ** 20 + 1 }],
        ["registeredFiles", { registeredFiles: 0.5 }],
        ["shutdownTimeoutMs", { shutdownTimeoutMs: 0 }],
        ["shutdownTimeoutMs", { shutdownTimeoutMs: 600_001 }],
        ["sqpollIdleMs", { sqpollIdleMs: -1 }],
        ["sqpollIdleMs", { sqpollIdleMs: 60_001 }],
        ["deferTaskrun", { deferTaskrun: true }],
        ["coopTaskrun", { coopTaskrun: "yes" }],
        ["tracing", { tracing: 1 }],
        ["ringsize", { ringsize: 8 }]
      ]
      const mismatches: Array<string> = []
      for (const [setting, config] of configs) {
        const viaMake = yield* Effect.exit(Effect.scoped(make(config as any)))
        const viaLayer = yield* Effect.exit(Effect.scoped(Layer.build(Uring.layer(config as any))))
        const exits: Array<[string, Exit.Exit<unknown, { readonly _tag: string; readonly setting?: string }>]> = [
          ["make", viaMake],
          ["layer", viaLayer]
        ]
        for (const [how, exit] of exits) {
          const got = outcomeOf(exit)
          if (got !== "InvalidConfig" || Exit.isSuccess(exit)) mismatches.push(`${how} ${JSON.stringify(config)}: ${got}`)
          else {
            const error = Cause.failureOption(exit.cause)
            if (Option.isSome(error) && error.value.setting !== setting) {
              mismatches.push(`${how} ${JSON.stringify(config)}: setting ${error.value.setting}`)
            }
          }
        }
      }
      const env: ReadonlyArray<Record<string, string>> = [
        { URING_RING_SIZE: "0" },
        { URING_RING_SIZE: "100000" },
        { URING_DEFER_TASKRUN: "true" },
        { URING_REGISTERED_FILES: "2000000" },
        { URING_SHUTDOWN_TIMEOUT_MS: "0" }
      ]
      for (const vars of env) {
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(Uring.layerConfig())).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))
        ))
        const got = outcomeOf(exit)
        if (got !== "InvalidConfig") mismatches.push(`layerConfig ${JSON.stringify(vars)}: ${got}`)
      }
      expect(mismatches).toEqual([])
      // No ring was created: no io_uring fd, no submission or completion thread.
      expect(fdCount()).toBe(fdsBefore)
      expect(newThreads()).toEqual([])
    }))
})
