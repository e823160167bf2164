//! The two threads of a ring. The submission thread is the only one that touches the submission
//! queue and calls `submit`; the completion thread is the only one that touches the completion
//! queue and waits with `enter(0, 1, GETEVENTS)`, never submitting.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use io_uring::{opcode, squeue, types, Submitter};

use crate::op::Next;
use crate::ring::{Completion, Shared};
use crate::state::{InFlight, State};

/// `user_data` of cancel entries: their completions only free budget.
const CANCEL_TAG: u64 = 1 << 63;
/// `user_data` of the NOP that wakes the completion thread at shutdown.
const WAKE_TAG: u64 = (1 << 63) | 1;

/// `io_uring_enter` flag: wait for (and run the work of) completions.
const IORING_ENTER_GETEVENTS: u32 = 1;

/// How long the submission thread sleeps between kernel entries when COOP_TASKRUN defers task
/// work to it and operations are in flight.
const COOP_TICK: Duration = Duration::from_millis(1);

fn transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN | libc::EINTR))
}

/// Pushes everything the kernel can take now; returns ops that ended without reaching it.
fn fill(shared: &Shared, st: &mut State, ended: &mut Vec<Completion>) {
    // SAFETY: only this thread creates submission queue views, one at a time.
    let mut sq = unsafe { shared.ring.submission_shared() };
    if st.closing && !st.cancel_all_sent && !sq.is_full() {
        let cancel_all = opcode::AsyncCancel2::new(types::CancelBuilder::any().all()).build().user_data(CANCEL_TAG);
        // SAFETY: the entry carries no pointers.
        if unsafe { sq.push(&cancel_all) }.is_ok() {
            st.cancel_all_sent = true;
            st.in_kernel += 1;
            st.cancels.clear();
        }
    }
    while !sq.is_full() && st.in_kernel < shared.cq_entries {
        let Some(key) = st.cancels.pop() else { break };
        if st.slab.get_mut(key).is_some_and(|op| op.in_kernel) {
            let cancel = opcode::AsyncCancel::new(key).build().user_data(CANCEL_TAG);
            // SAFETY: the entry carries no pointers.
            if unsafe { sq.push(&cancel) }.is_err() {
                st.cancels.push(key);
                break;
            }
            st.in_kernel += 1;
        }
    }
    if st.abandoned_queued > 0 {
        let State { queue, slab, abandoned_queued, .. } = &mut *st;
        queue.retain(|&key| {
            if !slab.get(key).is_some_and(|op| op.abandoned) {
                return true;
            }
            if let Some(op) = slab.remove(key) {
                ended.push(discard(op));
            }
            false
        });
        *abandoned_queued = 0;
    }
    while let Some(&key) = st.queue.front() {
        let State { slab, files, closing, in_kernel, .. } = &mut *st;
        let Some(op) = slab.get_mut(key) else {
            st.queue.pop_front();
            continue;
        };
        if op.abandoned || *closing {
            st.queue.pop_front();
            if let Some(op) = st.slab.remove(key) {
                ended.push(discard(op));
            }
            continue;
        }
        if sq.is_full() || *in_kernel >= shared.op_budget {
            break;
        }
        let entry: squeue::Entry = op.op.entry(files).user_data(key);
        // SAFETY: every pointer in the entry points into heap memory owned by the op's slot,
        // which stays in the slab (unmoved, unfreed) until this key's completion is reaped.
        if unsafe { sq.push(&entry) }.is_err() {
            break;
        }
        op.in_kernel = true;
        *in_kernel += 1;
        st.queue.pop_front();
    }
}

