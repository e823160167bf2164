/**
 * Kernel errors as the ops make them: what `fromErrno` builds, without a JavaScript stack (see
 * `withoutStack`), for about half the cost.
 *
 * Schema's class constructor copies the fields, deletes and re-adds `_tag` and looks for defaults
 * before it calls the class it extends (`Data.Error`'s) with the fields as they end up: about 2.5
 * of the 5 µs a `NotFound` took, paid by every failed op (a stat storm over missing paths,
 * `exists`). Constructing that base class with the error's class as `new.target` builds the same
 * instance without that work. It leans on how `effect` lays out a `Schema.TaggedError`, so a
 * class is built this way only if, checked once per class, it gives exactly what its constructor
 * gives; else its constructor builds it.
 *
 * @internal
 */
import { type KernelError, kernelErrorOf, type UringError } from "../errors/UringError.js"
import { withoutStack } from "./withoutStack.js"

type KernelErrorClass = ReturnType<typeof kernelErrorOf>["Class"]
type KernelErrorFields = ReturnType<typeof kernelErrorOf>["fields"]
type Builder = (fields: KernelErrorFields) => KernelError

const builders = new Map<KernelErrorClass, Builder>()

/** The error `fromErrno(errno, context)` builds, without a stack. */
export const kernelError = (errno: number, context: Parameters<typeof kernelErrorOf>[1]): KernelError => {
  const { Class, fields } = kernelErrorOf(errno, context)
  return withoutStack(() => builderOf(Class)(fields))
}

/**
 * A kernel error rebuilt with the context `context` gives it (another operation's name and path,
 * `written`), as the caller saw the op; any other error (`Escape` too) as it is.
 */
export const withContext = (
  error: UringError,
  context: (error: KernelError) => Parameters<typeof kernelErrorOf>[1]
): UringError => "errno" in error && error._tag !== "Escape" ? kernelError(error.errno, context(error)) : error

const builderOf = (Class: KernelErrorClass): Builder => {
  let builder = builders.get(Class)
  if (builder === undefined) {
    builder = direct(Class) ?? ((fields) => new Class(fields, true))
    builders.set(Class, builder)
  }
  return builder
}

/** Builds `Class` through the base its Schema class calls, if that gives what the constructor gives. */
const direct = (Class: KernelErrorClass): Builder | undefined => {
  // The error class, then `Schema.TaggedError`'s class, then Schema's class, then its base.
  let base: unknown = Class
  for (let i = 0; i < 3 && typeof base === "function"; i++) base = Object.getPrototypeOf(base)
  if (typeof base !== "function" || base === Function.prototype) return undefined
  const baseClass = base
  const tag = (Class as unknown as { readonly _tag: unknown })._tag
  if (typeof tag !== "string") return undefined
  const build: Builder = (fields) => Reflect.construct(baseClass, [{ ...fields, _tag: tag }], Class)
  const samples: Array<KernelErrorFields> = [
    { operation: "stat", path: "/p", errno: 2, code: "ENOENT" },
    { operation: "writeAll", path: "/p", fd: 7, errno: 28, code: "ENOSPC", written: 4096 }
  ]
  try {
    return withoutStack(() => samples.every((fields) => sameError(build(fields), new Class(fields, true))))
      ? build
      : undefined
  } catch {
    return undefined
  }
}

/** The same prototype, and the same own properties in the same order with the same attributes and values. */
const sameError = (a: object, b: object): boolean => {
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  const keys = Reflect.ownKeys(a)
  const other = Reflect.ownKeys(b)
  return keys.length === other.length && keys.every((key, i) => {
    const x = Reflect.getOwnPropertyDescriptor(a, key)
    const y = Reflect.getOwnPropertyDescriptor(b, key)
    return key === other[i] && x !== undefined && y !== undefined && x.writable === y.writable &&
      x.enumerable === y.enumerable && x.configurable === y.configurable && x.get === y.get && x.set === y.set &&
      sameValue(x.value, y.value)
  })
}

/** Equal primitives, or objects whose own properties are equal primitives (the fields kept apart by `Data.Error`). */
const sameValue = (x: unknown, y: unknown): boolean => {
  if (typeof x !== "object" || x === null || typeof y !== "object" || y === null) return Object.is(x, y)
  const keys = Reflect.ownKeys(x)
  const other = Reflect.ownKeys(y)
  return Object.getPrototypeOf(x) === Object.getPrototypeOf(y) && keys.length === other.length &&
    keys.every((key, i) =>
      key === other[i] &&
      Object.is((x as Record<PropertyKey, unknown>)[key], (y as Record<PropertyKey, unknown>)[key])
    )
}
