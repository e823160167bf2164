import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fs from "node:fs"
import { InvalidArgument } from "../src/errors/UringError.js"
import { adviceValue, type OpenFlag, OpenFlags, openFlagsOf } from "../src/services/Flags.js"
import * as validate from "../src/internal/validate.js"

// The refusal of a check, failing the test when the value was accepted.
const refusal = <A>(result: Either.Either<A, InvalidArgument>): InvalidArgument => {
  if (Either.isRight(result)) throw new Error(`expected a refusal, got ${String(result.right)}`)
  expect(result.left).toBeInstanceOf(InvalidArgument)
  return result.left
}

const accepted = <A>(result: Either.Either<A, InvalidArgument>): A => {
  if (Either.isLeft(result)) throw new Error(`expected acceptance, got ${result.left.message}`)
  return result.right
}

describe("offset", () => {
  it("accepts non-negative safe integers and small bigints as numbers", () => {
    expect(accepted(validate.offset("read", 0))).toBe(0)
    expect(Object.is(accepted(validate.offset("read", -0)), 0)).toBe(true)
    expect(accepted(validate.offset("read", 4096))).toBe(4096)
    expect(accepted(validate.offset("read", Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER)
    expect(accepted(validate.offset("read", 123n))).toBe(123)
    expect(accepted(validate.offset("read", 2n ** 53n - 1n))).toBe(Number.MAX_SAFE_INTEGER)
  })

  it("refuses bad values with distinct reasons", () => {
    const reasons = [-1, -1n, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2n ** 63n, 2 ** 64].map((v) =>
      refusal(validate.offset("read", v)).reason
    )
    expect(new Set(reasons).size).toBe(reasons.length - 1) // -1 and -1n share "negative"
    expect(reasons[0]).toContain("negative")
    expect(reasons[1]).toContain("negative")
    expect(reasons[2]).toContain("integer")
    expect(reasons[3]).toContain("NaN")
    expect(reasons[4]).toContain("finite")
    expect(reasons[5]).toContain("2^63-1")
    expect(reasons[6]).toContain("2^63-1")
  })

  it("refuses offsets between 2^53 and 2^63-1 as unsupported", () => {
    for (const v of [2n ** 53n, 2n ** 63n - 1n, 2 ** 60]) {
      expect(refusal(validate.offset("read", v)).reason).toBe("offsets beyond 2^53 bytes are not supported")
    }
  })

  it("names the operation and argument", () => {
    const e = refusal(validate.offset("pread", -5, "position"))
    expect(e.operation).toBe("pread")
    expect(e.argument).toBe("position")
    expect(e.message).toContain("pread: invalid position")
  })

  it("refuses non-numbers", () => {
    expect(refusal(validate.offset("read", "1" as unknown as number)).reason).toContain("string")
  })
})

describe("length", () => {
  it("accepts 0 up to the kernel limit", () => {
    expect(accepted(validate.length("read", 0))).toBe(0)
    expect(accepted(validate.length("read", validate.MAX_LENGTH))).toBe(0x7ffff000)
    expect(accepted(validate.length("read", 10n))).toBe(10)
  })

  it("refuses more than 2 GiB minus 4 KiB", () => {
    const e = refusal(validate.length("write", validate.MAX_LENGTH + 1))
    expect(e.reason).toContain("2 GiB minus 4 KiB")
    expect(refusal(validate.length("write", 2n ** 62n)).reason).toContain("2 GiB minus 4 KiB")
  })

  it("honours a smaller per-op maximum", () => {
    expect(accepted(validate.length("readv", 16, 16))).toBe(16)
    expect(refusal(validate.length("readv", 17, 16)).reason).toContain("16 bytes")
  })

  it("refuses negative, fractional, NaN and infinite lengths", () => {
    expect(refusal(validate.length("read", -1)).reason).toContain("negative")
    expect(refusal(validate.length("read", 0.5)).reason).toContain("integer")
    expect(refusal(validate.length("read", Number.NaN)).reason).toContain("NaN")
    expect(refusal(validate.length("read", Number.NEGATIVE_INFINITY)).reason).toContain("finite")
  })
})

describe("path", () => {
  it("accepts ordinary paths unchanged", () => {
    expect(accepted(validate.path("openAt", "/tmp/ä file"))).toBe("/tmp/ä file")
  })

  it("refuses empty paths, NUL and non-strings", () => {
    expect(refusal(validate.path("openAt", "")).reason).toContain("empty")
    expect(refusal(validate.path("openAt", "/tmp/a\u0000b")).reason).toContain("NUL")
    expect(refusal(validate.path("openAt", 42 as unknown as string)).reason).toContain("string")
  })

  it("counts UTF-8 bytes against PATH_MAX, terminating NUL included", () => {
    expect(accepted(validate.path("openAt", "a".repeat(4095)))).toHaveLength(4095)
    expect(refusal(validate.path("openAt", "a".repeat(4096))).reason).toContain("PATH_MAX")
    // 2048 characters but 4096 bytes.
    expect(refusal(validate.path("openAt", "é".repeat(2048))).reason).toContain("4096")
    // Three bytes per character, on either side of the limit.
    expect(accepted(validate.path("openAt", "€".repeat(1365)))).toHaveLength(1365)
    expect(refusal(validate.path("openAt", "€".repeat(1366))).reason).toContain("4098")
    // Four bytes per surrogate pair (two UTF-16 units).
    expect(refusal(validate.path("openAt", "𝄞".repeat(1024))).reason).toContain("4096")
  })
})

describe("fd", () => {
  it("accepts non-negative int32", () => {
    expect(accepted(validate.fd("read", 0))).toBe(0)
    expect(accepted(validate.fd("read", 2 ** 31 - 1))).toBe(2 ** 31 - 1)
  })

  it("refuses negative, fractional and too large descriptors", () => {
    expect(refusal(validate.fd("read", -1)).reason).toContain("negative")
    expect(refusal(validate.fd("read", 1.5)).reason).toContain("integer")
    expect(refusal(validate.fd("read", 2 ** 31)).reason).toContain("32-bit")
  })
})

describe("mode", () => {
  it("accepts 0..0o7777", () => {
    expect(accepted(validate.mode("openAt", 0o644))).toBe(0o644)
    expect(accepted(validate.mode("openAt", 0o7777))).toBe(0o7777)
  })

  it("refuses out of range and fractional modes", () => {
    expect(refusal(validate.mode("openAt", 0o10000)).reason).toContain("0o7777")
    expect(refusal(validate.mode("openAt", -1)).reason).toContain("0o7777")
    expect(refusal(validate.mode("openAt", 0.5)).reason).toContain("integer")
  })
})

describe("advice", () => {
  it("accepts the names and the POSIX_FADV_* numbers, as the kernel's value", () => {
    expect(accepted(validate.advice("fadvise", "normal"))).toBe(0)
    expect(accepted(validate.advice("fadvise", "dontNeed"))).toBe(4)
    expect(accepted(validate.advice("fadvise", 5))).toBe(5)
  })

  it("refuses other names (prototype members too), numbers out of range and fractions", () => {
    for (const bad of ["bogus", "toString", "Normal", -1, 6, 1.5, Number.NaN, null]) {
      const error = refusal(validate.advice("fadvise", bad as never))
      expect(error.argument).toBe("advice")
      expect(error.reason).toContain("sequential")
    }
  })
})

describe("fallocateMode", () => {
  it("accepts non-negative 32-bit integers (the kernel says which bits it supports)", () => {
    expect(accepted(validate.fallocateMode("fallocate", 0))).toBe(0)
    expect(accepted(validate.fallocateMode("fallocate", 0x11))).toBe(0x11)
  })

  it("refuses negative, fractional, too large and non-number modes", () => {
    for (const bad of [-1, 1.5, 2 ** 32, Number.NaN, "1"]) {
      expect(refusal(validate.fallocateMode("fallocate", bad as never)).argument).toBe("mode")
    }
  })
})

describe("bufferProblem", () => {
  it("accepts Uint8Arrays and Buffers, empty ones too", () => {
    expect(validate.bufferProblem(Buffer.alloc(8))).toBeUndefined()
    expect(validate.bufferProblem(new Uint8Array(0))).toBeUndefined()
  })

  it("refuses a view over a detached ArrayBuffer", () => {
    const backing = new ArrayBuffer(16)
    const view = new Uint8Array(backing)
    structuredClone(backing, { transfer: [backing] })
    expect(validate.bufferProblem(view)).toContain("detached")
  })

  it("refuses shared, resizable and non-Uint8Array memory", () => {
    expect(validate.bufferProblem(new Uint8Array(new SharedArrayBuffer(8)))).toContain("SharedArrayBuffer")
    const Resizable = ArrayBuffer as unknown as new(n: number, o: { maxByteLength: number }) => ArrayBuffer
    expect(validate.bufferProblem(new Uint8Array(new Resizable(8, { maxByteLength: 16 })))).toContain("resizable")
    expect(validate.bufferProblem(new Uint16Array(4) as unknown as Uint8Array)).toContain("Uint8Array")
  })

  it("looks past a subclass's or an own property's account of the memory", () => {
    class Disguised extends Uint8Array {
      override get buffer(): ArrayBuffer {
        return new ArrayBuffer(8)
      }
    }
    expect(validate.bufferProblem(new Disguised(new SharedArrayBuffer(8) as unknown as ArrayBuffer))).toContain("SharedArrayBuffer")
    const Resizable = ArrayBuffer as unknown as new(n: number, o: { maxByteLength: number }) => ArrayBuffer
    const resizable = new Resizable(8, { maxByteLength: 16 })
    Object.defineProperty(resizable, "resizable", { value: false })
    expect(validate.bufferProblem(new Uint8Array(resizable))).toContain("resizable")
    const shared = new SharedArrayBuffer(8)
    Object.setPrototypeOf(shared, ArrayBuffer.prototype)
    expect(validate.bufferProblem(new Uint8Array(shared as unknown as ArrayBuffer))).toContain("SharedArrayBuffer")
    const impostor = Object.setPrototypeOf({ buffer: new ArrayBuffer(8), length: 8 }, Uint8Array.prototype)
    expect(validate.bufferProblem(impostor)).toContain("Uint8Array")
  })
})

describe("openFlagsOf", () => {
  const c = fs.constants
  const expected: Record<OpenFlag, number> = {
    "r": c.O_RDONLY,
    "r+": c.O_RDWR,
    "w": c.O_TRUNC | c.O_CREAT | c.O_WRONLY,
    "wx": c.O_TRUNC | c.O_CREAT | c.O_WRONLY | c.O_EXCL,
    "w+": c.O_TRUNC | c.O_CREAT | c.O_RDWR,
    "wx+": c.O_TRUNC | c.O_CREAT | c.O_RDWR | c.O_EXCL,
    "a": c.O_APPEND | c.O_CREAT | c.O_WRONLY,
    "ax": c.O_APPEND | c.O_CREAT | c.O_WRONLY | c.O_EXCL,
    "a+": c.O_APPEND | c.O_CREAT | c.O_RDWR,
    "ax+": c.O_APPEND | c.O_CREAT | c.O_RDWR | c.O_EXCL
  }

  it("gives Node's meaning of each flag string, plus O_CLOEXEC", () => {
    for (const [flag, bits] of Object.entries(expected)) {
      expect([flag, openFlagsOf({ flag: flag as OpenFlag })]).toEqual([flag, bits | OpenFlags.O_CLOEXEC])
    }
  })

  it("defaults to read-only", () => {
    expect(openFlagsOf()).toBe(c.O_RDONLY | OpenFlags.O_CLOEXEC)
    expect(openFlagsOf({ mode: 0o600 })).toBe(c.O_RDONLY | OpenFlags.O_CLOEXEC)
  })

  it("adds the boolean options as Node's constants", () => {
    const all = openFlagsOf({ flag: "r+", direct: true, sync: true, noFollow: true, directory: true, noAtime: true })
    expect(all).toBe(
      c.O_RDWR | c.O_DIRECT | c.O_SYNC | c.O_NOFOLLOW | c.O_DIRECTORY | c.O_NOATIME | OpenFlags.O_CLOEXEC
    )
    expect(openFlagsOf({ flag: "w", dsync: true })).toBe(expected.w | c.O_DSYNC | OpenFlags.O_CLOEXEC)
    expect(openFlagsOf({ flags: c.O_NONBLOCK })).toBe(c.O_NONBLOCK | OpenFlags.O_CLOEXEC)
  })

  it("matches Node's values for every O_* constant both define", () => {
    const ours = OpenFlags as Record<string, number>
    const names = Object.keys(c).filter((k) => k.startsWith("O_") && k in ours)
    expect(names.length).toBeGreaterThanOrEqual(14)
    for (const name of names) expect([name, ours[name]]).toEqual([name, (c as Record<string, number>)[name]])
  })

  it("refuses unknown flag strings", () => {
    expect(() => openFlagsOf({ flag: "rw" as OpenFlag })).toThrow(TypeError)
    expect(refusal(validate.openFlag("openAt", "rw")).reason).toContain("r+")
    expect(accepted(validate.openFlag("openAt", "ax+"))).toBe("ax+")
  })

  it("maps advice names", () => {
    expect(adviceValue("normal")).toBe(0)
    expect(adviceValue("sequential")).toBe(2)
    expect(adviceValue("noReuse")).toBe(5)
  })
})
