/**
 * What opens of local files cost while a FUSE file system is mounted, when the engine sends the
 * opens that may reach it to a kernel worker (crates/uring-core/src/remote_mounts.rs): a scoped
 * `Uring.open` and its close of a file on the local disk, at 1 and 64 in flight, with no FUSE
 * mount and with the test daemon's mounted (test/reliability/fuseDaemon.ts; needs root), in
 * alternating rounds, beside Node's `fs.promises` open and close. Median µs per open and close.
 *
 *   npm run build:ts && npx tsx bench/fuse-opens.ts [rounds]
 */
import { Effect, Exit, Scope } from "effect"
import * as NFS from "node:fs"
import * as FSP from "node:fs/promises"
import * as OS from "node:os"
import * as Path from "node:path"
import { fuseDaemonServing } from "../test/reliability/fuseDaemon.js"
import { median } from "./common.js"
import { Uring } from "./lib.js"

const rounds = Number(process.argv[2] ?? 5)
const OPENS = 20_000
const dir = NFS.mkdtempSync(Path.join(process.env.BENCH_DIR ?? OS.tmpdir(), "effect-uring-fuse-opens-"))
const path = Path.join(dir, "f")
NFS.writeFileSync(path, "x")

/** µs per open and close of `open` run `OPENS` times, `qd` at a time. */
const timed = (qd: number, open: Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const started = performance.now()
    yield* Effect.forEach(Array.from({ length: qd }), () => Effect.repeatN(open, OPENS / qd - 1), {
      concurrency: qd,
      discard: true
    })
    return ((performance.now() - started) * 1000) / OPENS
  })

const program = Effect.gen(function*() {
  const uring = yield* Uring
  const service = Effect.scoped(uring.open(path))
  const node = Effect.promise(() => FSP.open(path).then((handle) => handle.close()))
  const samples = new Map<string, Array<number>>()
  const add = (name: string, us: number) => samples.set(name, [...(samples.get(name) ?? []), us])
  for (let round = 0; round < rounds; round++) {
    for (const qd of [1, 64]) {
      add(`Uring.open, no FUSE mount, ${qd} in flight`, yield* timed(qd, service))
      add(`fs.promises open, ${qd} in flight`, yield* timed(qd, node))
    }
    // The mount table changes as the daemon mounts; the engine follows it (remote_mounts.rs).
    const scope = yield* Scope.make()
    yield* Scope.extend(fuseDaemonServing({ answer: true }), scope)
    yield* Effect.sleep("100 millis")
    for (const qd of [1, 64]) add(`Uring.open, a FUSE mount, ${qd} in flight`, yield* timed(qd, service))
    yield* Scope.close(scope, Exit.void)
    yield* Effect.sleep("100 millis")
  }
  console.log(`| open + close (${rounds} rounds of ${OPENS}, medians) | µs |\n| --- | ---: |`)
  for (const [name, us] of samples) console.log(`| ${name} | ${median(us).toFixed(1)} |`)
})

await Effect.runPromise(program.pipe(Effect.provide(Uring.layer())))
NFS.rmSync(dir, { recursive: true, force: true })
