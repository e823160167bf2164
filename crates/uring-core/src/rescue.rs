//! Ops a caller's thread submitted inline and its kernel workers never ran.
//!
//! An op the kernel cannot finish at once goes to the io-wq of the thread that submitted it, and
//! a caller submitting inline (the JavaScript thread) has its own. On Linux 6.18.44 such an io-wq
//! was seen to stop running the work it took, for good (a soak, `cachedReads: false`, about one
//! run in six): ops stayed queued there with its one worker idle, an `ASYNC_CANCEL` found them
//! queued (answered 0) and ended them at once, and every later op the thread handed it joined
//! them, on every ring the thread submits to. Nothing a caller can do gets the thread a new
//! io-wq.
//!
//! So the submission thread looks, every `LOOK_EVERY` while ops are in the kernel, for ops a
//! caller's thread submitted inline more than `RESCUE_AFTER` looks ago that cannot be waiting for
//! a poll (a pipe's or socket's read may wait forever), and cancels them. One that comes back
//! cancelled, and that its caller still wants, is submitted again by the submission thread,
//! whose own io-wq runs it (`reap::reap`). A cancel that found its op still queued marks the
//! caller's thread: its inline flushes leave everything to the submission threads from then on,
//! for every ring (`caller_stalled`). A healthy io-wq whose workers are all busy for that long
//! (a slow network file system) gets the same treatment, which costs it only the inline path.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::files::{regular_or_block, FileTable};
use crate::op::{Op, WholeFilePhase};
use crate::slab::OpKey;
use crate::state::{InFlight, State};

/// How often the submission thread looks while ops are in the kernel.
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Looks an op submitted inline may stay in the kernel before it is rescued: about two seconds,
/// where a queued op of a working io-wq was never seen to wait half a second in the soaks.
const RESCUE_AFTER: u32 = 8;

/// What the rescue knows of an op.
#[derive(Clone, Copy, Default)]
pub(crate) struct OpRescue {
    /// The thread that submitted it inline (its tid), or 0: the submission thread did, or the
    /// op cannot be rescued.
    caller: libc::pid_t,
    /// The look at which it was submitted inline.
    at: u32,
    /// A rescue cancel was sent for it: its cancelled completion is not its caller's.
    pub(crate) sent: bool,
    /// It was rescued: only the submission thread submits it.
    pub(crate) off_caller: bool,
}

/// The ring's side of the rescue, under the state lock.
#[derive(Default)]
pub(crate) struct Watch {
    /// Looks so far.
    tick: u32,
    /// Rescue cancels in the kernel, with the thread whose io-wq each op was queued in.
    sent: Vec<(OpKey, libc::pid_t)>,
    /// The submission thread waits with no timeout (nothing was in the kernel): a caller that
    /// leaves ops there wakes it for its looks.
    pub(crate) asleep: bool,
}

/// Callers' threads whose io-wq kept an op queued past `RESCUE_AFTER`.
static STALLED: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());
/// How many threads `STALLED` holds: a caller compares it with what it last saw.
static STALLED_COUNT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TID: libc::pid_t = {
        // SAFETY: gettid takes no arguments and cannot fail.
        unsafe { libc::gettid() }
    };
    /// `STALLED_COUNT` when this thread last looked, and whether it was in `STALLED` then.
    static SEEN: Cell<(usize, bool)> = const { Cell::new((0, false)) };
}

/// Whether the calling thread's io-wq was found keeping ops queued: its inline flushes submit
/// nothing. One atomic load while no thread is marked.
pub(crate) fn caller_stalled() -> bool {
    let count = STALLED_COUNT.load(Ordering::Acquire);
    if count == 0 {
        return false;
    }
    SEEN.with(|seen| {
        let (at, stalled) = seen.get();
        if at == count {
            return stalled;
        }
        let tid = TID.with(|tid| *tid);
        let stalled = STALLED.lock().unwrap_or_else(|p| p.into_inner()).contains(&tid);
        seen.set((count, stalled));
        stalled
    })
}

fn mark_stalled(tid: libc::pid_t) {
    let mut stalled = STALLED.lock().unwrap_or_else(|p| p.into_inner());
    if !stalled.contains(&tid) {
        stalled.push(tid);
        STALLED_COUNT.store(stalled.len(), Ordering::Release);
    }
}

/// Notes that the calling thread submits `op` inline now.
pub(crate) fn submitted_inline(watch: &Watch, op: &mut InFlight) {
    op.rescue.caller = TID.with(|tid| *tid);
    op.rescue.at = watch.tick;
}

/// Notes that the submission thread submits `op` now.
pub(crate) fn submitted_by_thread(op: &mut InFlight) {
    op.rescue.caller = 0;
}

/// One look (the submission thread's, every `LOOK_EVERY` while ops are in the kernel): queues a
/// rescue cancel for each op submitted inline `RESCUE_AFTER` looks ago or more that can be
/// rescued.
pub(crate) fn look(st: &mut State) {
    st.watch.tick = st.watch.tick.wrapping_add(1);
    let tick = st.watch.tick;
    let old: Vec<OpKey> = st
        .slab
        .keys_where(|op| {
            op.in_kernel && op.rescue.caller != 0 && !op.rescue.sent && !op.abandoned && tick.wrapping_sub(op.rescue.at) >= RESCUE_AFTER
        })
        .collect();
    for key in old {
        let State { slab, files, watch, cancels, .. } = &mut *st;
        let Some(op) = slab.get_mut(key) else { continue };
        if !can_rescue(&op.op, files) {
            // Asked once: a pipe's read may wait for as long as it likes.
            op.rescue.caller = 0;
            continue;
        }
        op.rescue.sent = true;
        watch.sent.push((key, op.rescue.caller));
        cancels.push(key);
    }
}

/// Whether an op that waits in the kernel can only be waiting for a kernel worker, so that a
/// cancel and a new submission lose nothing: not one that may be waiting for a poll (a read or
/// write of a pipe, socket or terminal), and not a close or a registration, which always run.
fn can_rescue(op: &Op, files: &FileTable) -> bool {
    match op {
        Op::Read { target, .. } | Op::Write { target, .. } => files.in_parts(*target),
        Op::WholeFile { phase: WholeFilePhase::Transfer { fd, .. }, .. } => regular_or_block(*fd),
        Op::RegisterFile { .. } | Op::UnregisterFile { .. } => false,
        // Once under way its fd is gone: an EINTR would send it again, to close the number twice.
        op if op.closes() => false,
        _ => true,
    }
}

/// A rescue cancel for `key` completed with `res`: 0 means the op was still queued in its
/// caller's io-wq, whose thread is marked.
pub(crate) fn cancel_answered(watch: &mut Watch, key: OpKey, res: i32) {
    let Some(at) = watch.sent.iter().position(|&(sent, _)| sent == key) else { return };
    let (_, tid) = watch.sent.swap_remove(at);
    if res == 0 {
        mark_stalled(tid);
    }
}
