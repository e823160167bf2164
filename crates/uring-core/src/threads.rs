//! The two threads of a ring, and the same work done inline on a caller's thread (reads and
//! writes of FUSE files go to a ring's off-ring threads instead: `off_ring.rs`).
//!
//! Submission queue views exist only while the state lock is held, so entries are pushed by one
//! thread at a time; any thread may then `submit`, since the kernel consumes the queue under its
//! own lock. Completion queue views exist only while `Shared::reaper` is held. The completion
//! thread waits with `enter(0, 1, GETEVENTS)` and never submits; on rings whose caller reaps
//! (`caller_reaps`) it parks until the caller stops, stalls or the ring closes. Lock order: `reaper`, then
//! state, then `Shared::ready`; the record of fds handed out (`handed.rs`) is innermost.
//!
//! Each thread holds the kernel ring for its life, and work done inline holds it for the call
//! (`Shared::kernel`): a clean close drops the ring's own count after joining both threads, and
//! whoever holds the last count frees it, never a thread still using it.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, IoUring};

use crate::reap::{discard, reap_all, unlock_and_close, CANCEL_TAG, RESCUE_TAG, WAKE_TAG};
use crate::rescue;
use crate::ring::{Completion, Shared};
use crate::state::State;

/// `io_uring_enter` flag: wait for (and run the work of) completions.
const IORING_ENTER_GETEVENTS: u32 = 1;

/// How long the submission thread sleeps between kernel entries when COOP_TASKRUN defers task
/// work to it and operations are in flight.
const COOP_TICK: Duration = Duration::from_millis(1);

fn transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN | libc::EINTR))
}

/// Pushes everything the kernel can take now, in queue order; returns ops that ended without
/// reaching the kernel in `ended`. With `inline` (a caller's thread submitting), it stops before an
/// op that would take the budget of bytes to copy below zero, or that runs on a kernel worker
/// anyway while other ops are in the kernel (when nothing is, a lone op is not worth a hand-off),
/// and returns whether it stopped so.
fn fill(shared: &Shared, ring: &IoUring, st: &mut State, ended: &mut Vec<Completion>, mut inline: Option<&mut usize>) -> bool {
    // SAFETY: the state lock is held (`st`), as for every submission queue view, so this is the
    // only one, whichever thread fills (the submission thread, or a caller submitting inline).
    let mut sq = unsafe { ring.submission_shared() };
    if st.closing && !st.close_cancels_queued {
        // A cancel per op, not one ANY|ALL entry: over 32k blocked pipe reads the kernel spent
        // 25 s on that one (partly as task work on the JS thread that submitted them), where
        // cancels by key, sent as the completion queue has room, take a tenth of a second.
        let State { slab, cancels, .. } = &mut *st;
        cancels.clear();
        cancels.extend(slab.keys_where(|op| op.in_kernel));
        st.close_cancels_queued = true;
    }
    while !sq.is_full() && st.in_kernel < shared.cq_entries {
        let Some(key) = st.cancels.pop() else { break };
        // A close under way is left to end, as it soon does (`Op::closes`): checked here, where
        // a caller's and the shutdown's cancels go out (the rescue sends none: `can_rescue`).
        if let Some(op) = st.slab.get(key).filter(|op| op.in_kernel && !op.op.closes()) {
            let tag = if op.rescue.sent { RESCUE_TAG | key } else { CANCEL_TAG };
            let cancel = opcode::AsyncCancel::new(key).build().user_data(tag);
            // SAFETY: the entry carries no pointers.
            if unsafe { sq.push(&cancel) }.is_err() {
                st.cancels.push(key);
                break;
            }
            st.in_kernel += 1;
        } else {
            // Completed before its cancel went out, or a close: a rescue's has nothing to answer.
            rescue::cancel_answered(&mut st.watch, key, -libc::ENOENT);
        }
    }
    if st.abandoned_queued > 0 {
        let mut queue = std::mem::take(&mut st.queue);
        queue.retain(|&key| {
            if !st.slab.get(key).is_some_and(|op| op.abandoned) {
                return true;
            }
            if let Some(op) = st.remove(key) {
                discard(st, op, ended);
            }
            false
        });
        st.queue = queue;
        st.abandoned_queued = 0;
    }
    // Inline, every other large read that another follows goes to a kernel worker (IOSQE_ASYNC),
    // ahead of the next, which this thread copies meanwhile: one submit copied them all in turn,
    // since the kernel copies an inline read under the ring's submit lock.
    let mut last_to_worker = false;
    while let Some(&key) = st.queue.front() {
        let next_large = inline.is_some()
            && st.queue.get(1).is_some_and(|&next| st.slab.get(next).is_some_and(|op| op.op.large_read()));
        let State { slab, closing, in_kernel, off_ring, off_ring_idle, watch, .. } = &mut *st;
        let Some(op) = slab.get_mut(key) else {
            st.queue.pop_front();
            continue;
        };
        if op.abandoned || *closing {
            st.queue.pop_front();
            if let Some(op) = st.remove(key) {
                discard(st, op, ended);
            }
            continue;
        }
        // A copy of a file on FUSE is an off-ring thread's, not the kernel's (`off_ring.rs`).
        if op.on_fuse && op.op.transfer().is_some() && shared.off_ring_ready(*off_ring_idle, off_ring.len() + 1) {
            st.queue.pop_front();
            st.off_ring.push_back(key);
            shared.off_ring_work.notify_one();
            continue;
        }
        if sq.is_full() || *in_kernel >= shared.op_budget {
            break;
        }
        let mut to_worker = op.on_worker || op.on_fuse;
        if let Some(budget) = inline.as_deref_mut() {
            // Rescued from a caller's io-wq (`rescue.rs`): the submission thread's from now on.
            if op.rescue.off_caller {
                return true;
            }
            if op.op.large_read() && !to_worker {
                to_worker = next_large && !last_to_worker;
                last_to_worker = to_worker;
            }
            // A worker copies it: not this thread's time.
            let bytes = if to_worker { 0 } else { op.op.bytes_to_copy() };
            if bytes > *budget || ((op.op.runs_on_worker() || op.on_fuse || op.on_worker) && *in_kernel > 0) {
                return true;
            }
            *budget -= bytes;
        }
        let mut entry: squeue::Entry = op.op.entry().user_data(key);
        if to_worker {
            entry = entry.flags(squeue::Flags::ASYNC);
        }
        // SAFETY: every pointer in the entry points into heap memory owned by the op's slot,
        // which stays in the slab (unmoved, unfreed) until this key's completion is reaped.
        if unsafe { sq.push(&entry) }.is_err() {
            break;
        }
        if inline.is_some() {
            rescue::submitted_inline(watch, op);
        } else {
            rescue::submitted_by_thread(op);
        }
        op.in_kernel = true;
        *in_kernel += 1;
        st.queue.pop_front();
    }
    false
}

