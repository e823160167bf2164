/**
 * Runs one behaviour case against Node's FileSystem and the io_uring one, each in a fresh temp directory, and
 * normalizes the outcomes (paths relative to the directory, fds hidden, bytes as text) so they can be compared.
 */
import * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import { Cause, Context, Effect, Either, Exit, Layer, Option, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { UringFileSystem } from "../../src/index.js"
import { tempDir } from "../helpers/fixtures.js"

export class NodeFs extends Context.Tag("test/NodeFs")<NodeFs, FileSystem.FileSystem>() {}
export class UringFs extends Context.Tag("test/UringFs")<UringFs, FileSystem.FileSystem>() {}

export const BothLayer = Layer.merge(
  Layer.effect(NodeFs, FileSystem.FileSystem).pipe(Layer.provide(NodeFileSystem.layer)),
  Layer.effect(UringFs, FileSystem.FileSystem).pipe(Layer.provide(UringFileSystem.layerLive))
)

export type Case<A> = (fs: FileSystem.FileSystem, dir: string) => Effect.Effect<A, PlatformError.PlatformError, Scope.Scope>

const text = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")

/** A plain, comparable form of a value: bytes as `bytes:<latin1>`, bigints as strings, `dir` as `<dir>`. */
export const normalize = (value: unknown, dir: string): unknown => {
  if (typeof value === "string") return value.split(dir).join("<dir>")
  if (typeof value === "bigint") return `${value}n`
  if (value instanceof Uint8Array) return `bytes:${text(value)}`
  if (value instanceof Date) return value.toISOString()
  if (PlatformError.isPlatformError(value)) return normalizeError(value, dir)
  if (Either.isEither(value)) {
    return Either.isLeft(value)
      ? { _tag: "Left", left: normalize(value.left, dir) }
      : { _tag: "Right", right: normalize(value.right, dir) }
  }
  if (Option.isOption(value)) return Option.isSome(value) ? { some: normalize(value.value, dir) } : "none"
  if (Array.isArray(value)) return value.map((item) => normalize(item, dir))
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, normalize(item, dir)]))
  }
  return value
}

export const normalizeError = (error: PlatformError.PlatformError, dir: string) =>
  error._tag === "SystemError"
    ? {
      _tag: error._tag,
      reason: error.reason,
      module: error.module,
      method: error.method,
      pathOrDescriptor: typeof error.pathOrDescriptor === "number" ? "<fd>" : normalize(error.pathOrDescriptor, dir)
    }
    : { _tag: error._tag, module: error.module, method: error.method }

export type Outcome = { readonly ok: unknown } | { readonly error: unknown }

/** Runs an effect and returns its normalized success or failure (a defect fails the test). */
export const outcome = <A>(
  effect: Effect.Effect<A, PlatformError.PlatformError, Scope.Scope>,
  dir: string
): Effect.Effect<Outcome> =>
  Effect.scoped(effect).pipe(
    Effect.exit,
    Effect.map((exit): Outcome => {
      if (Exit.isSuccess(exit)) return { ok: normalize(exit.value, dir) }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) return { error: normalize(failure.value, dir) }
      throw new Error(`unexpected defect: ${Cause.pretty(exit.cause)}`)
    })
  )

export interface Both {
  readonly node: Outcome
  readonly uring: Outcome
  readonly nodeTree: unknown
  readonly uringTree: unknown
}

/** Runs `body` against both implementations in two fresh directories; returns both outcomes and final trees. */
export const both = <A>(body: Case<A>): Effect.Effect<Both, never, NodeFs | UringFs | Scope.Scope> =>
  Effect.gen(function*() {
    const node = yield* NodeFs
    const uring = yield* UringFs
    const nodeDir = yield* tempDir("conformance-node-")
    const uringDir = yield* tempDir("conformance-uring-")
    const nodeOutcome = yield* outcome(body(node, nodeDir), nodeDir)
    const uringOutcome = yield* outcome(body(uring, uringDir), uringDir)
    return { node: nodeOutcome, uring: uringOutcome, nodeTree: tree(nodeDir), uringTree: tree(uringDir) }
  })

/** The tree below `dir` read with plain node:fs: type, permission bits, content or link target, per path. */
export const tree = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (path: string) => {
    for (const name of Fs.readdirSync(path).sort()) {
      const full = Path.join(path, name)
      const rel = Path.relative(dir, full)
      const stat = Fs.lstatSync(full)
      const mode = (stat.mode & 0o7777).toString(8)
      if (stat.isSymbolicLink()) out[rel] = `link -> ${Fs.readlinkSync(full).split(dir).join("<dir>")}`
      else if (stat.isDirectory()) {
        out[rel] = `dir ${mode}`
        walk(full)
      } else out[rel] = `file ${mode} ${Fs.readFileSync(full).toString("latin1")}`
    }
  }
  walk(dir)
  return out
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
export const str = (b: Uint8Array): string => new TextDecoder().decode(b)
