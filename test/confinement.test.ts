/**
 * `openDir`: the classic escapes all fail closed, checked by the kernel.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { type InvalidArgument, type OpenFlag, type OpenOptions, Uring } from "../src/index.js"
import { tempDir, tmpfs } from "./helpers/fixtures.js"

const SWAP_LOOP = `
import os, sys
sub, parked, trap = sys.argv[1:4]
while True:
    os.rename(sub, parked); os.rename(trap, sub); os.rename(sub, trap); os.rename(parked, sub)
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
      const attempts = [
        Effect.scoped(dir.open("../outside/secret.txt")),
        Effect.scoped(dir.open(secret)),
        Effect.scoped(dir.open("abs-link/secret.txt")),
        Effect.scoped(dir.open("rel-link/secret.txt")),
        Effect.scoped(dir.open("chain")),
        Effect.scoped(dir.open("dotdot-link")),
        Effect.scoped(dir.open("sub/../../outside/secret.txt")),
        dir.stat("../outside/secret.txt"),
        dir.stat("chain"),
        dir.stat("rel-link/secret.txt", { followSymlinks: false }),
        dir.mkdir("../outside/made"),
        dir.mkdir("abs-link/made"),
        dir.unlink("rel-link/secret.txt"),
        dir.unlink(secret),
        dir.rename("sub/inside.txt", "../outside/stolen.txt"),
        dir.rename("rel-link/secret.txt", "stolen.txt"),
        dir.symlink("/etc/passwd", "abs-link/planted"),
        dir.link("abs-link/secret.txt", "stolen.txt"),
        dir.link("sub/inside.txt", "rel-link/leaked.txt"),
        Effect.scoped(dir.open("../outside/new.txt", { flag: "wx" }))
      ]
      for (const attempt of attempts) {
        const result = yield* Effect.either(attempt)
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) {
          expect(result.left._tag).toBe("Escape")
          expect(result.left.message).toContain(root)
        }
      }
      // Nothing outside was touched.
      expect(Fs.readdirSync(outside)).toEqual(["secret.txt"])
      expect(Fs.readFileSync(secret, "utf8")).toBe("secret")
      expect(Fs.existsSync(Path.join(root, "stolen.txt"))).toBe(false)
      // /proc magic links are refused too.
      const magic = yield* Effect.either(Effect.scoped(dir.open(`/proc/self/fd/${dir.fd.fd}`)))
      expect(Either.isLeft(magic)).toBe(true)
      // Operating on ".." itself is refused before submission.
      expect((yield* Effect.flip(dir.rmdir("sub/..")))._tag).toBe("InvalidArgument")
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
      Fs.mkdirSync(mount)
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
      // Another process swaps root/sub between the real directory and a symlink to the outside.
      const swapper = spawn("python3", ["-c", SWAP_LOOP, realSub, parked, trap], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => swapper.kill("SIGKILL")))
      let opened = 0
      let escapes = 0
      for (let i = 0; i < 3000; i++) {
        const result = yield* Effect.either(Effect.scoped(Effect.flatMap(dir.open("sub/secret.txt"), (file) => uring.fstat(file))))
        if (Either.isRight(result)) {
          opened++
          expect(result.right.ino).not.toBe(BigInt(secretIno))
        } else if (result.left._tag === "Escape") {
          escapes++
        } else {
          expect(result.left._tag).toBe("NotFound")
        }
      }
      swapper.kill("SIGKILL")
      expect(opened + escapes).toBeGreaterThan(0)
    }))
})
