//! What a completion does to its op: the rest of a transfer queued again, or the op out of the
//! slab and its completion out to the caller; and the fds the engine must close itself.

use std::sync::MutexGuard;

use io_uring::IoUring;

use crate::cached;
use crate::op::{Next, Op, Target, WholeFilePhase};
use crate::rescue;
use crate::ring::{Completion, Shared};
use crate::state::{InFlight, State};

/// `user_data` of cancel entries: their completions only free budget.
pub(crate) const CANCEL_TAG: u64 = 1 << 63;
/// Marks the `user_data` of a cancel the rescue sent (`rescue.rs`), with the op's key in the low
/// bits (keys stay below 2^52: a 20-bit generation above a 32-bit index).
pub(crate) const RESCUE_TAG: u64 = 1 << 62;
/// `user_data` of the NOP that wakes the completion thread at shutdown.
pub(crate) const WAKE_TAG: u64 = (1 << 63) | 1;
/// `user_data` of the NOP that wakes whoever reaps in the kernel after an off-ring thread ended
/// an op (`off_ring::nudge`): its completion only frees budget.
pub(crate) const NUDGE_TAG: u64 = (1 << 63) | 2;

/// What one walk of the completion queue found besides finished ops.
#[derive(Default)]
pub(crate) struct Reaped {
    /// The shutdown NOP.
    pub woke: bool,
    /// Ops queued again for their next part.
    pub requeued: bool,
    /// Any completion at all (the kernel signalled the ring's eventfd, if it has one).
    pub any: bool,
}

/// Applies every completion in `ring`'s completion queue to the slab, adding what finished to
/// `batch`. The caller holds `Shared::reaper`.
pub(crate) fn reap_all(shared: &Shared, ring: &IoUring, st: &mut State, batch: &mut Vec<Completion>) -> Reaped {
    let mut found = Reaped::default();
    // SAFETY: completion queue views are only created with `reaper` held (the caller's duty);
    // dropping the view publishes the new head.
    for cqe in unsafe { ring.completion_shared() } {
        found.any = true;
        match cqe.user_data() {
            WAKE_TAG => found.woke = true,
            CANCEL_TAG | NUDGE_TAG => st.in_kernel -= 1,
            rescued if rescued & RESCUE_TAG != 0 && rescued & CANCEL_TAG == 0 => {
                st.in_kernel -= 1;
                rescue::cancel_answered(&mut st.watch, rescued & !RESCUE_TAG, cqe.result());
            }
            key => {
                st.in_kernel -= 1;
                found.requeued |= reap(st, key, interrupted_as_cancelled(cqe.result()), batch);
            }
        }
    }
    if st.closing && st.slab.is_empty() {
        shared.drained.notify_all();
    }
    found
}

/// The kernel's own restart codes (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND,
/// ERESTART_RESTARTBLOCK), which a syscall never returns but an op a kernel worker was running
/// when its cancel interrupted it can (an open waiting for a FIFO's reader gives -512): the op
/// was cancelled, and says so.
fn interrupted_as_cancelled(res: i32) -> i32 {
    if matches!(res, -516 | -514 | -513 | -512) {
        -libc::ECANCELED
    } else {
        res
    }
}

/// Releases the state lock, then closes the fds queued in `to_close`: nobody else knows them, and
/// a close may block, so never under the lock.
pub(crate) fn unlock_and_close(mut st: MutexGuard<'_, State>) {
    let fds = std::mem::take(&mut st.to_close);
    drop(st);
    for fd in fds {
        // SAFETY: the engine opened (or was asked to close) `fd` and nobody else holds it; it was
        // queued once, so it is closed exactly once, here.
        unsafe { libc::close(fd) };
    }
}

/// Ends an op that will not run (further): queues any fd it still holds for closing, and hands
/// on its completion as a cancel of its next step would end it (`Op::stopped`: a write's count
/// so far, a close asked for done).
pub(crate) fn discard(st: &mut State, mut op: InFlight, out: &mut Vec<Completion>) {
    st.to_close.extend(op.op.held_fd());
    let result = op.op.stopped();
    st.finish(op.member, Completion { user: op.user, result, output: None }, out);
}

