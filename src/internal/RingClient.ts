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
/** Completions one flush can return inline; more go through the completion callback. */
const INLINE_PAIRS = 256
/** Makes `flush` only wake the submission thread. */
const WAKE_ONLY = new Int32Array(0)
/**
 * `submitNow` calls per event-loop turn that may complete on the spot, and the bytes they may
 * move: past either, ops wait for the turn's flush, so a loop whose reads always complete at once
 * still lets the event loop turn, and soon.
 */
export const NOW_PER_TURN = 64
export const NOW_BYTES_PER_TURN = 4 * 1024 * 1024
/**
 * Completions the completion callback dispatches per event-loop turn; past it they wait for the
 * turn's flush. Node runs queued threadsafe-function calls back to back in one loop iteration,
 * and each dispatch resumes fibers that submit again, so with many fibers one iteration could
 * go on for seconds without a timer or an I/O callback.
 */
export const DELIVERED_PER_TURN = 1024
/** `readCached` calls per event-loop turn (their bytes count against `NOW_BYTES_PER_TURN`). */
export const CACHED_PER_TURN = 1024
/**
 * Reads a turn takes on this thread past its budget, from callers that waited a turn for it
 * (`readCached`'s `waited`), and their bytes: enough for a few hundred fibers to wait once each.
 * Between two polls of the event loop, reads on this thread are thus bounded by two budgets (the
 * rest of one turn's, spent by callbacks of the poll, then the next turn's) and this.
 */
export const WAITED_PER_TURN = 256
export const WAITED_BYTES_PER_TURN = 1024 * 1024
/**
 * What a `readFileCached` or `statCached` call counts against `CACHED_PER_TURN`: its lookup, mount
 * check, stat or read, and close cost about four cached reads, so a turn of them holds the loop
 * about as long (a few ms).
 */
export const CACHED_FILE_COST = 4

/** `errno` of an op that did not run (`cancel` of an op already dispatched reports it). */
const ECANCELED = 125

/** What `NativeRing.readManyCached` leaves in the result slot of a range the ring must read. */
export const UNREAD = -0x80000000

/** The bytes of the ranges (`[offset, length, ...]`) whose result slot holds `UNREAD`. */
export const unreadBytes = (ranges: Float64Array, results: Int32Array): number => {
  let bytes = 0
  for (let i = 0; i < results.length; i++) if (results[i] === UNREAD) bytes += ranges[2 * i + 1]!
  return bytes
}

/** Receives an op's result: bytes, an fd, a slot, 0, or `-errno`. @internal */
export type OnResult = (result: number, id?: number) => void

/** @internal */
export class RingClient {
  readonly native: NativeRing
  /** Indexed by op id; index 0 is never used (ids are positive). */
  private readonly callbacks: Array<OnResult | undefined> = [undefined]
  private readonly memory: Array<unknown> = [undefined]
  private readonly freeIds: Array<number> = []
  private pendingCount = 0
  private batchCount = 0
  private flushScheduled = false
  private unflushed = 0
  /** Completions flushes reaped on this thread, as `[opId, result]` pairs, to dispatch. */
  private readonly inline = new Int32Array(2 * INLINE_PAIRS)
  /** Pairs held in `inline`. */
  private inlineCount = 0
  /** What `submitNow` may still complete on the spot this turn. */
  private nowLeft = NOW_PER_TURN
  private nowBytesLeft = NOW_BYTES_PER_TURN
  private cachedLeft = CACHED_PER_TURN
  /** What reads that waited a turn may still take past the budget this turn. */
  private waitedLeft = WAITED_PER_TURN
  private waitedBytesLeft = WAITED_BYTES_PER_TURN
  /** What the completion callback may still dispatch this turn. */
  private deliveredLeft = DELIVERED_PER_TURN
  /** Completions past that, as `[opId, result]` pairs: the next turn's flush dispatches them. */
  private readonly deferred: Array<number> = []
  /** Work that found the turn's budget spent: the next turn's flush runs it first, in order. */
  private readonly waiting: Array<() => boolean> = []
  /** Callers waiting for the next turn (`afterTurn`): its flush wakes them, in order. */
  private wakes: Array<() => void> = []

  constructor(options: NativeRingOptions = {}) {
    this.native = new (load().NativeRing)(options, this.onBatch)
  }

  /** Ops submitted whose completion has not been dispatched yet. */
  get pending(): number {
    return this.pendingCount
  }

  /** Completion batches delivered through `onComplete` so far, by the event loop's reap or the completion thread (completions a flush reaped inline are not counted). */
  get batches(): number {
    return this.batchCount
  }

  get closed(): boolean {
    return this.native.isClosed() === 1
  }

