/**
 * A ring set up with IORING_SETUP_IOPOLL: its kernel refuses IORING_OP_CLOSE, so its `close`
 * goes to close(2). It once marked the handle closed and left the fd open.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Uring } from "../src/index.js"
import { tempDir } from "./helpers/fixtures.js"

const isOpen = (fd: number) => {
  try {
    Fs.fstatSync(fd)
    return true
  } catch {
    return false
  }
}

describe("an IOPOLL ring", () => {
  it.scoped("closes fds, an OwnedFd from another ring's scope too, and reports a bad fd", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const path = Path.join(dir, "f")
      Fs.writeFileSync(path, "x")
      const polled = Context.get(yield* Layer.build(Uring.layer({ iopoll: true })), Uring)

      const fd = Fs.openSync(path, "r")
      yield* polled.close(fd)
      expect(isOpen(fd)).toBe(false)
      const again = yield* Effect.flip(polled.close(fd))
      expect({ tag: again._tag, fd: "fd" in again ? again.fd : undefined }).toEqual({ tag: "BadDescriptor", fd })

      // An OwnedFd opened in a scope of a plain ring: closed here, its scope leaves it alone.
      const owned = yield* Effect.scoped(Effect.gen(function*() {
        const uring = yield* Uring
        const owned = yield* uring.open(path)
        yield* polled.close(owned)
        expect({ closed: owned.closed, open: isOpen(owned.fd) }).toEqual({ closed: true, open: false })
        return owned
      })).pipe(Effect.provide(Layer.fresh(Uring.layer())))
      expect(isOpen(owned.fd)).toBe(false)
    }))
})
