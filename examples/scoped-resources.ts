/**
 * File descriptors and registrations belong to scopes: they are released when the scope ends,
 * whether it succeeds, fails or is interrupted.
 */
import { Console, Effect, Fiber } from "effect"
import * as Fs from "node:fs"
import { Uring } from "../src/index.js"

/** Open fds, not counting the layer's own ring and eventfd (open for the whole run, released when its scope closes). */
const openFds = () =>
  Fs.readdirSync("/proc/self/fd").filter((fd) => {
    try {
      const target = Fs.readlinkSync(`/proc/self/fd/${fd}`)
      return target !== "anon_inode:[io_uring]" && target !== "anon_inode:[eventfd]"
    } catch {
      return false // the directory's own fd, closed by now
    }
  }).length

/** Opens and registers `path` in a scope that then ends as `how` says; returns fds open inside. */
const useAndEnd = (path: string, how: "succeed" | "fail" | "interrupt") =>
  Effect.gen(function*() {
    const uring = yield* Uring
    let inside = 0
    const work = Effect.scoped(Effect.gen(function*() {
      const file = yield* uring.open(path)
      yield* uring.register(file)
      inside = openFds()
      if (how === "fail") return yield* Effect.fail("failed on purpose")
      if (how === "interrupt") return yield* Effect.never
    }))
    if (how === "interrupt") {
      const fiber = yield* Effect.fork(work)
      while (inside === 0) yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
    } else {
      yield* Effect.ignore(work)
    }
    return inside
  })

export const main = Effect.gen(function*() {
  const before = openFds()
  const report: Array<{ how: string; inside: number; after: number }> = []
  for (const how of ["succeed", "fail", "interrupt"] as const) {
    const inside = yield* useAndEnd("/etc/hostname", how)
    report.push({ how, inside: inside - before, after: openFds() - before })
    yield* Console.log(`${how}: ${inside - before} fd open inside the scope, ${openFds() - before} after it`)
  }
  return report
}).pipe(Effect.provide(Uring.layer()))

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(main).catch((error) => {
    console.error(String(error))
    process.exitCode = 1
  })
}