  /**
   * Submits through `start(id)` (one of the native submit methods) and calls `onResult` with the
   * completion. `keep` is held until then. Returns the op id; throws what the binding throws, in
   * which case nothing is pending.
   */
  submit(start: (native: NativeRing, id: number) => number, onResult: OnResult, keep?: unknown): Submitted {
    const op = this.start(start, onResult, keep)
    this.submitted(1)
    return op
  }

  /**
   * Like `submit`, but flushes at once: when the engine completes the op inline (a cached read
   * of `bytes`, a buffered write), `onResult` runs before this returns. Other ops' completions
   * reaped by that flush still wait for the turn's flush. Past the turn's budget
   * (`NOW_PER_TURN`, `NOW_BYTES_PER_TURN`), or while the inline buffer is full, this is `submit`.
   */
  submitNow(
    start: (native: NativeRing, id: number) => number,
    onResult: OnResult,
    keep: unknown,
    bytes: number
  ): Submitted {
    if (!this.takeNow(bytes)) return this.submit(start, onResult, keep)
    const op = this.start(start, onResult, keep)
    const from = 2 * this.inlineCount
    this.flushNow()
    let result: number | undefined
    for (let i = from; i < 2 * this.inlineCount; i += 2) {
      if (this.inline[i] !== op.id) continue
      result = this.inline[i + 1]!
      // Taken out of the turn's dispatch: id 0 is never an op's.
      this.inline[i] = 0
      if (this.inlineCount === 1) this.inlineCount = 0
      break
    }
    if (this.inlineCount > 0) this.scheduleTurn()
    if (result === undefined) {
      this.pend(1)
    } else {
      this.release(op.id)
      onResult(result, op.id)
    }
    return op
  }

  /**
   * Reads on this thread what the page cache holds of `buffer.length` bytes at `offset` (see
   * `NativeRing.readCached`): the count or `-errno`, or `undefined` once the turn's budget is
   * spent, so a loop of cached reads still lets the event loop turn. A read that `waited` a turn
   * for this (`afterTurn`) takes from `WAITED_PER_TURN` first, which other reads cannot spend, so
   * it is not refused again behind fibers that loop, and leaves the budget to them.
   */
  readCached(fd: number, buffer: Uint8Array, offset: number, waited = false): number | undefined {
    return (waited && this.takeWaited(buffer.length)) || this.takeCached(1, buffer.length)
      ? this.native.readCached(fd, buffer, offset)
      : undefined
  }

  /**
   * Calls `wake` in the next turn's flush, once the budget is renewed and the work of `nextTurn`
   * has run, before that turn's completions are dispatched: for a caller that found the budget
   * spent and retries itself then (see `readCached`'s `waited`). Unlike `nextTurn`, the work is
   * the caller's, so a caller that gave up meanwhile (an interrupted fiber) does nothing when
   * woken.
   */
  afterTurn(wake: () => void): void {
    this.wakes.push(wake)
    this.scheduleTurn()
  }

  /**
   * `NativeRing.readManyCached` within the same per-turn budget as `readCached`, a call per range
   * (`undefined`, and nothing read, once it is spent): how many ranges are left to the ring.
   * Charged only the bytes of the ranges read here: the ring's submit charges the rest.
   */
  readManyCached(fd: number, buffer: Uint8Array, ranges: Float64Array, results: Int32Array, bytes: number): number | undefined {
    if (!this.takeCached(results.length, bytes)) return undefined
    const left = this.native.readManyCached(fd, buffer, ranges, results)
    if (left > 0) this.nowBytesLeft += unreadBytes(ranges, results)
    return left
  }

  /**
   * `NativeRing.readFileCached` within the same per-turn budget as `readCached` (`undefined` once
   * it is spent): a whole file read here, or `-EAGAIN` when the ring must read it.
   */
  readFileCached(dirfd: number, path: string, buffer: Uint8Array): number | undefined {
    if (!this.takeCached(CACHED_FILE_COST, buffer.length)) return undefined
    const read = this.native.readFileCached(dirfd, path, buffer)
    // Charged what it copied, not the buffer's room: most files fill a fraction of it.
    this.nowBytesLeft += buffer.length - Math.max(read, 0)
    return read
  }

  /**
   * `NativeRing.statCached` within the same per-turn budget as `readCached`, at the cost of a
   * cached file (`undefined` once it is spent): 0, the lookup's `-errno`, or `-EAGAIN` when the
   * ring must do it.
   */
  statCached(dirfd: number, path: string, flags: number, mask: number, out: Uint8Array): number | undefined {
    return this.takeCached(CACHED_FILE_COST, 0) ? this.native.statCached(dirfd, path, flags, mask, out) : undefined
  }

