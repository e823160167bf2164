/**
 * The thin client over one native ring: op ids, the pending table, batched completion dispatch.
 * No Effect in here: this is the hot loop, and the Effect layer wraps it.
 *
 * The pending table keeps each op's memory (buffers, statx output) referenced until that op's
 * completion arrives, even when its caller has given up, because the kernel may still write it.
 *
 * @internal
 */
import { load, type NativeRing, type NativeRingOptions } from "./native.js"

/** Ops submitted between two wake-ups of the submission thread, at most. */
const FLUSH_EVERY = 16

/** Receives an op's result: bytes, an fd, a slot, 0, or `-errno`. @internal */
export type OnResult = (result: number, id?: number) => void

/** @internal */
export class RingClient {
  readonly native: NativeRing
  /** Indexed by op id; index 0 is never used (ids are positive). */
  private readonly callbacks: Array<OnResult | undefined> = [undefined]
  private readonly memory: Array<unknown> = [undefined]
  /** For ops of a `submitMany` batch: the op's index in its batch. */
  private readonly batchIndex: Array<number> = [0]
  private readonly freeIds: Array<number> = []
  private pendingCount = 0
  private batchCount = 0
  private flushScheduled = false
  private unflushed = 0

  constructor(options: NativeRingOptions = {}) {
    this.native = new (load().NativeRing)(options, this.onBatch)
  }

  /** Ops submitted whose completion has not been dispatched yet. */
  get pending(): number {
    return this.pendingCount
  }

  /** Completion batches delivered so far (each one crossing from native code into JS). */
  get batches(): number {
    return this.batchCount
  }

  get closed(): boolean {
    return this.native.closed
  }

  /**
   * Submits through `start(id)` (one of the native submit methods) and calls `onResult` with the
   * completion. `keep` is held until then. Returns the op id; throws what the binding throws, in
   * which case nothing is pending.
   */
  submit(start: (native: NativeRing, id: number) => number, onResult: OnResult, keep?: unknown): Submitted {
    const id = this.claim(onResult, keep)
    let token: number
    try {
      token = start(this.native, id)
    } catch (error) {
      this.release(id)
      throw error
    }
    this.submitted(1)
    return { id, token }
  }

  /**
   * Submits `count` ops in one crossing: `start` receives their ids and an array to fill with
   * their cancel tokens. `onResult(index, result)` runs once per op. Returns the ids and tokens
   * (op `i` is `{ id: ids[i], token: tokens[i] }` for `cancel`). Throws what the binding throws,
   * in which case nothing is pending.
   */
  submitMany(
    count: number,
    start: (native: NativeRing, ids: Int32Array, tokens: Float64Array) => void,
    onResult: (index: number, result: number) => void,
    keep?: unknown
  ): SubmittedMany {
    const ids = new Int32Array(count)
    // One callback for the whole batch; each op's index in it is kept beside its id.
    const callback: OnResult = (result, id) => onResult(this.batchIndex[id!]!, result)
    for (let i = 0; i < count; i++) {
      const id = this.claim(callback, keep)
      ids[i] = id
      this.batchIndex[id] = i
    }
    const tokens = new Float64Array(count)
    try {
      start(this.native, ids, tokens)
    } catch (error) {
      ids.forEach((id) => this.release(id))
      throw error
    }
    this.submitted(count)
    return { ids, tokens }
  }

  /** A free op id, holding `onResult` and `keep` until its completion. */
  private claim(onResult: OnResult, keep: unknown): number {
    const id = this.freeIds.pop() ?? this.callbacks.length
    this.callbacks[id] = onResult
    this.memory[id] = keep
    return id
  }

  /** Frees an op id: its completion arrived, or its submission was refused. */
  private release(id: number): void {
    this.callbacks[id] = undefined
    this.memory[id] = undefined
    this.freeIds.push(id)
  }

  /** Counts `count` newly queued ops: keeps the process alive while any is pending, schedules a flush. */
  private submitted(count: number): void {
    if (count === 0) return
    if (this.pendingCount === 0) this.native.ref()
    this.pendingCount += count
    this.scheduleFlush(count)
  }

  /**
   * Asks the kernel to cancel an op. `onSettled` replaces the op's callback: it runs when the
   * op's completion arrives (the real result or `-ECANCELED`), after which the kernel is done
   * with the op's memory.
   */
  cancel(op: Submitted, onSettled: OnResult): void {
    if (this.callbacks[op.id] === undefined) {
      onSettled(0)
      return
    }
    this.callbacks[op.id] = onSettled
    this.native.cancel(op.token)
  }

  /** Closes the ring: cancels in-flight ops and waits (bounded) for the kernel to finish them. */
  shutdown(): void {
    this.native.shutdown()
  }

  /**
   * Submits do not wake the native submission thread; one flush at the end of the current
   * microtask burst does, so the fibers resumed by one completion batch share one wake-up.
   */
  private scheduleFlush(ops: number): void {
    // A long burst also flushes every FLUSH_EVERY ops, so the kernel starts on the first ops
    // while JS is still resuming fibers and submitting the rest.
    this.unflushed += ops
    if (this.unflushed >= FLUSH_EVERY) {
      this.unflushed = 0
      this.native.flush()
    }
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(this.flush)
  }

  private readonly flush = (): void => {
    this.flushScheduled = false
    if (this.unflushed === 0) return
    this.unflushed = 0
    this.native.flush()
  }

  private readonly onBatch = (batch: Int32Array): void => {
    this.batchCount++
    for (let i = 0; i < batch.length; i += 2) {
      const id = batch[i]!
      const callback = this.callbacks[id]
      if (callback === undefined) continue
      this.release(id)
      this.pendingCount--
      try {
        callback(batch[i + 1]!, id)
      } catch (error) {
        // One caller's bug must not strand the rest of the batch.
        queueMicrotask(() => {
          throw error
        })
      }
    }
    if (this.pendingCount === 0) this.native.unref()
  }
}

/** The ops of one `submitMany` call: op `i` has id `ids[i]` and cancel token `tokens[i]`. @internal */
export interface SubmittedMany {
  readonly ids: Int32Array
  readonly tokens: Float64Array
}

/** A submitted op: its id in the pending table and its cancel token. @internal */
export interface Submitted {
  readonly id: number
  readonly token: number
}
