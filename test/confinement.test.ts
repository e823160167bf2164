/**
 * `openDir`: the classic escapes all fail closed, checked by the kernel.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Either, Exit, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Worker } from "node:worker_threads"
import { type InvalidArgument, type OpenFlag, type OpenOptions, Uring } from "../src/index.js"
import { procfs, tempDir, tmpfs } from "./helpers/fixtures.js"
import { waitUntil } from "./reliability/helpers.js"

/** Worker thread: swaps `sub` for the `trap` symlink and back until terminated, counting cycles in `cycles[0]`. */
const SWAPPER = `
const { workerData } = require("node:worker_threads")
const { renameSync } = require("node:fs")
const { sub, parked, trap, cycles } = workerData
for (;;) {
  renameSync(sub, parked); renameSync(trap, sub); renameSync(sub, trap); renameSync(parked, sub)
  Atomics.add(cycles, 0, 1)
}
`

/** A root with a file inside, and a sibling "outside" directory holding a secret. */
const sandbox = Effect.gen(function*() {
  const base = yield* tempDir("effect-uring-confined-")
  const root = Path.join(base, "root")
  const outside = Path.join(base, "outside")
  Fs.mkdirSync(Path.join(root, "sub"), { recursive: true })
  Fs.mkdirSync(outside)
  Fs.writeFileSync(Path.join(root, "sub", "inside.txt"), "inside")
  Fs.writeFileSync(Path.join(outside, "secret.txt"), "secret")
  return { base, root, outside }
})

