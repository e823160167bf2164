/**
 * Temporary files and directories of `UringFileSystem` never outlive what they were made for: a
 * scope still holding them when the ring is closed first (a runtime disposed mid-work) removes
 * them through Node, and a temporary file that cannot be made takes its directory with it.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Uring, UringFileSystem } from "../../src/index.js"
import { tempDir } from "../helpers/fixtures.js"

/** The layer built in a scope of its own, which the test closes when it chooses. */
const fileSystemIn = (scope: Scope.Scope) =>
  Effect.map(
    Layer.buildWithScope(UringFileSystem.layer.pipe(Layer.provide(Uring.layer())), scope),
    (context) => Context.get(context, FileSystem.FileSystem)
  )

describe("UringFileSystem temporary entries", () => {
  it.live("scoped ones whose scope ends after the ring's are removed, with no defect", () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir("effect-uring-temp-")
      const ringScope = yield* Scope.make()
      const fs = yield* fileSystemIn(ringScope)
      const userScope = yield* Scope.make()
      const directory = yield* Scope.extend(fs.makeTempDirectoryScoped({ directory: dir }), userScope)
      const file = yield* Scope.extend(fs.makeTempFileScoped({ directory: dir, suffix: ".txt" }), userScope)
      Fs.writeFileSync(Path.join(directory, "inside"), "x")
      expect(Fs.readdirSync(dir)).toHaveLength(2)

      yield* Scope.close(ringScope, Exit.void)
      // The ring is gone: its own ops now fail, so the finalizers must not rely on them.
      expect(Exit.isFailure(yield* Effect.exit(fs.makeDirectory(Path.join(dir, "after"))))).toBe(true)
      const closed = yield* Effect.exit(Scope.close(userScope, Exit.void))
      expect(closed).toStrictEqual(Exit.void)
      expect(Fs.existsSync(directory)).toBe(false)
      expect(Fs.existsSync(Path.dirname(file))).toBe(false)
      expect(Fs.readdirSync(dir)).toEqual([])
    })))

  it.live("one whose file cannot be made leaves no directory behind", () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir("effect-uring-temp-")
      const fs = yield* fileSystemIn(yield* Effect.scope)
      // The suffix names a subdirectory that does not exist: the directory is made, the file's open fails.
      for (const make of [fs.makeTempFile, fs.makeTempFileScoped]) {
        const made = yield* Effect.exit(Effect.scoped(make({ directory: dir, suffix: "/missing/f" })))
        expect(Exit.isFailure(made)).toBe(true)
        expect(Fs.readdirSync(dir)).toEqual([])
      }
    })))
})