/// Submits until the kernel has consumed every queued entry. Transient refusals are retried;
/// entries are never dropped, because their slots must stay until their completions arrive.
fn flush(shared: &Shared, submitter: &Submitter<'_>) {
    loop {
        // SAFETY: only this thread creates submission queue views.
        if unsafe { shared.ring.submission_shared() }.is_empty() {
            return;
        }
        match submitter.submit() {
            Ok(_) => {}
            Err(e) if transient(&e) => std::thread::yield_now(),
            // Nothing a caller did can cause this; back off instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Returns whether the completion thread was sent its wake-up (so it can be joined).
pub(crate) fn submission_loop(shared: &Shared) -> bool {
    let submitter = shared.ring.submitter();
    let mut ended = Vec::new();
    let mut st = shared.lock();
    loop {
        let front_ready = st.queue.front().is_some_and(|&key| {
            st.in_kernel < shared.op_budget || st.closing || st.slab.get(key).is_none_or(|op| op.abandoned)
        });
        let has_work =
            (st.closing && !st.cancel_all_sent) || !st.cancels.is_empty() || st.abandoned_queued > 0 || front_ready;
        if !has_work {
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
                let _ = unsafe { submitter.enter::<libc::sigset_t>(0, 0, IORING_ENTER_GETEVENTS, None) };
                st = shared.lock();
            } else {
                st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
                shared.submitter_idle.store(false, Ordering::SeqCst);
            }
            continue;
        }
        fill(shared, &mut st, &mut ended);
        if shared.iopoll && st.in_kernel > 0 {
            shared.reap_work.notify_one();
        }
        if st.closing && st.slab.is_empty() {
            shared.drained.notify_all();
        }
        drop(st);
        if !ended.is_empty() {
            shared.sink.deliver(std::mem::take(&mut ended));
        }
        flush(shared, &submitter);
        st = shared.lock();
    }
    drop(st);
    let wake = opcode::Nop::new().build().user_data(WAKE_TAG);
    // SAFETY: only this thread creates submission queue views; a NOP carries no pointers.
    let pushed = unsafe { shared.ring.submission_shared().push(&wake) }.is_ok();
    if pushed {
        flush(shared, &submitter);
    }
    pushed
}

pub(crate) fn completion_loop(shared: &Shared) {
    let submitter = shared.ring.submitter();
    let mut reaped: Vec<(u64, i32)> = Vec::with_capacity(shared.cq_entries);
    loop {
        if shared.iopoll {
            let mut st = shared.lock();
            while st.in_kernel == 0 && !st.stop {
                st = shared.reap_work.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        // SAFETY: no submission (to_submit = 0) and no argument struct.
        let waited = unsafe { submitter.enter::<libc::sigset_t>(0, 1, IORING_ENTER_GETEVENTS, None) };
        if let Err(e) = waited {
            if !transient(&e) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // SAFETY: only this thread creates completion queue views, one at a time; dropping the
        // view publishes the new head.
        reaped.extend(unsafe { shared.ring.completion_shared() }.map(|cqe| (cqe.user_data(), cqe.result())));
        if reaped.is_empty() {
            continue;
        }
        let mut batch = Vec::with_capacity(reaped.len());
        let mut woke = false;
        let mut st = shared.lock();
        for (user_data, res) in reaped.drain(..) {
            if user_data == WAKE_TAG {
                woke = true;
                continue;
            }
            st.in_kernel -= 1;
            if user_data == CANCEL_TAG {
                continue;
            }
            reap(&mut st, user_data, res, &mut batch);
        }
        if shared.submitter_idle.load(Ordering::SeqCst) && (!st.queue.is_empty() || !st.cancels.is_empty()) {
            shared.work.notify_one();
        }
        if st.closing && st.slab.is_empty() {
            shared.drained.notify_all();
        }
        let exit = woke && st.stop;
        drop(st);
        if !batch.is_empty() {
            shared.sink.deliver(batch);
        }
        if exit {
            return;
        }
    }
}

/// Ends an op that will not run (further): closes any fd it still holds, reports it cancelled.
fn discard(op: InFlight) -> Completion {
    if let Some(fd) = op.op.held_fd() {
        // SAFETY: the op opened `fd` and nobody else knows it; it is closed exactly once, here.
        unsafe { libc::close(fd) };
    }
    Completion { user: op.user, result: -libc::ECANCELED, output: None }
}

/// Applies one op's completion: resubmit the rest, or release its slot and deliver.
fn reap(st: &mut State, key: u64, res: i32, batch: &mut Vec<Completion>) {
    let closing = st.closing;
    let Some(op) = st.slab.get_mut(key) else { return };
    op.in_kernel = false;
    let result = match op.op.on_result(res) {
        Next::Resubmit if !op.abandoned && !closing => {
            st.queue.push_front(key);
            return;
        }
        Next::Resubmit => {
            if let Some(op) = st.slab.remove(key) {
                batch.push(discard(op));
            }
            return;
        }
        Next::Complete(result) => result,
    };
    let Some(op) = st.slab.remove(key) else { return };
    let mut result = result;
    if op.abandoned {
        if let Some(fd) = op.op.orphaned_fd(result) {
            // Nobody will ever receive this fd.
            // SAFETY: the kernel just opened `fd` for this op; nothing else knows it.
            unsafe { libc::close(fd) };
            result = -libc::ECANCELED;
        }
    }
    match op.op {
        crate::op::Op::RegisterFile { slot, .. } if result < 0 => st.files.release(slot),
        crate::op::Op::UnregisterFile { slot, .. } => st.files.release(slot),
        _ => {}
    }
    batch.push(Completion { user: op.user, result, output: op.op.into_output(result) });
}
