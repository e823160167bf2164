/**
 * Same-size buffers for ops whose output is copied out as soon as they complete (a `struct
 * statx`, `readFile`'s first read). A fresh `Uint8Array` over 64 bytes gets its own backing store,
 * about 0.7 µs to allocate here plus its share of GC: more than the rest of a stat's JS work.
 *
 * Give a buffer back only once its op's completion has arrived (the kernel is done with it) and
 * what it holds has been copied out. A buffer of a failed or interrupted op may simply be dropped.
 *
 * @internal
 */
export class BufferPool {
  private readonly free: Array<Uint8Array> = []

  constructor(
    readonly size: number,
    /** Buffers kept at most; more given back are left to the GC. */
    private readonly keep: number
  ) {}

  take(): Uint8Array {
    return this.free.pop() ?? new Uint8Array(this.size)
  }

  give(buffer: Uint8Array): void {
    if (this.free.length < this.keep) this.free.push(buffer)
  }
}
