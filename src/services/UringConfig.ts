/**
 * Ring settings: a Schema that validates them with readable messages, and a `Config` that reads
 * them from the environment (`URING_RING_SIZE`, ...).
 *
 * @since 0.1.0
 */
import { Config, Effect, Option, ParseResult, Schema } from "effect"
import { InvalidConfig } from "../errors/UringError.js"

const MAX_ENTRIES = 32768
const MAX_REGISTERED_FILES = 1 << 20

/**
 * Validated ring settings.
 *
 * @since 0.1.0
 * @category models
 */
export class UringConfig extends Schema.Class<UringConfig>("effect-uring/UringConfig")({
  /** Submission queue entries; the kernel clamps to its maximum. The completion queue is twice this. */
  ringSize: Schema.optionalWith(
    Schema.Int.pipe(
      Schema.between(1, MAX_ENTRIES, {
        message: (issue) => `ringSize must be an integer from 1 to ${MAX_ENTRIES}, got ${String(issue.actual)}`
      })
    ),
    { default: () => 16384 }
  ),
  /** IORING_SETUP_COOP_TASKRUN: fewer interrupts; the submission thread then ticks while ops are in flight. */
  coopTaskrun: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * IORING_SETUP_IOPOLL: busy-poll completions; only for O_DIRECT files on polling-capable devices.
   * Such a ring's kernel refuses opens and stats (`InvalidInput`); with `cachedReads`, a `stat`,
   * `statAt` or `readFile` that the caches answer on the calling thread still succeeds, so set
   * `cachedReads: false` for the same answer whatever the caches hold. Its `close` runs close(2)
   * on libuv's pool, as the kernel refuses IORING_OP_CLOSE there too.
   */
  iopoll: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** IORING_SETUP_SQPOLL with this idle time in milliseconds: a kernel thread polls the submission queue. */
  sqpollIdleMs: Schema.optional(
    Schema.Int.pipe(
      Schema.between(0, 60_000, {
        message: (issue) => `sqpollIdleMs must be an integer from 0 to 60000, got ${String(issue.actual)}`
      })
    )
  ),
  /** Always refused: with DEFER_TASKRUN only the submitting thread may reap, and this engine reaps on its own thread. */
  deferTaskrun: Schema.optionalWith(
    Schema.Literal(false).annotations({
      message: () =>
        "deferTaskrun cannot be enabled: the kernel lets only the submitting thread reap completions with " +
        "IORING_SETUP_DEFER_TASKRUN, and this ring reaps on a separate completion thread"
    }),
    { default: () => false as const }
  ),
  /** Slots in the sparse registered-file table. */
  registeredFiles: Schema.optionalWith(
    Schema.Int.pipe(
      Schema.between(0, MAX_REGISTERED_FILES, {
        message: (issue) =>
          `registeredFiles must be an integer from 0 to ${MAX_REGISTERED_FILES}, got ${String(issue.actual)}`
      })
    ),
    { default: () => 4096 }
  ),
  /** How long closing the ring waits for cancelled operations to complete. */
  shutdownTimeoutMs: Schema.optionalWith(
    Schema.Int.pipe(
      Schema.between(1, 600_000, {
        message: (issue) => `shutdownTimeoutMs must be an integer from 1 to 600000, got ${String(issue.actual)}`
      })
    ),
    { default: () => 5000 }
  ),
  /**
   * While the ring's submission thread is idle, submit on the JS thread and take the completions
   * that are ready right away (cached reads finish inside the submit), skipping two thread
   * hand-offs per op. The cost: cached reads are copied on the JS thread (at most 4 MiB per
   * flush; larger transfers go to the submission thread). Ignored with `sqpollIdleMs`, `iopoll`
   * or `coopTaskrun`. An op the kernel handed to the JS thread's own kernel workers and left
   * queued there for about two seconds is cancelled and submitted again by the submission thread,
   * and that JS thread stops submitting inline, on every ring (the README's "Ops a caller's
   * kernel workers keep are rescued").
   */
  inlineSubmit: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * Reads of up to 64 KiB from an open `OwnedFd` (of any ring, not opened with `O_DIRECT`) or a
   * slot registered from one first copy what the
   * page cache holds on the calling thread (`preadv2` with `RWF_NOWAIT`), with no ring round trip
   * and no fiber suspension; what is not cached goes through the ring. So do the ranges of a
   * `readBatch` from such a file (in its one crossing; a range cached only in part is left whole
   * to the ring; from 8 ranges on, a helper thread of the ring reads beside the calling thread,
   * and looks for the next batch for 50 µs before it sleeps; none with one CPU), and `readFile`, for a
   * path the dentry cache resolves (`openat2` with `RESOLVE_CACHED`) to a regular file on ext4, XFS
   * or Btrfs whose start the page cache holds, and `stat` / `statAt`, for a path the dentry cache
   * resolves on ext4, XFS, Btrfs or tmpfs (a missing path's `NotFound` included); those two need
   * Linux 6.12, which tells a file's file system from its mount without asking it. At
   * most 4 MiB and 1024 reads (a batch range counting as one, a file or a stat as four) per
   * event-loop turn are done that way, so the loop keeps turning; a batch past that goes to the
   * ring, a file or stat waits for the next turn, where it is done first, and a read (`readInto`,
   * `read`, `readExact`) waits for the next turn and tries again there, from a further 256 reads
   * and 1 MiB per turn kept for reads that waited (past those, the ring reads it). If its handle
   * was closed or its buffer transferred meanwhile, it fails as a read begun then would.
   */
  cachedReads: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * With `cachedReads`, a `readBatch` of 8 ranges or more shares its cached ranges with a helper
   * thread of the ring, which copies beside the calling thread on another core and, after a
   * batch, looks for the next one for 50 µs before it sleeps (none starts on one CPU). Off: the
   * calling thread reads them alone, with no helper thread and no such spin.
   */
  batchHelper: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Run every operation in a span named `Uring.<op>`. Off by default: a span per op costs as much as the op. */
  tracing: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}

/**
 * The settings as a caller writes them: every field optional.
 *
 * @since 0.1.0
 * @category models
 */
export type UringConfigInput = typeof UringConfig.Encoded

const decode = Schema.decodeUnknown(UringConfig)

/**
 * Validates settings, failing with `InvalidConfig` naming the setting and why.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validate = (input: UringConfigInput = {}): Effect.Effect<UringConfig, InvalidConfig> =>
  decode(input, { errors: "first", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      return new InvalidConfig({
        setting: issue?.path.map(String).join(".") || "config",
        reason: issue?.message ?? ParseResult.TreeFormatter.formatErrorSync(error)
      })
    })
  )

const optional = <A>(config: Config.Config<A>) =>
  Config.option(config).pipe(Config.map(Option.getOrUndefined))

/**
 * The settings from the environment: `URING_RING_SIZE`, `URING_COOP_TASKRUN`, `URING_IOPOLL`,
 * `URING_SQPOLL_IDLE_MS`, `URING_DEFER_TASKRUN`, `URING_REGISTERED_FILES`,
 * `URING_SHUTDOWN_TIMEOUT_MS`, `URING_INLINE_SUBMIT`, `URING_CACHED_READS`, `URING_BATCH_HELPER`,
 * `URING_TRACING`; unset ones take the defaults.
 *
 * @since 0.1.0
 * @category config
 */
export const fromEnv: Config.Config<UringConfigInput> = Config.all({
  ringSize: optional(Config.integer("URING_RING_SIZE")),
  coopTaskrun: optional(Config.boolean("URING_COOP_TASKRUN")),
  iopoll: optional(Config.boolean("URING_IOPOLL")),
  sqpollIdleMs: optional(Config.integer("URING_SQPOLL_IDLE_MS")),
  deferTaskrun: optional(Config.boolean("URING_DEFER_TASKRUN")),
  registeredFiles: optional(Config.integer("URING_REGISTERED_FILES")),
  shutdownTimeoutMs: optional(Config.integer("URING_SHUTDOWN_TIMEOUT_MS")),
  inlineSubmit: optional(Config.boolean("URING_INLINE_SUBMIT")),
  cachedReads: optional(Config.boolean("URING_CACHED_READS")),
  batchHelper: optional(Config.boolean("URING_BATCH_HELPER")),
  tracing: optional(Config.boolean("URING_TRACING"))
}).pipe(
  // Unset settings are left out, so the Schema's defaults apply.
  Config.map((settings) =>
    Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)) as UringConfigInput
  )
)
