/**
 * examples/filesystem-layer.ts gives the same results with Node's layer and with UringFileSystem.layerLive, and they are
 * the expected ones; run as a script, it prints both and says they match.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { spawnSync } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { runBoth } from "../examples/filesystem-layer.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

describe("examples/filesystem-layer.ts", () => {
  it.effect("the program gives the same results through both layers", () =>
    Effect.gen(function*() {
      const { node, uring } = yield* runBoth
      expect(uring).toEqual(node)
      expect(node).toEqual({
        todo: "write the example\nrun it with both layers\n",
        middle: Option.some("2345"),
        afterTruncate: Option.some("01234!"),
        chunks: ["uvwxyzAB", "CDEFGHIJ", "KLMN"],
        todoSize: 42,
        todoType: "File",
        tree: ["backup", "backup/2026", "backup/2026/todo.txt", "letters.txt", "log.txt"],
        missing: "NotFound (readFile)",
        exclusive: "AlreadyExists",
        notesExist: false
      })
    }))

  it("run as a script, it prints both results and that they match", () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", "examples/filesystem-layer.ts"], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000
    })
    expect(result.stderr).toBe("")
    expect(result.status).toBe(0)
    const lines = result.stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^with NodeFileSystem\.layer: +\{"todo"/)
    expect(lines[1]).toMatch(/^with UringFileSystem\.layerLive: \{"todo"/)
    expect(lines[0]!.replace(/^[^{]+/, "")).toBe(lines[1]!.replace(/^[^{]+/, ""))
    expect(lines[2]).toBe("same results: true")
  })
})
