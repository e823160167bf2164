import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { copyFile } from "../examples/copy-file.js"
import { main as quickstart } from "../examples/quickstart.js"
import { main as scopedResources } from "../examples/scoped-resources.js"
import { main as typedErrors } from "../examples/typed-errors.js"
import { Uring } from "../src/index.js"
import { pattern, tempDir } from "./helpers/fixtures.js"

describe("examples", () => {
  it.effect("quickstart writes, reads back, stats, renames and removes", () =>
    Effect.gen(function*() {
      const { dir, meta, text } = yield* quickstart
      expect(text).toBe("hello from io_uring\n")
      expect(meta.size).toBe(20n)
      expect(meta.type).toBe("File")
      expect(Fs.existsSync(dir)).toBe(false)
    }))

  it.scoped("copy-file copies a multi-chunk file byte for byte", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("copy-example-")
      const from = Path.join(dir, "from")
      const data = pattern(5 * (1 << 20) + 123, 13)
      Fs.writeFileSync(from, data)
      const copied = yield* copyFile(from, Path.join(dir, "to")).pipe(Effect.provide(Uring.layer()))
      expect(copied).toBe(data.length)
      expect(Buffer.compare(Fs.readFileSync(Path.join(dir, "to")), data)).toBe(0)
    }))

  it.live("scoped-resources releases fds on success, failure and interruption", () =>
    Effect.gen(function*() {
      const report = yield* scopedResources
      expect(report.map((r) => r.how)).toEqual(["succeed", "fail", "interrupt"])
      for (const entry of report) {
        expect(entry.inside).toBe(1)
        expect(entry.after).toBe(0)
      }
    }))

  it.effect("typed-errors recovers by tag", () =>
    Effect.gen(function*() {
      const outcomes = yield* typedErrors
      expect(outcomes[0]).toBe("missing size: -1")
      expect(outcomes[1]).toBe("mkdir again: already there (EEXIST)")
      expect(outcomes[2]).toBe("exclusive open: exists")
      expect(outcomes[3]).toMatch(/^refused: offset /)
    }))

  it("the README's demo command runs", () => {
    const result = spawnSync("npm", ["run", "--silent", "demo"], { encoding: "utf8", cwd: Path.join(import.meta.dirname, "..") })
    expect(result.status).toBe(0)
    expect(result.stdout).toContain('read back: "hello from io_uring\\n"')
  })
})