  /**
   * Runs `work` at the start of the next turn's flush, once the budget is renewed and before any
   * completion of that turn is dispatched: for work on this thread that found the budget spent,
   * and whose fallback (the ring) costs far more than waiting a turn. `work` returns false when
   * it finds the budget spent again: it then stays first in line for the turn after, with all
   * work behind it, so a fiber that loops cannot take a new turn's budget ahead of what waits,
   * and a turn tries no more work than its budget lets through.
   */
  nextTurn(work: () => boolean): void {
    this.waiting.push(work)
    this.scheduleTurn()
  }

  /** Wakes every caller waiting for this turn; what a wake threw is rethrown apart. */
  private runWakes(): void {
    const wakes = this.wakes
    this.wakes = []
    for (const wake of wakes) {
      try {
        wake()
      } catch (error) {
        rethrowApart(error)
      }
    }
  }

  /** Runs waiting work in order until one piece finds the budget spent; what it threw is rethrown apart. */
  private runWaiting(): void {
    let done = 0
    for (; done < this.waiting.length; done++) {
      let ran = true
      try {
        ran = this.waiting[done]!()
      } catch (error) {
        rethrowApart(error)
      }
      if (!ran) break
    }
    this.waiting.splice(0, done)
    if (this.waiting.length > 0) this.scheduleTurn()
  }

  /** Takes `calls` of the turn's budget of reads on this thread, if they and `bytes` fit in what is left. */
  private takeCached(calls: number, bytes: number): boolean {
    if (this.cachedLeft < calls || bytes > this.nowBytesLeft) return false
    // The turn's flush renews the budget: make sure one comes, though no op may be pending.
    this.scheduleTurn()
    this.cachedLeft -= calls
    this.nowBytesLeft -= bytes
    return true
  }

  /** Takes one read of what waited reads may take this turn, if `bytes` fit in what is left. */
  private takeWaited(bytes: number): boolean {
    if (this.waitedLeft === 0 || bytes > this.waitedBytesLeft) return false
    // As `takeCached`: the turn's flush renews it.
    this.scheduleTurn()
    this.waitedLeft--
    this.waitedBytesLeft -= bytes
    return true
  }

  /** Takes one call of the turn's on-the-spot budget, if `bytes` fit in what is left. */
  private takeNow(bytes: number): boolean {
    if (this.nowLeft === 0 || bytes > this.nowBytesLeft || this.inlineCount === INLINE_PAIRS) return false
    // The turn's flush renews the budget: make sure one comes, even if every op completes here.
    if (--this.nowLeft === 0) this.scheduleTurn()
    this.nowBytesLeft -= bytes
    return true
  }

