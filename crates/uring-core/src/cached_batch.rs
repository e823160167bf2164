//! A batch of cached reads on two cores: the calling thread and one helper thread take ranges
//! from a shared counter, each reading its own with `read_range_cached`, and the call returns
//! once every range has its answer.
//!
//! The ring cannot share such a batch across cores: the kernel submits a ring's entries, and
//! copies the cached ones, under one lock. Two threads each calling `preadv2` copy side by side.
//! Waking an idle vCPU costs tens of microseconds on the machines this was measured on, about
//! what a 64-range batch takes, so the helper keeps looking for the next batch for a while
//! (`SPIN`) before it sleeps; the calling thread never waits for it to wake, since it takes the
//! ranges the helper has not, and waits only for a range the helper is in the middle of, which
//! `RWF_NOWAIT` keeps from waiting for a device.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{read_range_cached, EngineError};

/// Batches of fewer ranges are read by the calling thread alone: waking the helper costs more.
pub const SHARED_FROM: usize = 8;
/// How long the helper looks for the next batch after one before it sleeps.
const SPIN: Duration = Duration::from_micros(50);
/// Spins of the calling thread waiting for the helper's last range before it yields its core.
const WAIT_SPINS: u32 = 1000;
/// The most ranges whose layout is kept between batches: a rare huge batch keeps no memory.
const LAYOUT_KEEP: usize = 1024;
/// The claim counter is `round << INDEX_BITS | next index`: under 2^24 ranges a batch, and 2^40
/// rounds before a round number comes back (a helper would have to stall between two loads of
/// the counter for that many batches to mistake an old batch for a new one).
const INDEX_BITS: u32 = 24;
/// The most ranges one batch may hold (a claim past the last never carries into the round).
pub const MAX_RANGES: usize = (1 << INDEX_BITS) - 1;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
const ROUND_MASK: u64 = (1 << (64 - INDEX_BITS)) - 1;

/// One range: its offset in the file, and where and how long it is in the buffer.
type Slice = (u64, usize, usize);

/// The batch being read, as the helper sees it. `round` names it: `Shared::claims` holds the
/// round it counts for, so a helper holding an older batch can claim nothing of a newer one.
#[derive(Clone, Copy)]
struct Batch {
    round: u64,
    fd: RawFd,
    buf: *mut u8,
    slices: *const Slice,
    results: *mut i32,
    count: usize,
    unread: i32,
}

// SAFETY: the pointers are dereferenced only for a range claimed in the batch's round, and the
// caller of `read` keeps them valid and unaliased until every claimed range has completed.
unsafe impl Send for Batch {}

