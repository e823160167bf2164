import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Layer, Tracer } from "effect"
import * as Fs from "node:fs"
import { Uring, uringConfigFromEnv, validateUringConfig } from "../src/index.js"

const providerOf = (env: Record<string, string>) => ConfigProvider.fromMap(new Map(Object.entries(env)))
const fromEnv = (env: Record<string, string>) => Layer.setConfigProvider(providerOf(env))

/** A tracer that records the name of every span it starts, then starts it as the current tracer does. */
const recordingTracer = Effect.map(Effect.tracer, (base) => {
  const names: Array<string> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      names.push(name)
      return base.span(name, parent, context, links, startTime, kind, options)
    },
    context: base.context
  })
  return { names, tracer }
})

const buildWith = (env: Record<string, string>) =>
  Effect.scoped(Layer.build(Uring.layerConfig().pipe(Layer.provide(fromEnv(env)))))

describe("Uring.layerConfig", () => {
  it.effect("reads the settings from Config and builds a working ring", () =>
    Effect.gen(function*() {
      const meta = yield* Effect.flatMap(Uring, (uring) => uring.stat("/")).pipe(
        Effect.provide(Uring.layerConfig().pipe(Layer.provide(fromEnv({ URING_RING_SIZE: "64", URING_REGISTERED_FILES: "16" }))))
      )
      expect(meta.type).toBe("Directory")
    }))

  it.effect("maps each URING_* variable to its setting, leaving unset ones to the defaults", () =>
    Effect.gen(function*() {
      const settings = yield* uringConfigFromEnv.pipe(
        Effect.withConfigProvider(providerOf({ URING_CACHED_READS: "false", URING_INLINE_SUBMIT: "true", URING_BATCH_HELPER: "false" }))
      )
      expect(settings).toEqual({ cachedReads: false, inlineSubmit: true, batchHelper: false })
      const valid = yield* validateUringConfig(settings)
      expect([valid.cachedReads, valid.inlineSubmit, valid.batchHelper, valid.ringSize]).toEqual([false, true, false, 16384])
      const defaults = yield* validateUringConfig({})
      expect([defaults.cachedReads, defaults.batchHelper]).toEqual([true, true])
    }))

  it.effect("maps URING_SQPOLL_IDLE_MS, URING_COOP_TASKRUN, URING_SHUTDOWN_TIMEOUT_MS and URING_TRACING, and the ring built from them works", () =>
    Effect.gen(function*() {
      const env = {
        URING_SQPOLL_IDLE_MS: "10",
        URING_COOP_TASKRUN: "true",
        URING_SHUTDOWN_TIMEOUT_MS: "250",
        URING_TRACING: "true"
      }
      const settings = yield* uringConfigFromEnv.pipe(Effect.withConfigProvider(providerOf(env)))
      expect(settings).toEqual({ sqpollIdleMs: 10, coopTaskrun: true, shutdownTimeoutMs: 250, tracing: true })
      expect(yield* validateUringConfig(settings)).toMatchObject(settings)
      // Each alone through Uring.layerConfig builds a ring that works; tracing shows in its spans.
      for (const [name, value] of Object.entries(env)) {
        const { names, tracer } = yield* recordingTracer
        const meta = yield* Effect.flatMap(Uring, (uring) => uring.stat("/")).pipe(
          Effect.provide(Uring.layerConfig().pipe(Layer.provide(fromEnv({ [name]: value })))),
          Effect.withTracer(tracer)
        )
        expect(meta.isDirectory).toBe(true)
        expect([name, names.includes("Uring.stat")]).toEqual([name, name === "URING_TRACING"])
      }
    }))

  it.effect("refuses out-of-range, inconsistent and malformed settings with readable messages", () =>
    Effect.gen(function*() {
      const zero = yield* Effect.flip(buildWith({ URING_RING_SIZE: "0" }))
      expect(zero._tag).toBe("InvalidConfig")
      expect(zero.message).toContain("ringSize must be an integer from 1 to 32768, got 0")

      const huge = yield* Effect.flip(buildWith({ URING_RING_SIZE: "100000" }))
      expect(huge.message).toContain("ringSize")

      const defer = yield* Effect.flip(buildWith({ URING_DEFER_TASKRUN: "true" }))
      expect(defer._tag).toBe("InvalidConfig")
      expect(defer.message).toContain("separate completion thread")

      const files = yield* Effect.flip(buildWith({ URING_REGISTERED_FILES: "-1" }))
      expect(files.message).toContain("registeredFiles")

      const notANumber = yield* Effect.flip(buildWith({ URING_RING_SIZE: "lots" }))
      expect(notANumber._tag).toBe("ConfigError")
    }))
})

describe("Uring.layer", () => {
  it.effect("validates its settings", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Layer.build(Uring.layer({ ringSize: 1.5 }))))
      expect(error._tag).toBe("InvalidConfig")
      const excess = yield* Effect.flip(Effect.scoped(Layer.build(Uring.layer({ ringSzie: 8 } as never))))
      expect(excess._tag).toBe("InvalidConfig")
    }))

  it.effect("sqpoll, coop taskrun and thread-only (inlineSubmit: false) rings work", () =>
    Effect.gen(function*() {
      const expected = Fs.readFileSync("/etc/hostname")
      for (const config of [{ sqpollIdleMs: 10 }, { coopTaskrun: true }, { inlineSubmit: false }]) {
        const [meta, bytes] = yield* Effect.flatMap(Uring, (uring) => Effect.zip(uring.stat("/"), uring.readFile("/etc/hostname"))).pipe(
          Effect.provide(Uring.layer(config))
        )
        expect(meta.isDirectory).toBe(true)
        expect(Buffer.compare(bytes, expected)).toBe(0)
      }
      const notABoolean = yield* Effect.flip(buildWith({ URING_INLINE_SUBMIT: "sometimes" }))
      expect(notABoolean._tag).toBe("ConfigError")
    }))

  it.effect("with tracing on, every operation runs in a span named Uring.<operation> that a kernel error's cause names; off by default", () =>
    Effect.gen(function*() {
      const missing = "/nonexistent/effect-uring"
      const run = (layer: Layer.Layer<Uring, unknown>) =>
        Effect.gen(function*() {
          const { names, tracer } = yield* recordingTracer
          const failed = yield* Effect.flatMap(Uring, (uring) =>
            Effect.zipRight(
              Effect.zip(uring.stat("/"), uring.read(0, 0, 0).pipe(Effect.ignore)),
              Effect.flip(Effect.sandbox(uring.stat(missing)))
            )).pipe(Effect.provide(layer), Effect.withTracer(tracer))
          return { names: names.filter((name) => name.startsWith("Uring.")), pretty: Cause.pretty(failed) }
        })
      const traced = yield* run(Uring.layer({ tracing: true }))
      expect(traced.names).toEqual(["Uring.stat", "Uring.read", "Uring.stat"])
      expect(traced.pretty).toContain("NotFound")
      expect(traced.pretty).toMatch(/^\s+at Uring\.stat\b/m)
      const untraced = yield* run(Uring.layer())
      expect(untraced.names).toEqual([])
      expect(untraced.pretty).toContain("NotFound")
      expect(untraced.pretty).not.toContain("Uring.stat")
    }))
})
