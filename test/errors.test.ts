import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Equal, Schema } from "effect"
import * as os from "node:os"
import { codeOf, describeErrno, errnoOf } from "../src/errors/errno.js"
import {
  Escape,
  fromErrno,
  InvalidArgument,
  InvalidConfig,
  NoSpace,
  NotFound,
  RingClosed,
  RingUnavailable,
  UnexpectedEof,
  WriteZero
} from "../src/errors/UringError.js"
import { kernelError } from "../src/internal/kernelError.js"
import { withoutStack } from "../src/internal/withoutStack.js"

// The mapping from the design notes ("Errors").
const expectedTags: ReadonlyArray<readonly [string, string]> = [
  ["ENOENT", "NotFound"],
  ["EACCES", "PermissionDenied"],
  ["EPERM", "PermissionDenied"],
  ["EEXIST", "AlreadyExists"],
  ["ENOTDIR", "NotADirectory"],
  ["EISDIR", "IsADirectory"],
  ["ENOTEMPTY", "DirectoryNotEmpty"],
  ["EINVAL", "InvalidInput"],
  ["EBADF", "BadDescriptor"],
  ["ENOSPC", "NoSpace"],
  ["EDQUOT", "NoSpace"],
  ["EMFILE", "TooManyOpenFiles"],
  ["ENFILE", "TooManyOpenFiles"],
  ["EXDEV", "CrossDevice"],
  ["EROFS", "ReadOnlyFileSystem"],
  ["ENAMETOOLONG", "NameTooLong"],
  ["ELOOP", "TooManySymlinks"],
  ["EBUSY", "Busy"],
  ["ETXTBSY", "Busy"],
  ["ECANCELED", "Canceled"],
  ["EINTR", "Canceled"],
  ["EOPNOTSUPP", "NotSupported"],
  ["ENOTSUP", "NotSupported"],
  ["ENOSYS", "NotSupported"],
  ["EIO", "Unknown"],
  ["EAGAIN", "Unknown"],
  ["EFBIG", "Unknown"],
  ["EOVERFLOW", "Unknown"]
]

describe("errno table", () => {
  it("agrees with every errno Node knows on this platform", () => {
    const known = Object.entries(os.constants.errno)
    expect(known.length).toBeGreaterThan(50)
    for (const [name, value] of known) {
      expect([name, errnoOf(name)]).toEqual([name, value])
      // codeOf answers with the canonical name, which must map back to the same number.
      expect(errnoOf(codeOf(value))).toBe(value)
    }
  })

  it("has the values the design relies on", () => {
    const fixed: Record<string, number> = {
      EPERM: 1,
      EINTR: 4,
      EIO: 5,
      ENXIO: 6,
      E2BIG: 7,
      EAGAIN: 11,
      EBUSY: 16,
      EXDEV: 18,
      ENFILE: 23,
      EMFILE: 24,
      ETXTBSY: 26,
      EFBIG: 27,
      ESPIPE: 29,
      EROFS: 30,
      ENAMETOOLONG: 36,
      ENOSYS: 38,
      ENOTEMPTY: 39,
      ELOOP: 40,
      EOVERFLOW: 75,
      EOPNOTSUPP: 95,
      ENOTSUP: 95,
      EDQUOT: 122,
      ECANCELED: 125
    }
    for (const [code, n] of Object.entries(fixed)) expect([code, errnoOf(code)]).toEqual([code, n])
    expect(codeOf(95)).toBe("EOPNOTSUPP")
    expect(codeOf(11)).toBe("EAGAIN")
  })

  it("names unknown numbers and codes", () => {
    expect(codeOf(999)).toBe("EUNKNOWN_999")
    expect(codeOf(41)).toBe("EUNKNOWN_41")
    expect(errnoOf("ENOTHING")).toBeUndefined()
    expect(describeErrno(2)).toBe("no such file or directory")
    expect(describeErrno(999)).toBe("unknown error 999")
  })
})