struct Shared {
    /// `round << INDEX_BITS | next range to claim`.
    claims: AtomicU64,
    /// Ranges of the current round whose answer is written.
    completed: AtomicU32,
    /// Ranges of the current round left to the ring.
    unread: AtomicU32,
    batch: Mutex<Batch>,
    wake: Condvar,
    /// The helper waits on `wake` (set and cleared under `batch`'s lock).
    sleeping: AtomicBool,
    stop: AtomicBool,
    /// Ranges the helper has read, all rounds together.
    helped: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Helper {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

/// Reads batches of cached ranges on the calling thread and a helper thread, started at the
/// first batch of `SHARED_FROM` ranges or more (if it cannot start, the calling thread reads
/// alone). Used by one thread at a time (`&mut self`); stopped by `stop` or drop.
pub struct CachedBatchReader {
    helper: Option<Helper>,
    /// The helper was started, or could not be.
    tried: bool,
    stopped: bool,
    layout: Vec<Slice>,
}

impl Default for CachedBatchReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CachedBatchReader {
    pub fn new() -> Self {
        CachedBatchReader { helper: None, tried: false, stopped: false, layout: Vec::new() }
    }

    /// A reader that never starts a helper: every batch is read by the calling thread alone.
    pub fn without_helper() -> Self {
        CachedBatchReader { helper: None, tried: false, stopped: true, layout: Vec::new() }
    }

    /// Reads each of `ranges` (`(offset, length)`, into consecutive slices of `buf` from its
    /// start) as `read_range_cached` does: its answer goes to `results[i]`, or `unread` where the
    /// ring must read it. Returns how many were left to the ring. Refused before any read if the
    /// ranges do not fit `buf` or `results` has not one slot per range.
    pub fn read(
        &mut self,
        fd: RawFd,
        buf: &mut [u8],
        ranges: impl IntoIterator<Item = (u64, usize), IntoIter: ExactSizeIterator>,
        results: &mut [i32],
        unread: i32,
    ) -> Result<u32, EngineError> {
        let ranges = ranges.into_iter();
        let count = ranges.len();
        if results.len() != count || count > MAX_RANGES {
            return Err(EngineError::InvalidArgument(format!("a cached batch needs one result slot per range, and at most {MAX_RANGES} ranges")));
        }
        self.layout.clear();
        let mut at = 0usize;
        for (offset, len) in ranges {
            let end = at.checked_add(len).filter(|&end| end <= buf.len());
            let Some(end) = end else {
                return Err(EngineError::InvalidArgument("the batch's ranges are longer than its buffer".into()));
            };
            self.layout.push((offset, at, len));
            at = end;
        }
        let shared = if count >= SHARED_FROM { self.helper() } else { None };
        let batch = Batch {
            round: 0,
            fd,
            buf: buf.as_mut_ptr(),
            slices: self.layout.as_ptr(),
            results: results.as_mut_ptr(),
            count,
            unread,
        };
        let unread = match shared {
            // SAFETY: `buf`, `layout` and `results` are borrowed until this returns, and the ranges
            // laid out above lie inside `buf` without overlapping.
            Some(shared) => unsafe { read_shared(&shared, batch) },
            None => {
                let alone = Shared::alone();
                // SAFETY: `buf`, `layout` and `results` are borrowed for this call, and the ranges
                // laid out above lie inside `buf` without overlapping; only this thread reads them.
                unsafe { read_claimed(&alone, &batch) };
                alone.unread.load(Ordering::Relaxed)
            }
        };
        self.layout.clear();
        self.layout.shrink_to(LAYOUT_KEEP);
        Ok(unread)
    }

    /// Whether the helper thread is running.
    pub fn helping(&self) -> bool {
        self.helper.is_some()
    }

    /// How many ranges the helper thread has read so far.
    pub fn helped(&self) -> u64 {
        self.helper.as_ref().map_or(0, |helper| helper.shared.helped.load(Ordering::Relaxed))
    }

    /// Stops the helper thread and waits for it; later batches are read by the calling thread.
    pub fn stop(&mut self) {
        self.stopped = true;
        if let Some(helper) = self.helper.take() {
            {
                let _batch = helper.shared.lock();
                helper.shared.stop.store(true, Ordering::Relaxed);
            }
            helper.shared.wake.notify_all();
            // A panic in the helper has nothing to hand on: its ranges were this thread's too.
            let _ = helper.thread.join();
        }
    }

    /// The helper's shared state, starting it at the first call. Not with one core to run on:
    /// the helper's look for the next batch would take it from the calling thread.
    fn helper(&mut self) -> Option<Arc<Shared>> {
        if !self.tried && !self.stopped {
            self.tried = true;
            if !std::thread::available_parallelism().is_ok_and(|cores| cores.get() >= 2) {
                return None;
            }
            let shared = Arc::new(Shared::alone());
            let theirs = Arc::clone(&shared);
            let spawned = std::thread::Builder::new().name("uring-read".into()).spawn(move || help(&theirs));
            self.helper = spawned.ok().map(|thread| Helper { shared, thread });
        }
        self.helper.as_ref().map(|helper| Arc::clone(&helper.shared))
    }
}

impl Drop for CachedBatchReader {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    /// State for a batch no helper takes part in (or for a helper not yet given one).
    fn alone() -> Shared {
        Shared {
            claims: AtomicU64::new(0),
            completed: AtomicU32::new(0),
            unread: AtomicU32::new(0),
            batch: Mutex::new(Batch {
                round: 0,
                fd: -1,
                buf: std::ptr::null_mut(),
                slices: std::ptr::null(),
                results: std::ptr::null_mut(),
                count: 0,
                unread: 0,
            }),
            wake: Condvar::new(),
            sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            helped: AtomicU64::new(0),
        }
    }
}

/// Reads `batch` with the helper: publishes it, claims ranges beside the helper, and returns once
/// every range has its answer, with how many were left to the ring.
///
/// # Safety
/// As for `read_claimed`, until this returns.
unsafe fn read_shared(shared: &Shared, batch: Batch) -> u32 {
    let batch = publish(shared, batch);
    // SAFETY: per this function's contract; the helper reads only ranges it claims in this round,
    // and this returns only after every claimed range has completed.
    unsafe { read_claimed(shared, &batch) };
    let mut spins = 0u32;
    while (shared.completed.load(Ordering::Acquire) as usize) < batch.count {
        // The helper is in the middle of a range: a copy, or a refusal that does not wait.
        spins += 1;
        if spins < WAIT_SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    shared.unread.load(Ordering::Relaxed)
}

/// Makes `batch` the next round for the helper, and wakes it if it sleeps.
fn publish(shared: &Shared, batch: Batch) -> Batch {
    let (batch, asleep) = {
        let mut current = shared.lock();
        let round = (current.round + 1) & ROUND_MASK;
        *current = Batch { round, ..batch };
        shared.completed.store(0, Ordering::Relaxed);
        shared.unread.store(0, Ordering::Relaxed);
        // Release: a claim of this round sees the counters reset and the batch above.
        shared.claims.store(round << INDEX_BITS, Ordering::Release);
        (*current, shared.sleeping.load(Ordering::Relaxed))
    };
    if asleep {
        shared.wake.notify_one();
    }
    batch
}

/// Claims and reads ranges of `batch` until none is left in its round; returns how many.
///
/// # Safety
/// `batch`'s pointers must be valid for its ranges, which must lie inside its buffer without
/// overlapping, until every range claimed in its round has completed.
unsafe fn read_claimed(shared: &Shared, batch: &Batch) -> u64 {
    let mut claims = shared.claims.load(Ordering::Acquire);
    let mut read = 0;
    loop {
        let index = (claims & INDEX_MASK) as usize;
        if claims >> INDEX_BITS != batch.round || index >= batch.count {
            return read;
        }
        if let Err(now) = shared.claims.compare_exchange_weak(claims, claims + 1, Ordering::AcqRel, Ordering::Acquire) {
            claims = now;
            continue;
        }
        // Nothing from the claim to `completed` below may panic: the caller waits for every
        // claimed range, and its buffer must not be written once it has returned.
        // SAFETY: `index` is below the batch's count, claimed once in its round, so its range
        // and result slot are this thread's alone until it marks the range completed.
        let answer = unsafe {
            let (offset, at, len) = *batch.slices.add(index);
            read_range_cached(batch.fd, std::slice::from_raw_parts_mut(batch.buf.add(at), len), offset)
        };
        let result = answer.unwrap_or_else(|| {
            shared.unread.fetch_add(1, Ordering::Relaxed);
            batch.unread
        });
        // SAFETY: as above.
        unsafe { batch.results.add(index).write(result) };
        // Release: the caller that sees the count sees the result and the bytes.
        shared.completed.fetch_add(1, Ordering::Release);
        read += 1;
        claims = shared.claims.load(Ordering::Acquire);
    }
}

/// The helper thread: reads ranges of each new round, looks for the next for `SPIN`, then sleeps
/// until one is published or it is stopped.
fn help(shared: &Shared) {
    let mut seen = 0u64;
    loop {
        let since = Instant::now();
        while shared.claims.load(Ordering::Acquire) >> INDEX_BITS == seen && since.elapsed() < SPIN {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::hint::spin_loop();
        }
        let batch = {
            let mut current = shared.lock();
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                if current.round != seen {
                    break *current;
                }
                shared.sleeping.store(true, Ordering::Relaxed);
                current = shared.wake.wait(current).unwrap_or_else(|poisoned| poisoned.into_inner());
                shared.sleeping.store(false, Ordering::Relaxed);
            }
        };
        seen = batch.round;
        // SAFETY: the caller that published `batch` waits for every range claimed in its round;
        // a round that has moved on lets this thread claim nothing of it.
        let read = unsafe { read_claimed(shared, &batch) };
        shared.helped.fetch_add(read, Ordering::Relaxed);
    }
}