/// Whether a read of `target` that was asked to stop (abandoned, or its ring closing) and came back
/// with a count (`Op::counted_read_target`) reports the cancel instead. The kernel completes a
/// read of a regular file or block device in more than one copy, and its count is not to be
/// trusted once a cancel has interrupted it: it reports the part copied before the cancel, short
/// of what the file holds there, where every caller takes a short count for the end of the file;
/// and a FUSE file opened for direct I/O whose read a cancel interrupted on a kernel worker was
/// seen reported whole, the second half of its buffer holding the file's first half (Linux
/// 6.18.44, `tests/cancelled_reads.rs`). Nothing a read of such a file does is consumed, and its
/// caller asked to stop, or its handle or ring is closing: it reports the cancel, whatever the
/// count. A pipe's, socket's or terminal's read completes after its first copy, and its bytes
/// are gone from the file: its count stands.
fn stopped_read_is_cancelled(st: &State, target: Target) -> bool {
    completes_in_parts(st, target)
}

/// Whether a read of `target` whose count ended short of its buffer at a page boundary
/// (`Op::read_cut_at_page`), with nothing asked to stop, reads on from there. Such a count of a
/// regular file is not always its end: under load, reads of a file that `fallocate` or
/// `ftruncate` had just extended past a partly written last page were seen to stop at the start
/// of that page (Linux 6.18.44; the file's size and a `pread` of the range at once agreed with
/// what had been written), and every caller takes a short count for the end of the file. The
/// kernel's own copy stops early only at a page boundary, so a count ending inside a page is the
/// end of the file and costs nothing more; one ending at a boundary costs a step that finds the
/// end (0) or the rest. A later step's error is the read's, as an exact read's is. A pipe's,
/// socket's or terminal's count stands: its next bytes may never come.
fn cut_read_goes_on(st: &State, target: Target) -> bool {
    completes_in_parts(st, target)
}

/// Whether `target` is open on a regular file or a block device (see `stopped_read_is_cancelled`
/// and `cut_read_goes_on`; a slot's file was asked as it was registered: `FileTable::in_parts`).
/// Asked under the state lock, but only of a read asked to stop or cut at a page boundary.
fn completes_in_parts(st: &State, target: Target) -> bool {
    st.files.in_parts(target)
}

