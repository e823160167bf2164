/**
 * The typed arrays of a `readBatch` call, kept for the next batch of the same size. Each is too
 * large for V8's heap, so a fresh one costs a backing store (about 1.1-1.4 µs for 1 KiB here), a
 * `malloc`, and work for the GC's array-buffer sweeper on another thread: three per batch of 64
 * reads was about a tenth of the batch's JavaScript time.
 *
 * Give a batch's arrays back only once the batch has completed: until then the engine writes
 * results into them. Those of an interrupted batch are simply dropped.
 *
 * @internal
 */

/** @internal */
export interface BatchMemory {
  /** `[offset, length]` per range, read by the binding during the submit call. */
  readonly ranges: Float64Array
  /** Each range's result (count or `-errno`), written by the engine before the batch completes. */
  readonly results: Int32Array
  /** The buffer the batch reads into: held with the arrays until the batch completes. */
  buffer: Uint8Array | undefined
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
      if (memory.results.length !== count) continue
      this.free[i] = this.free[this.free.length - 1]!
      this.free.pop()
      return memory
    }
    return {
      ranges: new Float64Array(2 * count),
      results: new Int32Array(count),
      buffer: undefined
    }
  }

  give(memory: BatchMemory): void {
    // Not the caller's buffer: the pool must not keep it alive.
    memory.buffer = undefined
    if (this.free.length < this.keep) this.free.push(memory)
  }
}