layer(Uring.layer())("openDir", (it) => {
  it.scoped("operations inside the root work", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const { root } = yield* sandbox
      const dir = yield* uring.openDir(root)
      const file = yield* dir.open("sub/inside.txt")
      expect(new TextDecoder().decode(yield* uring.read(file, 0, 100))).toBe("inside")
      expect((yield* dir.stat("sub/inside.txt")).size).toBe(6n)
      yield* dir.mkdir("made")
      const created = yield* dir.open("made/new.txt", { flag: "wx", mode: 0o600 })
      yield* uring.writeAll(created, 0, new TextEncoder().encode("new"))
      yield* dir.rename("made/new.txt", "sub/moved.txt")
      yield* dir.link("sub/moved.txt", "sub/hard.txt")
      yield* dir.symlink("moved.txt", "sub/soft")
      expect((yield* dir.stat("sub/soft", { followSymlinks: false })).type).toBe("SymbolicLink")
      expect((yield* dir.stat("sub/soft")).size).toBe(3n)
      expect(Fs.readFileSync(Path.join(root, "sub", "hard.txt"), "utf8")).toBe("new")
      yield* dir.unlink("sub/hard.txt")
      yield* dir.unlink("sub/soft")
      yield* dir.rmdir("made")
      expect(Fs.existsSync(Path.join(root, "made"))).toBe(false)
      // ".." that stays inside the root is fine.
      expect((yield* dir.stat("sub/../sub/moved.txt")).size).toBe(3n)
    }))

  it.scoped("../, absolute paths and symlinks that lead outside fail with Escape", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const { root, outside } = yield* sandbox
      Fs.symlinkSync(outside, Path.join(root, "abs-link"))
      Fs.symlinkSync("../outside", Path.join(root, "rel-link"))
      Fs.symlinkSync("rel-link/secret.txt", Path.join(root, "chain"))
      Fs.symlinkSync("sub/../../outside/secret.txt", Path.join(root, "dotdot-link"))
      const dir = yield* uring.openDir(root)
      const secret = Path.join(outside, "secret.txt")
      // Each attempt, and the operation and path its Escape names: the one the caller gave.
      const attempts: Array<[Effect.Effect<unknown, { readonly _tag: string; readonly message: string }>, string, string]> = [
        [Effect.scoped(dir.open("../outside/secret.txt")), "open", "../outside/secret.txt"],
        [Effect.scoped(dir.open(secret)), "open", secret],
        [Effect.scoped(dir.open("abs-link/secret.txt")), "open", "abs-link/secret.txt"],
        [Effect.scoped(dir.open("rel-link/secret.txt")), "open", "rel-link/secret.txt"],
        [Effect.scoped(dir.open("chain")), "open", "chain"],
        [Effect.scoped(dir.open("dotdot-link")), "open", "dotdot-link"],
        [Effect.scoped(dir.open("sub/../../outside/secret.txt")), "open", "sub/../../outside/secret.txt"],
        [dir.stat("../outside/secret.txt"), "stat", "../outside/secret.txt"],
        [dir.stat("chain"), "stat", "chain"],
        [dir.stat("rel-link/secret.txt", { followSymlinks: false }), "stat", "rel-link/secret.txt"],
        [dir.mkdir("../outside/made"), "mkdir", "../outside/made"],
        [dir.mkdir("abs-link/made"), "mkdir", "abs-link/made"],
        [dir.unlink("rel-link/secret.txt"), "unlink", "rel-link/secret.txt"],
        [dir.unlink(secret), "unlink", secret],
        [dir.rename("sub/inside.txt", "../outside/stolen.txt"), "rename", "../outside/stolen.txt"],
        [dir.rename("rel-link/secret.txt", "stolen.txt"), "rename", "rel-link/secret.txt"],
        [dir.symlink("/etc/passwd", "abs-link/planted"), "symlink", "abs-link/planted"],
        [dir.link("abs-link/secret.txt", "stolen.txt"), "link", "abs-link/secret.txt"],
        [dir.link("sub/inside.txt", "rel-link/leaked.txt"), "link", "rel-link/leaked.txt"],
        [Effect.scoped(dir.open("../outside/new.txt", { flag: "wx" })), "open", "../outside/new.txt"]
      ]
      for (const [attempt, operation, path] of attempts) {
        const error = yield* Effect.flip(attempt)
        expect(error).toMatchObject({ _tag: "Escape", operation, path, dir: root })
        expect(error.message).toContain(root)
      }
      // Nothing outside was touched.
      expect(Fs.readdirSync(outside)).toEqual(["secret.txt"])
      expect(Fs.readFileSync(secret, "utf8")).toBe("secret")
      expect(Fs.existsSync(Path.join(root, "stolen.txt"))).toBe(false)
      // Operating on ".." itself is refused before submission.
      expect((yield* Effect.flip(dir.rmdir("sub/..")))._tag).toBe("InvalidArgument")
    }))

  it.scoped("kernel errors name the operation and the path the caller gave; a closed directory is refused as the dir", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const { root } = yield* sandbox
      const missingRoot = Path.join(root, "none")
      expect(yield* Effect.flip(Effect.scoped(uring.openDir(missingRoot)))).toMatchObject({
        _tag: "NotFound",
        operation: "openDir",
        path: missingRoot
      })
      const scope = yield* Scope.make()
      const dir = yield* Scope.extend(uring.openDir(root), scope)
      // The ops run on the last name beneath its parent's fd; their errors say what the caller asked.
      const failures: Array<[Effect.Effect<unknown, { readonly _tag: string }>, string, string, string]> = [
        [dir.mkdir("sub/none/made"), "NotFound", "mkdir", "sub/none/made"],
        [dir.mkdir("sub"), "AlreadyExists", "mkdir", "sub"],
        [dir.unlink("sub/none"), "NotFound", "unlink", "sub/none"],
        [dir.rmdir("sub/inside.txt"), "NotADirectory", "rmdir", "sub/inside.txt"],
        [dir.stat("sub/none", { followSymlinks: false }), "NotFound", "stat", "sub/none"],
        [dir.stat("sub/none"), "NotFound", "stat", "sub/none"],
        [Effect.scoped(dir.open("sub/none")), "NotFound", "open", "sub/none"],
        [dir.rename("sub/none", "sub/b"), "NotFound", "rename", "sub/none"],
        [dir.link("sub/inside.txt", "sub"), "AlreadyExists", "link", "sub/inside.txt"],
        [dir.symlink("x", "sub/inside.txt"), "AlreadyExists", "symlink", "sub/inside.txt"]
      ]
      for (const [effect, _tag, operation, path] of failures) {
        expect(yield* Effect.flip(effect)).toMatchObject({ _tag, operation, path })
      }
      yield* Scope.close(scope, Exit.void)
      for (const effect of [dir.mkdir("x"), Effect.scoped(dir.open("x")), dir.stat("x"), dir.rename("a", "b")]) {
        expect(yield* Effect.flip(effect)).toMatchObject({ _tag: "InvalidArgument", argument: "dir" })
      }
    }))

  it.scoped("a /proc magic link inside the root fails with Escape; a symlink loop stays TooManySymlinks", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const { root, outside } = yield* sandbox
      // proc inside the root, so the path is relative and resolves beneath it up to the magic link.
      Fs.mkdirSync(Path.join(root, "proc"))
      yield* procfs(Path.join(root, "proc"))
      const secret = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.openSync(Path.join(outside, "secret.txt"), "r")),
        (fd) => Effect.sync(() => Fs.closeSync(fd))
      )
      Fs.symlinkSync("loop-b", Path.join(root, "loop-a"))
      Fs.symlinkSync("loop-a", Path.join(root, "loop-b"))
      const dir = yield* uring.openDir(root)
      // What proc holds beneath the root is reachable: only the magic link is refused.
      expect((yield* dir.stat("proc/self/status")).type).toBe("File")
      const magic = `proc/self/fd/${secret}`
      for (const attempt of [Effect.scoped(Effect.asVoid(dir.open(magic))), Effect.asVoid(dir.stat(magic))]) {
        expect(yield* Effect.flip(attempt)).toMatchObject({ _tag: "Escape", code: "EXDEV" })
      }
      // Through the magic link as a parent directory too: the name's parent resolves beneath the root first.
      expect(yield* Effect.flip(dir.mkdir("proc/self/cwd/made"))).toMatchObject({ _tag: "Escape" })
      expect(Fs.existsSync(Path.join(process.cwd(), "made"))).toBe(false)
      expect((yield* Effect.flip(Effect.scoped(dir.open("loop-a"))))._tag).toBe("TooManySymlinks")
    }))

  it.scoped("open refuses bad flags and modes inside the Effect, as Uring.open does", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const { root } = yield* sandbox
      const dir = yield* uring.openDir(root)
      const bad: ReadonlyArray<OpenOptions> = [
        { flag: "bogus" as OpenFlag },
        { flag: "w", mode: 0o10000 },
        { flag: "wx", mode: -1 },
        { flag: "r", mode: 1.5 }
      ]
      for (const options of bad) {
        // Building the effect throws nothing; running it fails as the same open outside does.
        const confined = Effect.scoped(dir.open("made.txt", options))
        const direct = yield* Effect.flip(Effect.scoped(uring.open(Path.join(root, "made.txt"), options)))
        expect(direct._tag).toBe("InvalidArgument")
        expect(yield* Effect.flip(confined)).toMatchObject({ _tag: "InvalidArgument", argument: (direct as InvalidArgument).argument })
      }
      expect(Fs.existsSync(Path.join(root, "made.txt"))).toBe(false)
    }))

  it.scoped("a rename or link onto another mount inside the root is CrossDevice, as outside a confined directory", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const { root } = yield* sandbox
      const mount = Path.join(root, "mnt")
      yield* tmpfs("1m", "", mount)
      const inside = Path.join(root, "sub", "inside.txt")
      expect((yield* Effect.flip(uring.rename(inside, Path.join(mount, "moved.txt"))))._tag).toBe("CrossDevice")
      const dir = yield* uring.openDir(root)
      for (const effect of [dir.rename("sub/inside.txt", "mnt/moved.txt"), dir.link("sub/inside.txt", "mnt/hard.txt")]) {
        expect(yield* Effect.flip(effect)).toMatchObject({ _tag: "CrossDevice", code: "EXDEV" })
      }
      expect(Fs.readdirSync(mount)).toEqual([])
      // The mount is inside the root: what resolves through it works.
      const created = yield* dir.open("mnt/new.txt", { flag: "wx" })
      yield* uring.writeAll(created, 0, new TextEncoder().encode("on tmpfs"))
      yield* dir.rename("mnt/new.txt", "mnt/renamed.txt")
      expect(Fs.readFileSync(Path.join(mount, "renamed.txt"), "utf8")).toBe("on tmpfs")
    }))

  it.scoped("a rename race swapping a directory for a symlink never lets an open escape", () =>
    Effect.gen(function*() {
      const uring = yield* Uring
      const { root, outside } = yield* sandbox
      Fs.writeFileSync(Path.join(root, "sub", "secret.txt"), "inside twin")
      const dir = yield* uring.openDir(root)
      const realSub = Path.join(root, "sub")
      const parked = Path.join(root, "parked")
      const trap = Path.join(root, "trap")
      Fs.symlinkSync(outside, trap)
      const secretIno = Fs.statSync(Path.join(outside, "secret.txt")).ino
      // Another thread swaps root/sub between the real directory and a symlink to the outside.
      const cycles = new Int32Array(new SharedArrayBuffer(4))
      const swapper = new Worker(SWAPPER, { eval: true, workerData: { sub: realSub, parked, trap, cycles } })
      let swapperError: unknown
      swapper.on("error", (error) => swapperError = error)
      yield* Effect.addFinalizer(() => Effect.promise(() => swapper.terminate()))
      // Count only once the swaps have started, or the opens may all run before the race does.
      expect(yield* waitUntil(() => Atomics.load(cycles, 0) > 0 || swapperError !== undefined, 10_000)).toBe(true)
      expect(swapperError).toBeUndefined()
      const cyclesBefore = Atomics.load(cycles, 0)
      const outcomes = { opened: 0, Escape: 0, NotFound: 0 }
      for (let i = 0; i < 3000; i++) {
        const result = yield* Effect.either(Effect.scoped(Effect.flatMap(dir.open("sub/secret.txt"), (file) => uring.fstat(file))))
        if (Either.isRight(result)) {
          outcomes.opened++
          // Every open stayed inside the root: it is the inside twin, never the secret.
          expect(result.right.ino).not.toBe(BigInt(secretIno))
        } else {
          expect(["Escape", "NotFound"]).toContain(result.left._tag)
          outcomes[result.left._tag as "Escape" | "NotFound"]++
        }
      }
      // The swaps went on while the opens ran (which outcome each open met is the scheduler's choice).
      expect(swapperError).toBeUndefined()
      expect(Atomics.load(cycles, 0)).toBeGreaterThan(cyclesBefore)
      console.log(`rename race: ${JSON.stringify(outcomes)} in ${Atomics.load(cycles, 0) - cyclesBefore} swap cycles`)
    }))
})
