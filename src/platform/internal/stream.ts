/**
 * `FileSystem.stream` on a ring: the platform's chunking (offset, bytesToRead, chunkSize) with up to `bufferSize`
 * positional reads in flight at once instead of one read after another.
 *
 * @internal
 */
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Chunk, Effect, Fiber, Option, Scope, Stream } from "effect"
import type { OwnedFd } from "../../services/Handles.js"
import type { UringShape } from "../../services/Uring.js"
import { toPlatformError } from "./errors.js"
import { readBuffer } from "./file.js"

interface InFlight {
  readonly offset: number
  readonly length: number
  readonly fiber: Fiber.RuntimeFiber<Uint8Array, PlatformError.PlatformError>
}

const DEFAULT_CHUNK = 64 * 1024
const DEFAULT_BUFFER = 16

/**
 * The chunks of an open file from `options.offset`. While the reads stay inside the size the file had when the
 * stream started, up to `bufferSize` reads are in flight; past it (a growing file, or one whose size statx cannot
 * tell, like /proc files) reads go one at a time until one returns 0 bytes, exactly as the platform's stream does. A
 * short read also switches to one read at a time from where it ended, so chunks never skip bytes.
 *
 * @internal
 */
export const readChunks = (
  uring: UringShape,
  handle: OwnedFd,
  options: FileSystem.StreamOptions = {}
): Effect.Effect<Stream.Stream<Uint8Array, PlatformError.PlatformError>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const fail = toPlatformError("readAlloc", handle.fd)
    const chunkSize = Number(FileSystem.Size(options.chunkSize ?? DEFAULT_CHUNK))
    const depth = Math.max(1, Math.floor(options.bufferSize ?? DEFAULT_BUFFER))
    let next = options.offset ? Number(FileSystem.Size(options.offset)) : 0
    const limit = options.bytesToRead !== undefined ? next + Number(FileSystem.Size(options.bytesToRead)) : undefined
    let knownEnd = yield* uring.fstat(handle).pipe(
      Effect.map((meta) => meta.type === "File" ? Number(meta.size) : 0),
      Effect.orElseSucceed(() => 0)
    )
    let inFlight: Array<InFlight> = []
    let finished = false

    const dropInFlight = Effect.suspend(() => {
      const dropped = inFlight
      inFlight = []
      return Fiber.interruptAll(dropped.map((read) => read.fiber))
    })

    const issue = Effect.suspend(() => {
      const starts: Array<Effect.Effect<void>> = []
      let planned = inFlight.length
      while (
        !finished && (limit === undefined || next < limit) &&
        (planned === 0 || (planned < depth && next < knownEnd))
      ) {
        const offset = next
        const length = limit === undefined ? chunkSize : Math.min(chunkSize, limit - offset)
        next += length
        planned++
        starts.push(
          uring.read(handle, offset, length).pipe(
            Effect.mapError(fail),
            Effect.forkIn(scope),
            Effect.map((fiber) => {
              inFlight.push({ offset, length, fiber })
            })
          )
        )
      }
      return Effect.all(starts, { discard: true })
    })

    const pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<PlatformError.PlatformError>> = Effect.gen(
      function*() {
        yield* issue
        const head = inFlight.shift()
        if (head === undefined) return yield* Effect.fail(Option.none())
        const bytes = yield* Fiber.join(head.fiber).pipe(
          Effect.mapError(Option.some),
          Effect.tapError(() => Effect.zipRight(Effect.sync(() => (finished = true)), dropInFlight))
        )
        if (bytes.length === 0) {
          finished = true
          yield* dropInFlight
          return yield* Effect.fail(Option.none())
        }
        if (bytes.length < head.length) {
          // End of file for now (or a short read): continue one read at a time right after these bytes.
          yield* dropInFlight
          next = head.offset + bytes.length
          knownEnd = Math.min(knownEnd, next)
        }
        return Chunk.of<Uint8Array>(readBuffer(bytes))
      }
    )

    return Stream.repeatEffectChunkOption(pull).pipe(Stream.ensuring(dropInFlight))
  })