  /** Claims an id and submits through `start`; a refusal frees the id again and is thrown. */
  private start(start: (native: NativeRing, id: number) => number, onResult: OnResult, keep: unknown): Submitted {
    const id = this.claim(onResult, keep)
    try {
      return { id, token: start(this.native, id), client: this }
    } catch (error) {
      this.release(id)
      throw error
    }
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

  /** Counts `count` newly queued ops as pending and schedules their flush. */
  private submitted(count: number): void {
    if (count === 0) return
    this.pend(count)
    this.scheduleFlush(count)
  }

  /** Counts `count` more pending ops; the process stays alive while any is. */
  private pend(count: number): void {
    if (this.pendingCount === 0) this.native.ref()
    this.pendingCount += count
  }

  /**
   * Asks the kernel to cancel an op. `onSettled` replaces the op's callback: it runs when the
   * op's completion arrives (the real result or `-ECANCELED`), after which the kernel is done
   * with the op's memory.
   */
  cancel(op: Submitted, onSettled: OnResult): void {
    if (this.callbacks[op.id] === undefined) {
      // Completed and dispatched already: its result went to its own callback, so this one is
      // told nothing came of it (never a count, fd or slot someone would then own).
      onSettled(-ECANCELED)
      return
    }
    this.callbacks[op.id] = onSettled
    this.cancelInPlace(op)
  }

  /**
   * Asks the kernel to cancel an op and leaves its callback in place: the op's own caller gets
   * its completion, `-ECANCELED` if the cancel took. For a caller that did not submit the op (a
   * close cancelling what is in flight on its handle). Once the op has completed its token is
   * stale, and cancelling it does nothing.
   */
  cancelInPlace(op: Submitted): void {
    this.native.cancel(op.token)
  }

  /** This thread closes `fd` itself, off the ring: see `NativeRing.forgetFd`. Call it before the close. */
  forgetFd(fd: number): void {
    this.native.forgetFd(fd)
  }

  /**
   * Closes the ring: cancels in-flight ops and waits (bounded) for the kernel to finish them.
   * Returns whether every op finished; see `NativeRing.shutdown`.
   */
  shutdown(): boolean {
    return this.native.shutdown()
  }

  /**
   * Submits do not reach the kernel at once: one flush per turn of the event loop does it, so
   * the fibers resumed by one completion batch share one crossing and one wake-up. The flush is
   * a `setImmediate`, not a microtask: its completions (often inline) resume fibers that submit
   * again, and a microtask there would chain op after op without ever yielding to the loop,
   * starving timers and I/O and serializing fibers that wait on other completions.
   */
  private scheduleFlush(ops: number): void {
    // A long burst also flushes every FLUSH_EVERY ops, so the kernel starts on the first ops
    // while JS is still resuming fibers and submitting the rest.
    this.unflushed += ops
    if (this.unflushed >= FLUSH_EVERY) this.flushNow()
    this.scheduleTurn()
  }

  private scheduleTurn(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(this.flush)
  }

  /**
   * Hands the queued ops to the engine. While the ring is idle the engine submits them on this
   * thread, and cached reads come back from this very call, with no thread hand-off: they wait
   * in `inline` for this turn's `flush` to dispatch them, never inside a submit call.
   */
  private flushNow(settle = false): void {
    this.unflushed = 0
    const room = INLINE_PAIRS - this.inlineCount
    if (room === 0) {
      this.native.flush(WAKE_ONLY, false)
      return
    }
    this.inlineCount += this.native.flush(
      this.inlineCount === 0 ? this.inline : this.inline.subarray(2 * this.inlineCount),
      settle
    )
  }

  private readonly flush = (): void => {
    this.flushScheduled = false
    this.nowLeft = NOW_PER_TURN
    this.nowBytesLeft = NOW_BYTES_PER_TURN
    this.cachedLeft = CACHED_PER_TURN
    this.waitedLeft = WAITED_PER_TURN
    this.waitedBytesLeft = WAITED_BYTES_PER_TURN
    this.deliveredLeft = DELIVERED_PER_TURN
    if (this.deferred.length > 0) this.dispatchDeferred()
    if (this.waiting.length > 0) this.runWaiting()
    if (this.wakes.length > 0) this.runWakes()
    if (this.unflushed > 0) this.flushNow(true)
    const count = this.inlineCount
    if (count === 0) return
    // Callbacks may submit and flush again, adding pairs behind these: they wait a turn, so a
    // callback that always resubmits cannot keep this turn going forever.
    this.dispatch(this.inline, 2 * count)
    this.inline.copyWithin(0, 2 * count, 2 * this.inlineCount)
    this.inlineCount -= count
    if (this.inlineCount > 0) this.scheduleTurn()
  }

  private readonly onBatch = (batch: Int32Array): void => {
    this.batchCount++
    const now = this.deliverable(batch.length)
    if (now > 0) this.dispatch(batch, now)
    if (now === batch.length) return
    // Copied: the batch's memory is not ours past this call.
    for (let i = now; i < batch.length; i++) this.deferred.push(batch[i]!)
    this.scheduleTurn()
  }

  /** How many of `length` pair entries this turn's allowance still covers, taken from it. */
  private deliverable(length: number): number {
    const now = Math.min(length, 2 * this.deliveredLeft)
    this.deliveredLeft -= now / 2
    return now
  }

  /** Dispatches what earlier turns' completion callbacks deferred, within this turn's allowance. */
  private dispatchDeferred(): void {
    const now = this.deliverable(this.deferred.length)
    // A typed array, as every other dispatch gets: the loop's loads stay of one kind.
    const pairs = Int32Array.from(this.deferred.splice(0, now))
    this.dispatch(pairs, now)
    if (this.deferred.length > 0) this.scheduleTurn()
  }

  /** Runs the callbacks of the first `length / 2` `[opId, result]` pairs of `pairs`. */
  private dispatch(pairs: Int32Array, length: number): void {
    for (let i = 0; i < length; i += 2) {
      const id = pairs[i]!
      const callback = this.callbacks[id]
      if (callback === undefined) continue
      this.release(id)
      this.pendingCount--
      this.call(callback, pairs[i + 1]!, id)
    }
    if (this.pendingCount === 0) this.native.unref()
  }

  /** Runs one op's callback; what it throws is rethrown apart, so one caller's bug cannot strand the rest of a batch. */
  private call(callback: OnResult, result: number, id: number): void {
    try {
      callback(result, id)
    } catch (error) {
      rethrowApart(error)
    }
  }
}

/** Rethrows what a caller's code threw where it cannot stop the client's loop: in a microtask of its own. */
const rethrowApart = (error: unknown): void =>
  queueMicrotask(() => {
    throw error
  })

/** A submitted op: its id in the pending table, its cancel token and the client it went to. @internal */
export interface Submitted {
  readonly id: number
  readonly token: number
  readonly client: RingClient
}
