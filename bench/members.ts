/**
 * `UringFileSystem` against `NodeFileSystem`, member by member, as a program switching layers
 * would see it: each case runs `ops` calls with 16 in flight through `FileSystem.FileSystem` on
 * both layers in one process, rounds interleaved, the median rate reported with the ratio.
 * Reads, stats, existence answers and listings are checked.
 *
 *   npm run build:ts && npx tsx bench/members.ts [rounds]      (ONLY=<name prefix> for some cases)
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import { Effect, Layer, ManagedRuntime } from "effect"
import * as NFS from "node:fs"
import * as OS from "node:os"
import * as Path from "node:path"
import { median } from "./common.js"
import { Uring, UringFileSystem } from "./lib.js"

// Eleven: with five, two identical implementations (`copyFile`, Node's in both) still ranged 0.87-1.12x.
const rounds = Number(process.argv[2] ?? 11)
const CONCURRENCY = 16
const FILES = 256
const dir = NFS.mkdtempSync(Path.join(process.env.BENCH_DIR ?? OS.tmpdir(), "effect-uring-members-"))
const content = "x".repeat(1000)
for (let i = 0; i < FILES; i++) NFS.writeFileSync(Path.join(dir, `f${i}`), content)
const at = (name: string) => Path.join(dir, name)

interface Case {
  readonly name: string
  readonly ops: number
  /** One call; `tag` keeps the two layers' files apart. Fails (dies) on a wrong answer. */
  readonly op: (fs: FileSystem.FileSystem, i: number, tag: string) => Effect.Effect<unknown, unknown>
  /** Untimed, before each round of one layer. */
  readonly setup?: (tag: string, ops: number) => void
}

/**
 * `ops` empty files in a directory of their own, made again each round (the listing case reads the
 * main directory, and a round consumes them).
 */
const freshFiles = (name: string) => (tag: string, ops: number) => {
  NFS.rmSync(at(`${name}-${tag}`), { recursive: true, force: true })
  NFS.mkdirSync(at(`${name}-${tag}`))
  for (let i = 0; i < ops; i++) NFS.writeFileSync(at(`${name}-${tag}/${i}`), "")
}

const expect = (ok: boolean, what: string) => ok ? Effect.void : Effect.dieMessage(`wrong result: ${what}`)

const allCases: ReadonlyArray<Case> = [
  { name: "exists (present)", ops: 8000, op: (fs, i) => Effect.flatMap(fs.exists(at(`f${i % FILES}`)), (b) => expect(b, "exists")) },
  { name: "exists (missing)", ops: 4000, op: (fs, i) => Effect.flatMap(fs.exists(at(`m${i % FILES}`)), (b) => expect(!b, "missing")) },
  { name: "stat", ops: 8000, op: (fs, i) => Effect.flatMap(fs.stat(at(`f${i % FILES}`)), (s) => expect(Number(s.size) === 1000, "size")) },
  {
    name: "readFileString",
    ops: 8000,
    op: (fs, i) => Effect.flatMap(fs.readFileString(at(`f${i % FILES}`)), (s) => expect(s === content, "content"))
  },
  { name: "writeFileString", ops: 4000, op: (fs, i, tag) => fs.writeFileString(at(`w-${tag}-${i % 64}`), content) },
  { name: "open + close (scoped)", ops: 4000, op: (fs, i) => Effect.scoped(fs.open(at(`f${i % FILES}`))) },
  { name: "copyFile", ops: 2000, op: (fs, i, tag) => fs.copyFile(at(`f${i % FILES}`), at(`c-${tag}-${i % 64}`)) },
  {
    name: "makeDirectory + remove",
    ops: 2000,
    op: (fs, i, tag) => Effect.zipRight(fs.makeDirectory(at(`d-${tag}-${i}`)), fs.remove(at(`d-${tag}-${i}`), { recursive: true }))
  },
  {
    name: "remove (file)",
    ops: 2000,
    setup: freshFiles("remove"),
    op: (fs, i, tag) => fs.remove(at(`remove-${tag}/${i}`))
  },
  {
    name: "rename",
    ops: 2000,
    setup: freshFiles("rename"),
    op: (fs, i, tag) => fs.rename(at(`rename-${tag}/${i}`), at(`rename-${tag}/${i}.moved`))
  },
  { name: "readDirectory", ops: 400, op: (fs) => Effect.flatMap(fs.readDirectory(dir), (names) => expect(names.length >= FILES, "listing")) }
]

const layers = {
  node: ManagedRuntime.make(NodeFileSystem.layer),
  uring: ManagedRuntime.make(Layer.provide(UringFileSystem.layer, Uring.layer()))
}

const cases = allCases.filter((c) => !process.env.ONLY || c.name.startsWith(process.env.ONLY))
const rows: Array<string> = []
for (const c of cases) {
  const rates: Record<string, Array<number>> = { node: [], uring: [] }
  for (let r = 0; r < rounds; r++) {
    // The second layer of a round meets the file system as the first left it (journal, writeback): alternate which
    // goes first, or a case measures the order (two identical renames measured 0.81x).
    const order = Object.entries(layers)
    for (const [tag, runtime] of r % 2 === 0 ? order : order.reverse()) {
      const program = Effect.flatMap(FileSystem.FileSystem, (fs) =>
        Effect.forEach(Array.from({ length: c.ops }, (_, i) => i), (i) => c.op(fs, i, tag), {
          concurrency: CONCURRENCY,
          discard: true
        }))
      c.setup?.(tag, c.ops)
      const t0 = performance.now()
      await runtime.runPromise(program)
      rates[tag]!.push((c.ops / (performance.now() - t0)) * 1000)
    }
  }
  const node = median(rates.node!)
  const uring = median(rates.uring!)
  rows.push(`| ${c.name} | ${Math.round(node).toLocaleString("en")} | ${Math.round(uring).toLocaleString("en")} | ${(uring / node).toFixed(2)}x |`)
  console.error(`[members] ${c.name}: node ${Math.round(node)}/s, uring ${Math.round(uring)}/s`)
}
for (const runtime of Object.values(layers)) await runtime.dispose()
NFS.rmSync(dir, { recursive: true, force: true })

console.log(`UringFileSystem vs NodeFileSystem, ${CONCURRENCY} calls in flight, median of ${rounds} interleaved rounds (ops/s)

| member | NodeFileSystem | UringFileSystem | ratio |
| --- | ---: | ---: | ---: |
${rows.join("\n")}`)