describe("fromErrno", () => {
  it("maps each errno of the design to its tag", () => {
    for (const [code, tag] of expectedTags) {
      const errno = errnoOf(code)
      expect(errno, code).toBeTypeOf("number")
      const error = fromErrno(errno!, { operation: "openAt", path: "/tmp/x" })
      expect([code, error._tag]).toEqual([code, tag])
      expect(error.errno).toBe(errno)
      expect(error.code).toBe(codeOf(errno!))
    }
  })

  it("takes a negated errno as the kernel reports it", () => {
    const error = fromErrno(-2, { operation: "read", fd: 3 })
    expect(error._tag).toBe("NotFound")
    expect(error.errno).toBe(2)
  })

  it("keeps errno and code for Unknown", () => {
    const io = fromErrno(5, { operation: "read", fd: 7 })
    expect(io._tag).toBe("Unknown")
    expect(io.errno).toBe(5)
    expect(io.code).toBe("EIO")
    const odd = fromErrno(4242, { operation: "read", fd: 7 })
    expect(odd._tag).toBe("Unknown")
    expect(odd.errno).toBe(4242)
    expect(odd.code).toBe("EUNKNOWN_4242")
  })

  it("says which operation failed, on which path, with code and errno", () => {
    const error = fromErrno(2, { operation: "openAt", path: "/tmp/x" })
    expect(error).toBeInstanceOf(NotFound)
    expect(error.message).toBe(`openAt "/tmp/x" failed: ENOENT (errno 2): no such file or directory`)
    expect(String(error)).toBe(`NotFound: openAt "/tmp/x" failed: ENOENT (errno 2): no such file or directory`)
    expect(error.path).toBe("/tmp/x")
    expect("fd" in error).toBe(false)
  })

  it("shows the descriptor when there is no path", () => {
    const error = fromErrno(9, { operation: "read", fd: 7, path: undefined })
    expect(error._tag).toBe("BadDescriptor")
    expect(error.message).toContain("read fd 7 failed: EBADF (errno 9)")
    expect(error.message).toContain("bad file descriptor")
    expect("path" in error).toBe(false)
  })

  it.effect("is a failure that catchTag can select", () =>
    Effect.gen(function*() {
      const recovered = yield* Effect.fail(fromErrno(17, { operation: "mkdirAt", path: "/d" })).pipe(
        Effect.catchTag("AlreadyExists", (e) => Effect.succeed(`exists: ${e.path}`)),
        Effect.catchAll(() => Effect.succeed("wrong tag"))
      )
      expect(recovered).toBe("exists: /d")
    }))

  it("builds, as the ops do (kernelError), what the class's own constructor builds without a stack, for every class and shape", () => {
    const shapes = [
      { operation: "statx", path: "/a" },
      { operation: "read", fd: 7 },
      { operation: "writeAll", path: "/b", fd: 3, written: 65536 }
    ]
    for (const [code, tag] of expectedTags) {
      const errno = errnoOf(code)!
      for (const context of shapes) {
        const built = kernelError(-errno, context)
        const made = withoutStack(() => fromErrno(errno, context))
        expect([tag, built._tag]).toEqual([tag, made._tag])
        expect(Object.getPrototypeOf(built)).toBe(Object.getPrototypeOf(made))
        expect(built).toBeInstanceOf(Error)
        expect(Reflect.ownKeys(built)).toEqual(Reflect.ownKeys(made))
        for (const key of Reflect.ownKeys(made)) {
          const [a, b] = [Reflect.getOwnPropertyDescriptor(built, key), Reflect.getOwnPropertyDescriptor(made, key)]
          expect([String(key), a]).toEqual([String(key), b])
        }
        expect(Equal.equals(built, made)).toBe(true)
        expect(built.message).toBe(made.message)
        expect(built.stack).toBe(`${tag}: ${made.message}`)
        expect(JSON.stringify(built)).toBe(JSON.stringify(made))
        const Class = made.constructor as unknown as Schema.Schema<typeof made, unknown>
        expect(Schema.encodeSync(Class)(built)).toEqual(Schema.encodeSync(Class)(made))
      }
    }
  })

  it("round-trips through its schema", () => {
    const error = fromErrno(2, { operation: "statx", path: "/a" })
    const codec = Schema.Union(NotFound, RingClosed)
    const encoded = Schema.encodeSync(codec)(error as NotFound)
    expect(encoded).toEqual({ _tag: "NotFound", operation: "statx", path: "/a", errno: 2, code: "ENOENT" })
    const decoded = Schema.decodeUnknownSync(codec)(encoded)
    expect(decoded).toBeInstanceOf(NotFound)
    expect(decoded.message).toBe(error.message)
  })
})

