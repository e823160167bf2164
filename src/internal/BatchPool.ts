/**
 * The typed arrays of a `readBatch` call, kept for the next batch of the same size. Each is too
 * large for V8's heap, so a fresh one costs a backing store (about 1.1-1.4 µs for 1 KiB here), a
 * `malloc`, and work for the GC's array-buffer sweeper on another thread: three per batch of 64
 * reads was about a tenth of the batch's JavaScript time.
 *
 * Give a batch's arrays back only once every op of the batch has its result: until then the
 * ranges' places receive results and the ids and tokens may be needed to cancel. Those of an
 * interrupted batch are simply dropped.
 *
 * @internal
 */
import { batchOf, type SubmittedMany } from "./RingClient.js"

/** @internal */
export interface BatchMemory {
  /** Op ids and cancel tokens. */
  readonly ops: SubmittedMany
  /** `[offset, length]` per range, then the result in the offset's place. */
  readonly ranges: Float64Array
}

/** @internal */
export class BatchPool {
  private readonly free: Array<BatchMemory> = []

  constructor(
    /** Batches kept at most; more given back are left to the GC. */
    private readonly keep: number
  ) {}

  take(count: number): BatchMemory {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const memory = this.free[i]!
      if (memory.ops.ids.length !== count) continue
      this.free[i] = this.free[this.free.length - 1]!
      this.free.pop()
      return memory
    }
    return { ops: batchOf(count), ranges: new Float64Array(2 * count) }
  }

  give(memory: BatchMemory): void {
    if (this.free.length < this.keep) this.free.push(memory)
  }
}