/// Applies one op's completion (from the kernel, or from an off-ring thread): resubmit the rest,
/// or release its slot and deliver. Returns whether the op was queued again (its next part, or
/// the rest of a short transfer).
pub(crate) fn reap(st: &mut State, key: u64, res: i32, batch: &mut Vec<Completion>) -> bool {
    let closing = st.closing;
    let Some(op) = st.slab.get_mut(key) else { return false };
    op.in_kernel = false;
    // The rescue cancelled it (`rescue.rs`): from now on only the submission thread submits it,
    // and if the cancel ended it (taken off its queue, or interrupted on a worker, which leaves
    // a syscall undone), there it runs again, unless its caller has given up meanwhile.
    if std::mem::take(&mut op.rescue.sent) {
        op.rescue.off_caller = true;
        if matches!(-res, libc::ECANCELED | libc::EINTR) && !op.abandoned && !closing {
            st.queue.push_front(key);
            return true;
        }
    }
    // Only the step it was set for goes to a worker: a whole-file op's transfer that follows does not.
    let retried = std::mem::take(&mut op.on_worker);
    // io_uring tries an open without blocking first, and a FIFO opened for writing with no
    // reader then fails ENXIO where open(2) waits for one: once more on a kernel worker, which
    // blocks as open(2) does (and is cancelled like any worker's op). An open that asked for
    // O_NONBLOCK keeps its ENXIO, as does one already tried on a worker (a socket, a device).
    if res == -libc::ENXIO && !retried && !op.abandoned && !closing && op.op.open_waits_for_reader() {
        op.on_worker = true;
        st.queue.push_front(key);
        return true;
    }
    // Walked with no symlink followed, to keep off a daemon's or a server's file system
    // (`remote_mounts::outside_remote`), it met one (or openat2 refused flags openat takes): once
    // more as asked, on a kernel worker, whose answer is the open's own. Stopped meanwhile, it
    // reports the stop, not an error it never had.
    let mut res = res;
    if std::mem::take(&mut op.symlinks_refused) && matches!(-res, libc::ELOOP | libc::EINVAL) {
        op.op.follow_symlinks();
        if !op.abandoned && !closing {
            op.on_worker = true;
            st.queue.push_front(key);
            return true;
        }
        res = -libc::ECANCELED;
    }
    // A whole-file op's file is known once open: on FUSE, its transfer goes to an off-ring thread
    // and its close to a kernel worker, as a handed-out fd's copies would (`handed::on_fuse`).
    if res >= 0 && matches!(&op.op, Op::WholeFile { phase: WholeFilePhase::Open, buf, write, .. } if !buf.is_empty() || *write) {
        op.on_fuse = cached::on_fuse(res);
    }
    let next = op.op.on_result(res);
    let resubmit = !op.abandoned && !closing;
    // Asked to stop, a read's count may not be the file's (`stopped_read_is_cancelled`); not
    // asked, one ending at a page boundary may not be its end (`cut_read_goes_on`).
    let (stopped_read, cut_read) = match next {
        Next::Complete(result) if !resubmit => (op.op.counted_read_target(result), None),
        Next::Complete(_) => (None, op.op.read_cut_at_page(res)),
        Next::Resubmit => (None, None),
    };
    if cut_read.is_some_and(|target| cut_read_goes_on(st, target)) {
        st.queue.push_front(key);
        return true;
    }
    let result = match next {
        Next::Resubmit if resubmit => {
            st.queue.push_front(key);
            return true;
        }
        Next::Resubmit => {
            if let Some(op) = st.remove(key) {
                discard(st, op, batch);
            }
            return false;
        }
        Next::Complete(result) => result,
    };
    let mut result =
        if stopped_read.is_some_and(|target| stopped_read_is_cancelled(st, target)) { -libc::ECANCELED } else { result };
    let Some(op) = st.remove(key) else { return false };
    // An fd the kernel just opened for a caller that gave up, or for one whose ring is closing
    // (whose completion a closing ring may never deliver: `reap_abandoned` drops it), has no
    // other owner: the engine closes it, and the op reports it was cancelled. Any other is the
    // caller's from here, recorded as handed out (`handed.rs`) before its completion leaves the
    // engine. One or the other, never both: the record never names an fd the engine closes.
    if let Some(fd) = op.op.handed_fd(result) {
        if op.abandoned || closing {
            st.to_close.push(fd);
            result = -libc::ECANCELED;
        } else {
            // A whole-file op asked when its open completed; an open's fd is asked now.
            let fuse = if matches!(op.op, Op::WholeFile { .. }) { op.on_fuse } else { cached::on_fuse(fd) };
            st.handed.insert(fd, fuse);
        }
    }
    let released = match op.op {
        Op::RegisterFile { slot, .. } if result < 0 => Some(slot),
        Op::UnregisterFile { slot, .. } => Some(slot),
        _ => None,
    };
    if let Some(slot) = released {
        let own = st.files.release(slot);
        st.to_close.extend(own);
    }
    let member = op.member;
    let completion = Completion { user: op.user, result, output: op.op.into_output(result) };
    st.finish(member, completion, batch);
    false
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, RawFd};

    use super::reap;
    use crate::files::FileTable;
    use crate::memory::Memory;
    use crate::op::{Op, Target};
    use crate::ring::Completion;
    use crate::rescue::OpRescue;
    use crate::state::{InFlight, State};

    /// Reaps `steps` in turn for one read of `len` bytes at `offset` of `fd`: what each left
    /// queued again, and the completion if one was delivered.
    fn read_steps(fd: RawFd, offset: u64, len: usize, steps: &[i32]) -> (Vec<bool>, Option<i32>) {
        read_steps_in(&mut State::new(FileTable::new(4)), Target::Fd(fd), offset, len, false, steps)
    }

    /// `read_steps` of `target` with `st`'s files, the read asked to stop if `abandoned`.
    fn read_steps_in(
        st: &mut State,
        target: Target,
        offset: u64,
        len: usize,
        abandoned: bool,
        steps: &[i32],
    ) -> (Vec<bool>, Option<i32>) {
        let op = Op::read(target, Memory::zeroed(len), offset);
        let key = st.insert(InFlight {
            user: 7,
            op,
            in_kernel: true,
            abandoned,
            on_worker: false,
            symlinks_refused: false,
            on_fuse: false,
            member: None,
            rescue: OpRescue::default(),
        });
        let mut delivered: Vec<Completion> = Vec::new();
        let requeued = steps
            .iter()
            .map(|&res| {
                let again = reap(st, key, res, &mut delivered);
                assert_eq!(st.queue.iter().filter(|&&queued| queued == key).count(), usize::from(again));
                st.queue.clear();
                again
            })
            .collect();
        assert!(delivered.len() <= 1);
        (requeued, delivered.first().map(|c| c.result))
    }

    /// A slot holds the file it was registered with; the number it was registered by may be
    /// closed and name another file (here a pipe) while reads of the slot are in flight. Both
    /// rules ask what the slot's file was, not what the number names now.
    #[test]
    fn a_slots_reads_follow_its_file_after_its_number_names_a_pipe() {
        let file = tempfile::tempfile().expect("a temporary file");
        let (reader, _writer) = std::io::pipe().expect("a pipe");
        let mut st = State::new(FileTable::new(4));
        let slot = st.files.reserve(file.as_raw_fd()).expect("a slot");
        // SAFETY: both fds are open; the file's number now names the pipe (the test owns both).
        assert_eq!(unsafe { libc::dup2(reader.as_raw_fd(), file.as_raw_fd()) }, file.as_raw_fd());
        let target = Target::Fixed(slot);
        assert_eq!(read_steps_in(&mut st, target, 0, 65536, false, &[8192, 57344]), (vec![true, false], Some(65536)));
        assert_eq!(read_steps_in(&mut st, target, 0, 65536, true, &[8192]), (vec![false], Some(-libc::ECANCELED)));
    }

    #[test]
    fn a_read_of_a_regular_file_cut_at_a_page_boundary_goes_on_from_there() {
        let file = tempfile::tempfile().expect("a temporary file");
        let fd = file.as_raw_fd();
        // Cut at 8192, then the rest: whole.
        assert_eq!(read_steps(fd, 0, 65536, &[8192, 57344]), (vec![true, false], Some(65536)));
        // Cut twice, then the end of the file: the count so far.
        assert_eq!(read_steps(fd, 4096, 65536, &[4096, 8192, 0]), (vec![true, true, false], Some(12288)));
        // Counted from the file's offset, not the buffer's: 100 + 3996 ends the first page.
        assert_eq!(read_steps(fd, 100, 8192, &[3996, 4196]), (vec![true, false], Some(8192)));
        // A later step's error is the read's.
        assert_eq!(read_steps(fd, 0, 65536, &[8192, -libc::EIO]), (vec![true, false], Some(-libc::EIO)));
        // Inside a page: the end of the file, delivered at once.
        assert_eq!(read_steps(fd, 0, 65536, &[8000]), (vec![false], Some(8000)));
        assert_eq!(read_steps(fd, 100, 65536, &[4096]), (vec![false], Some(4096)));
    }

    #[test]
    fn a_pipe_read_cut_at_a_page_boundary_keeps_its_count() {
        let (reader, _writer) = std::io::pipe().expect("a pipe");
        assert_eq!(read_steps(reader.as_raw_fd(), 0, 65536, &[4096]), (vec![false], Some(4096)));
    }
}