describe("kernel errors of writes in steps (written)", () => {
  it("say how much of the data went before the error, in the field and the message", () => {
    const error = fromErrno(28, { operation: "writeAll", path: "/mnt/f", fd: 7, written: 65536 })
    expect(error).toMatchObject({ _tag: "NoSpace", code: "ENOSPC", written: 65536 })
    expect(error.message).toBe(`writeAll "/mnt/f" failed after writing 65536 bytes: ENOSPC (errno 28): no space left on device`)
    expect(fromErrno(9, { operation: "writeAll", fd: 7, written: 0 }).message).toBe(
      "writeAll fd 7 failed after writing 0 bytes: EBADF (errno 9): bad file descriptor"
    )
    expect("written" in fromErrno(28, { operation: "write", fd: 7, written: undefined })).toBe(false)
  })

  it("round-trip through their schema with the count", () => {
    const error = fromErrno(28, { operation: "writeAll", fd: 7, written: 4096 })
    const codec = Schema.Union(NoSpace, RingClosed)
    const encoded = Schema.encodeSync(codec)(error as NoSpace)
    expect(encoded).toEqual({ _tag: "NoSpace", operation: "writeAll", fd: 7, errno: 28, code: "ENOSPC", written: 4096 })
    const decoded = Schema.decodeUnknownSync(codec)(encoded)
    expect(decoded).toMatchObject({ _tag: "NoSpace", written: 4096 })
    expect(decoded.message).toBe(error.message)
  })
})

describe("other errors", () => {
  it("UnexpectedEof reports what was expected and read", () => {
    const e = new UnexpectedEof({ operation: "readExact", fd: 4, offset: 100, expected: 4096, read: 12 })
    expect(e._tag).toBe("UnexpectedEof")
    expect(e.message).toContain("readExact fd 4")
    expect(e.message).toContain("4096")
    expect(e.message).toContain("12")
    expect(e.message).toContain("offset 100")
  })

  it("WriteZero reports progress", () => {
    const e = new WriteZero({ operation: "writeAll", path: "/f", written: 10, expected: 20 })
    expect(e.message).toBe(`writeAll "/f" wrote 0 bytes after 10 of 20`)
  })

  it("Escape names the path and the root", () => {
    const e = new Escape({ operation: "openAt", path: "../etc/passwd", dir: "/srv", errno: 18, code: "EXDEV" })
    expect(e._tag).toBe("Escape")
    expect(e.message).toContain(`"../etc/passwd"`)
    expect(e.message).toContain(`"/srv"`)
    expect(e.message).toContain("EXDEV")
  })

  it("InvalidArgument, RingClosed and InvalidConfig say what and why", () => {
    expect(new InvalidArgument({ operation: "read", argument: "offset", reason: "must not be negative" }).message)
      .toBe("read: invalid offset: must not be negative")
    expect(new RingClosed({ operation: "write" }).message).toContain("write")
    expect(new RingClosed({ operation: "write" }).message).toContain("closed")
    const c = new InvalidConfig({ setting: "entries", reason: "must be a power of two" })
    expect(c.message).toContain("entries")
    expect(c.message).toContain("power of two")
  })

  it("RingUnavailable carries the hint for blocked io_uring", () => {
    const blocked = new RingUnavailable({ errno: 1, code: "EPERM", reason: "io_uring_setup failed" })
    for (const part of ["seccomp", "kernel.io_uring_disabled", "gVisor", "5.19", "layerWithFallback", "EPERM", "blocked"]) {
      expect(blocked.message).toContain(part)
    }
    const memory = new RingUnavailable({ errno: 12, code: "ENOMEM", reason: "io_uring_setup failed" })
    expect(memory.message).toContain("memlock")
    expect(blocked.message).not.toContain("memlock")
  })

  it("constructors validate their fields", () => {
    const attempt = Either.try(() => new RingClosed({ operation: 3 as unknown as string }))
    expect(Either.isLeft(attempt)).toBe(true)
  })
})