/// Whether the submission queue is empty.
fn sq_is_empty(shared: &Shared, ring: &IoUring) -> bool {
    sq_is_empty_locked(&shared.lock(), ring)
}

fn sq_is_empty_locked(_locked: &State, ring: &IoUring) -> bool {
    // SAFETY: the state lock is held (`_locked`), as for every submission queue view.
    unsafe { ring.submission_shared() }.is_empty()
}

/// Submits until the kernel has consumed every queued entry. Transient refusals are retried;
/// entries are never dropped, because their slots must stay until their completions arrive.
/// Returns false only when the kernel keeps refusing after the ring was told to stop: then
/// nothing will take the entries, and `close` must not wait for them.
fn submit_all(shared: &Shared, ring: &IoUring) -> bool {
    while !sq_is_empty(shared, ring) {
        match ring.submitter().submit() {
            Ok(_) => {}
            Err(e) if transient(&e) => std::thread::yield_now(),
            Err(_) if shared.lock().stop => return false,
            // Nothing a caller did can cause this; back off instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    true
}

/// Whether the submission thread has something to do. Entries left in the submission queue
/// count: an inline submit that the kernel refused leaves them for this thread.
fn has_work(shared: &Shared, ring: &IoUring, st: &State) -> bool {
    let front_ready = st.queue.front().is_some_and(|&key| {
        st.in_kernel < shared.op_budget || st.closing || st.slab.get(key).is_none_or(|op| op.abandoned)
    });
    (st.closing && !st.close_cancels_queued)
        || !st.to_close.is_empty()
        || !st.cancels.is_empty()
        || st.abandoned_queued > 0
        || front_ready
        || !sq_is_empty_locked(st, ring)
}

/// Returns whether the completion thread was sent its wake-up (so it can be joined).
pub(crate) fn submission_loop(shared: &Shared, ring: &IoUring) -> bool {
    let mut ended = Vec::new();
    let mut st = shared.lock();
    let mut looked = Instant::now();
    loop {
        if st.in_kernel > 0 && looked.elapsed() >= rescue::LOOK_EVERY {
            looked = Instant::now();
            rescue::look(&mut st);
        }
        if !has_work(shared, ring, &st) {
            if st.stop {
                break;
            }
            shared.submitter_idle.store(true, Ordering::SeqCst);
            if shared.coop_taskrun && st.in_kernel > 0 {
                st = shared.work.wait_timeout(st, COOP_TICK).unwrap_or_else(|p| p.into_inner()).0;
                shared.submitter_idle.store(false, Ordering::SeqCst);
                drop(st);
                // COOP_TASKRUN: completions that need this task's work run only when it enters.
                // SAFETY: no arguments; GETEVENTS with min_complete 0 returns at once.
                let _ = unsafe { ring.submitter().enter::<libc::sigset_t>(0, 0, IORING_ENTER_GETEVENTS, None) };
                st = shared.lock();
            } else if st.in_kernel > 0 {
                // Awake for the rescue's looks (`rescue.rs`) while ops are in the kernel.
                st = shared.work.wait_timeout(st, rescue::LOOK_EVERY).unwrap_or_else(|p| p.into_inner()).0;
                shared.submitter_idle.store(false, Ordering::SeqCst);
            } else {
                st.watch.asleep = true;
                st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
                st.watch.asleep = false;
                shared.submitter_idle.store(false, Ordering::SeqCst);
            }
            continue;
        }
        // This thread copies on its own time: no budget.
        fill(shared, ring, &mut st, &mut ended, None);
        wake_reaper(shared, &st);
        if st.closing && st.slab.is_empty() {
            shared.drained.notify_all();
        }
        unlock_and_close(st);
        if !ended.is_empty() {
            shared.sink.deliver(std::mem::take(&mut ended));
        }
        if !submit_all(shared, ring) {
            return false;
        }
        st = shared.lock();
    }
    let pushed = push_wake(&st, ring);
    drop(st);
    pushed && submit_all(shared, ring)
}

/// Queues the NOP that makes the completion thread return from its wait and exit.
fn push_wake(_locked: &State, ring: &IoUring) -> bool {
    let wake = opcode::Nop::new().build().user_data(WAKE_TAG);
    // SAFETY: the state lock is held (`_locked`); a NOP carries no pointers.
    unsafe { ring.submission_shared().push(&wake) }.is_ok()
}

/// Wakes a parked completion thread once entries are in the kernel for it to wait on. A condvar
/// notify is a futex call even with nobody waiting, so it is made only for a parked thread.
fn wake_reaper(shared: &Shared, st: &State) {
    if st.reaper_parked && st.in_kernel > 0 && !caller_reaps(shared, st) {
        shared.reap_work.notify_one();
    }
}

/// Whether completions are the caller's to reap (see `Ring::reap_ready`): the completion thread
/// then parks even with entries in the kernel.
fn caller_reaps(shared: &Shared, _locked: &State) -> bool {
    shared.caller_reaps.load(Ordering::SeqCst)
}

/// Reaps on the caller's thread what the kernel posted (`Ring::reap_ready`), unless the ring is
/// closing (its threads reap then). Returns whether work is queued that this reap made possible:
/// parts queued again, room freed in the kernel, or fds for the threads to close.
pub(crate) fn reap_for_caller(shared: &Shared, out: &mut Vec<Completion>) -> bool {
    shared.caller_seen.fetch_add(1, Ordering::SeqCst);
    let Some(ring) = shared.kernel() else { return false };
    let _reaper = shared.reaper.lock().unwrap_or_else(|p| p.into_inner());
    let mut st = shared.lock();
    if st.closing {
        return false;
    }
    let full = st.in_kernel >= shared.op_budget;
    // No shutdown NOP here: `close` queues it only after `closing` is set, under this lock.
    let reaped = reap_all(shared, &ring, &mut st, out);
    (reaped.requeued || (full && st.in_kernel < shared.op_budget) || !st.to_close.is_empty()) && has_work(shared, &ring, &st)
}

/// How often the completion thread of a ring whose caller reaps looks, while nothing is in the
/// kernel, whether something went there meanwhile: the caller does not wake it for each op (a
/// futex call per op), so a caller that submits and then stalls is found within this and
/// `caller_stall`.
const IDLE_TICK: Duration = Duration::from_millis(100);

/// Parks the completion thread while it has nothing to wait for in the kernel: nothing is there,
/// or the caller reaps (`caller_reaps`). A caller that neither reaps nor flushes for
/// `caller_stall` while entries are in the kernel may be blocked (a JS thread in a synchronous wait, or a long
/// turn): the thread then waits in the kernel as on other rings until the caller shows up again,
/// so ops that need a reap to go on (the rest of a short write to a pipe, the next stage of a
/// whole-file read, ops queued behind the kernel budget) do not wait for it. `stalled_at` keeps
/// the caller's count (`Shared::caller_seen`) at which it was found stalled.
fn park<'a>(shared: &'a Shared, mut st: MutexGuard<'a, State>, stalled_at: &mut Option<u64>) -> MutexGuard<'a, State> {
    loop {
        if st.stop || (st.in_kernel > 0 && !caller_reaps(shared, &st)) {
            return st;
        }
        let seen = shared.caller_seen.load(Ordering::SeqCst);
        st.reaper_parked = true;
        if st.in_kernel == 0 && !caller_reaps(shared, &st) {
            st = shared.reap_work.wait(st).unwrap_or_else(|p| p.into_inner());
        } else if st.in_kernel == 0 {
            st = shared.reap_work.wait_timeout(st, IDLE_TICK).unwrap_or_else(|p| p.into_inner()).0;
        } else if *stalled_at == Some(seen) {
            st.reaper_parked = false;
            return st;
        } else {
            *stalled_at = None;
            let (guard, waited) =
                shared.reap_work.wait_timeout(st, shared.caller_stall).unwrap_or_else(|p| p.into_inner());
            st = guard;
            if waited.timed_out() && shared.caller_seen.load(Ordering::SeqCst) == seen {
                *stalled_at = Some(seen);
            }
        }
        st.reaper_parked = false;
    }
}

pub(crate) fn completion_loop(shared: &Shared, ring: &IoUring) {
    let mut batch = Vec::new();
    let mut woken = false;
    let mut stalled_at = None;
    loop {
        // Sleep outside the kernel while nothing is in it, where that matters: an IOPOLL wait
        // busy-polls, and a thread waiting in the kernel is woken by every completion, even
        // those a caller reaps inline. Other rings wait in the kernel: one hand-off less.
        if shared.park_reaper {
            drop(park(shared, shared.lock(), &mut stalled_at));
        }
        // SAFETY: no submission (to_submit = 0) and no argument struct.
        let waited = unsafe { ring.submitter().enter::<libc::sigset_t>(0, 1, IORING_ENTER_GETEVENTS, None) };
        if let Err(e) = waited {
            if !transient(&e) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let reaper = shared.reaper.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = shared.lock();
        let full = st.in_kernel >= shared.op_budget;
        let reaped = reap_all(shared, ring, &mut st, &mut batch);
        drop(reaper);
        // Wake the submission thread only for work this reap made possible: parts queued again,
        // or room freed in the kernel. Ops a caller queued and has not flushed yet are not its
        // business: that caller may be about to submit them inline.
        let unblocked = reaped.requeued || (full && st.in_kernel < shared.op_budget);
        if unblocked && shared.submitter_idle.load(Ordering::SeqCst) && has_work(shared, ring, &st) {
            shared.work.notify_one();
        }
        woken |= reaped.woke;
        // After a close that gave up on ops still in the kernel it stays until they complete, so
        // their callers hear of them when the kernel is done, not never. Ops not in the kernel
        // have nothing left to wait for.
        let exit = woken && st.stop && (st.slab.is_empty() || st.in_kernel == 0);
        unlock_and_close(st);
        if !batch.is_empty() {
            shared.sink.deliver(std::mem::take(&mut batch));
        }
        if exit {
            return;
        }
    }
}

/// After a close that gave up on ops still in the kernel: reaps on the caller's thread until every
/// one has completed, for a caller about to free memory lent to them. It shares the queue with
/// the completion thread, which stays for those ops; what this reaps is dropped (nobody is left
/// to receive it), and fds the engine holds are closed as usual.
pub(crate) fn reap_abandoned(shared: &Shared) {
    // Only a clean close releases the ring, and it leaves nothing to reap.
    let Some(ring) = shared.kernel() else { return };
    let mut batch = Vec::new();
    loop {
        // Held while waiting too: a completion thread still alive waits its turn.
        let reaper = shared.reaper.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = shared.lock();
        let woke = reap_all(shared, &ring, &mut st, &mut batch).woke;
        batch.clear();
        let done = st.slab.is_empty();
        unlock_and_close(st);
        if woke || done {
            // The completion thread, alive until the last op completes, may be waiting in the
            // kernel for a completion this took, or need the shutdown NOP this reaped: one more
            // ends its wait (a thread gone already leaves it unread).
            pass_on_wake(shared, &ring);
        }
        if done {
            return;
        }
        // Submits anything a stopped submission thread left queued, and waits for a completion.
        if let Err(e) = ring.submitter().submit_and_wait(1) {
            if !transient(&e) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(reaper);
    }
}

/// Rounds of submit-and-reap one inline call makes before handing leftovers (resubmitted
/// remainders of short reads, the next phase of a whole-file read) to the submission thread.
const INLINE_ROUNDS: usize = 4;
/// Bytes one inline call may copy: about a millisecond of the caller's time at the page cache's
/// copy speed here. Larger transfers go to the submission thread, so a few big cached reads do
/// not stall the JS event loop.
const INLINE_BYTES: usize = 4 << 20;

/// The submission thread's work, done on the caller's thread: pushes what is queued, submits it,
/// and reaps whatever completed meanwhile into `out` (a cached read is copied inside the submit
/// call, so its completion is already there). Returns whether work is left for the submission
/// thread. Ops the kernel finishes later are reaped by the caller's event loop
/// (`Ring::reap_ready`) or, on other rings, by the completion thread.
///
/// With `settle` (a caller's last flush before its event loop waits), completions taken here
/// also reset the eventfd of a ring whose caller reaps, so the loop is not woken to find them
/// gone; other flushes leave that to the loop's one wake-up per turn, which costs less than a
/// reset per call when a turn flushes many times.
pub(crate) fn submit_inline(shared: &Shared, out: &mut Vec<Completion>, settle: bool) -> bool {
    shared.caller_seen.fetch_add(1, Ordering::SeqCst);
    // This thread's io-wq was found keeping ops queued (`rescue.rs`): the submission thread's.
    if rescue::caller_stalled() {
        return true;
    }
    let Some(ring) = shared.kernel() else { return false };
    // The completion thread holds this only while it walks the completion queue.
    let reaper = shared.reaper.lock().unwrap_or_else(|p| p.into_inner());
    let mut budget = INLINE_BYTES;
    for _ in 0..INLINE_ROUNDS {
        let mut st = shared.lock();
        if st.closing || !st.to_close.is_empty() {
            // Shutdown's cancels and drain belong to the threads, and so do closes,
            // which may block.
            return true;
        }
        if !has_work(shared, &ring, &st) {
            return false;
        }
        let over_budget = fill(shared, &ring, &mut st, out, Some(&mut budget));
        drop(st);
        if !submit_now(shared, &ring) {
            return true;
        }
        let mut st = shared.lock();
        let reaped = reap_all(shared, &ring, &mut st, out);
        let mut woke = reaped.woke;
        // Completions posted inside this call signalled the eventfd: reset it, then take what
        // came meanwhile (its signal may be the one just reset; later ones signal anew).
        if settle && reaped.any && shared.drain_ready() {
            woke |= reap_all(shared, &ring, &mut st, out).woke;
        }
        // Entries the kernel finishes later (on its workers, or after I/O): the completion
        // thread's turn, unless the caller's event loop reaps; and the submission thread's looks.
        wake_reaper(shared, &st);
        if st.in_kernel > 0 && std::mem::take(&mut st.watch.asleep) {
            shared.work.notify_one();
        }
        if woke {
            // Only a concurrent `close` queues the NOP: it was meant for the completion thread,
            // which cannot exit without it.
            drop(st);
            pass_on_wake(shared, &ring);
        }
        if over_budget {
            return true;
        }
    }
    drop(reaper);
    has_work(shared, &ring, &shared.lock())
}

/// Queues the shutdown NOP again for the completion thread after a caller reaped it inline, and
/// hands it to the kernel; a full submission queue is submitted first to make room.
fn pass_on_wake(shared: &Shared, ring: &IoUring) {
    loop {
        let pushed = push_wake(&shared.lock(), ring);
        if !submit_all(shared, ring) || pushed {
            return;
        }
    }
}

/// Submits the queued entries from a caller's thread, retrying a refusal only briefly: a
/// caller must not spin. Returns whether the kernel took them all.
fn submit_now(shared: &Shared, ring: &IoUring) -> bool {
    for _ in 0..3 {
        if sq_is_empty(shared, ring) {
            return true;
        }
        match ring.submitter().submit() {
            Ok(_) => {}
            Err(e) if transient(&e) => {}
            Err(_) => return false,
        }
    }
    sq_is_empty(shared, ring)
}

