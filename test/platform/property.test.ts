/**
 * Random sequences of open/write/read/seek/truncate/rename/remove applied to Node's FileSystem and to the io_uring one,
 * each in its own temp directory: every step must give the same result, and the final trees must be the same.
 */
import type * as PlatformError from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Runtime, Scope } from "effect"
import fc from "fast-check"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { BothLayer, bytes, NodeFs, outcome, type Outcome, tree, UringFs } from "./harness.js"

const name = fc.constantFrom("a", "b", "c", "d/e")
const data = fc.string({ minLength: 0, maxLength: 12 })
const size = fc.integer({ min: 0, max: 24 })
/** Lengths to truncate to: mostly below what a few writes leave, so truncation often cuts below the cursor. */
const cut = fc.integer({ min: 0, max: 8 })

type Op =
  | { readonly op: "open"; readonly name: string; readonly flag: FileSystem.OpenFlag }
  | { readonly op: "close" }
  | { readonly op: "write" | "writeAll"; readonly data: string }
  | { readonly op: "read" | "readAlloc"; readonly n: number }
  | { readonly op: "seek"; readonly offset: number; readonly from: FileSystem.SeekMode }
  | { readonly op: "truncateFile"; readonly length: number | undefined }
  | { readonly op: "truncate"; readonly name: string; readonly length: number }
  | { readonly op: "writeFile"; readonly name: string; readonly data: string; readonly flag: FileSystem.OpenFlag }
  | { readonly op: "readFile" | "stat"; readonly name: string }
  | { readonly op: "rename"; readonly from: string; readonly to: string }
  | { readonly op: "remove"; readonly name: string; readonly recursive: boolean; readonly force: boolean }
  | { readonly op: "mkdir"; readonly name: string; readonly recursive: boolean }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("open" as const),
      name,
      flag: fc.constantFrom<FileSystem.OpenFlag>("r", "r+", "w", "w+", "w+", "wx", "a", "a+", "a+")
    })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("close" as const) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constantFrom("write" as const, "writeAll" as const), data }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constantFrom("read" as const, "readAlloc" as const), n: size }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("seek" as const), offset: size, from: fc.constantFrom<FileSystem.SeekMode>("start", "current") })
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("truncateFile" as const), length: fc.option(cut, { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), name, length: size }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("writeFile" as const), name, data, flag: fc.constantFrom<FileSystem.OpenFlag>("w", "a", "wx", "r+") })
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("readFile" as const, "stat" as const), name }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("rename" as const), from: name, to: name }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("remove" as const),
      name: fc.constantFrom("a", "b", "c", "d", "d/e"),
      recursive: fc.boolean(),
      force: fc.boolean()
    })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mkdir" as const), name: fc.constantFrom("d", "c"), recursive: fc.boolean() }) }
)

/** Most sequences start with a file open for reading and writing, so cursor operations have a file to work on. */
const sequence: fc.Arbitrary<ReadonlyArray<Op>> = fc.tuple(
  fc.constantFrom<FileSystem.OpenFlag | undefined>("w+", "w+", "w+", "a+", "a+", undefined),
  fc.array(op, { minLength: 1, maxLength: 30 })
).map(([flag, ops]) => flag === undefined ? ops : [{ op: "open" as const, name: "a", flag }, ...ops])

/** Applies the operations in order to one file system below `dir`; returns each step's outcome. */
const apply = (fs: FileSystem.FileSystem, dir: string, ops: ReadonlyArray<Op>) =>
  Effect.gen(function*() {
    let handle: { readonly file: FileSystem.File; readonly scope: Scope.CloseableScope } | undefined
    const closeHandle = Effect.suspend(() => {
      const current = handle
      handle = undefined
      return current ? Scope.close(current.scope, Exit.void) : Effect.void
    })
    const p = (n: string) => Path.join(dir, n)
    const noHandle = Effect.succeed("no handle")
    // Members typed `void` are compared as void: Node's leak values through some of them (seek gives the cursor,
    // recursive mkdir the first directory it created).
    const step = (o: Op): Effect.Effect<unknown, PlatformError.PlatformError> => {
      switch (o.op) {
        case "open":
          return Effect.gen(function*() {
            yield* closeHandle
            const scope = yield* Scope.make()
            const file = yield* Scope.extend(fs.open(p(o.name), { flag: o.flag }), scope).pipe(
              Effect.tapError(() => Scope.close(scope, Exit.void))
            )
            handle = { file, scope }
            return "opened"
          })
        case "close":
          return Effect.as(closeHandle, "closed")
        case "write":
          return handle ? handle.file.write(bytes(o.data)) : noHandle
        case "writeAll":
          return handle ? Effect.asVoid(handle.file.writeAll(bytes(o.data))) : noHandle
        case "read": {
          if (!handle) return noHandle
          const buffer = new Uint8Array(o.n)
          return Effect.map(handle.file.read(buffer), (n) => ({ n, buffer }))
        }
        case "readAlloc":
          return handle ? handle.file.readAlloc(o.n) : noHandle
        case "seek":
          return handle ? Effect.asVoid(handle.file.seek(o.offset, o.from)) : noHandle
        case "truncateFile":
          return handle ? Effect.asVoid(handle.file.truncate(o.length)) : noHandle
        case "truncate":
          return Effect.asVoid(fs.truncate(p(o.name), o.length))
        case "writeFile":
          return Effect.asVoid(fs.writeFileString(p(o.name), o.data, { flag: o.flag }))
        case "readFile":
          return fs.readFile(p(o.name))
        case "stat":
          return Effect.map(fs.stat(p(o.name)), (info) => ({ type: info.type, size: info.type === "File" ? info.size : -1 }))
        case "rename":
          return Effect.asVoid(fs.rename(p(o.from), p(o.to)))
        case "remove":
          return Effect.asVoid(fs.remove(p(o.name), { recursive: o.recursive, force: o.force }))
        case "mkdir":
          return Effect.asVoid(fs.makeDirectory(p(o.name), { recursive: o.recursive }))
      }
    }
    const results: Array<Outcome> = []
    for (const o of ops) results.push(yield* outcome(step(o), dir))
    yield* closeHandle
    return results
  })

layer(BothLayer)("FileSystem property: Node vs io_uring", (it) => {
  it.effect("random operation sequences give the same results and the same tree", () =>
    Effect.gen(function*() {
      const node = yield* NodeFs
      const uring = yield* UringFs
      const runtime = yield* Effect.runtime<never>()
      const run = Runtime.runPromise(runtime)
      let runs = 0
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(sequence, async (ops) => {
            runs++
            const nodeDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "property-node-"))
            const uringDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "property-uring-"))
            try {
              const a = await run(apply(node, nodeDir, ops))
              const b = await run(apply(uring, uringDir, ops))
              expect(b).toEqual(a)
              expect(tree(uringDir)).toEqual(tree(nodeDir))
            } finally {
              Fs.rmSync(nodeDir, { recursive: true, force: true })
              Fs.rmSync(uringDir, { recursive: true, force: true })
            }
          }),
          { numRuns: 50 }
        )
      )
      expect(runs).toBeGreaterThanOrEqual(50)
    }))
})
