//! The ring's off-ring threads, started as reads and writes of files on FUSE come (up to
//! `ring::OFF_RING_THREADS`, so copies wait for their daemon in parallel): they make those copies
//! with `pread`/`pwrite` instead of io_uring.
//!
//! io_uring tries a read of a regular file without blocking first and, when that try comes back
//! short, reads the rest from where the file's read moved the position to. A FUSE file opened for
//! direct I/O (`FOPEN_DIRECT_IO`) does not move it: a read that meets the end of such a file is
//! read again from its first offset into the rest of the buffer and reported whole, the file's
//! bytes twice over (Linux 6.18.44, `tests/fuse_files.rs`); a short write of such a file opened
//! with O_DIRECT is written again at its first offset, and the pages after it never. A kernel
//! worker (IOSQE_ASYNC) makes the same nonblocking try, since a FUSE file can be polled. Whether a
//! file was opened for direct I/O does not show outside the kernel, so every FUSE file's copies
//! come here (`handed::on_fuse`); FUSE is slow anyway next to a thread hand-off. The kernel also
//! does such a read in the thread that submits it, whatever io_uring asks, which on an inline
//! flush is the JavaScript thread.
//!
//! A step's result goes through `reap::reap` as a completion from the kernel would, under the
//! state lock: the rest of a transfer queued again, or the op out of the slab and its completion
//! to the sink. An op here is neither queued nor in the kernel: a cancel marks it abandoned, and
//! its result then reports as a cancelled op's would; `close` waits for it as for any op. A copy
//! a daemon never answers keeps its thread (as it would keep a kernel worker) and the op's
//! memory, which stays in the slab until the copy returns.

use std::os::fd::RawFd;

use io_uring::opcode;

use crate::op::Transfer;
use crate::reap::{reap, unlock_and_close, NUDGE_TAG};
use crate::ring::Shared;
use crate::state::State;

pub(crate) fn off_ring_loop(shared: &Shared) {
    let mut batch = Vec::new();
    let mut st = shared.lock();
    loop {
        let Some(key) = st.off_ring.pop_front() else {
            if st.stop {
                return;
            }
            st.off_ring_idle += 1;
            st = shared.off_ring_work.wait(st).unwrap_or_else(|p| p.into_inner());
            st.off_ring_idle -= 1;
            continue;
        };
        let closing = st.closing;
        let State { slab, files, .. } = &mut *st;
        let Some(op) = slab.get_mut(key) else { continue };
        // Asked to stop before it ran: as a cancel the kernel got in time would end it.
        let step = if op.abandoned || closing { None } else { op.op.transfer() };
        let fd = step.as_ref().and_then(|step| files.copy_fd(step.target));
        let res = match (step, fd) {
            (Some(step), Some(fd)) => {
                drop(st);
                let res = copy(&step, fd);
                st = shared.lock();
                res
            }
            (Some(_), None) => -libc::EBADF,
            (None, _) => -libc::ECANCELED,
        };
        let requeued = reap(&mut st, key, res, &mut batch);
        if st.closing && st.slab.is_empty() {
            shared.drained.notify_all();
        }
        if requeued {
            shared.work.notify_one();
        }
        if st.stop {
            nudge(shared, &mut st);
        }
        unlock_and_close(st);
        if !batch.is_empty() {
            shared.sink.deliver(std::mem::take(&mut batch));
        }
        st = shared.lock();
    }
}

/// One step's copy, by the file's number, as the kernel's statx of a registered file's raw fd
/// reads it: the op's owner keeps the file open until the op completes.
fn copy(step: &Transfer, fd: RawFd) -> i32 {
    let Ok(offset) = libc::off_t::try_from(step.offset) else { return -libc::EINVAL };
    loop {
        // SAFETY: `ptr` and `len` describe the op's memory, which stays in the slab, unmoved,
        // until this step's result is applied (`Transfer`); a read writes only there.
        let n = unsafe {
            if step.write {
                libc::pwrite(fd, step.ptr.cast_const().cast(), step.len, offset)
            } else {
                libc::pread(fd, step.ptr.cast(), step.len, offset)
            }
        };
        if n >= 0 {
            // At most MAX_RW_COUNT (`Transfer::len`), which fits.
            return n as i32;
        }
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        if errno != libc::EINTR {
            return -errno;
        }
    }
}

/// After a close that gave up on ops: posts a NOP, so a caller reaping in the kernel for them
/// (`threads::reap_abandoned`), or the completion thread, wakes to find this one done.
fn nudge(shared: &Shared, st: &mut State) {
    let Some(ring) = shared.kernel() else { return };
    let entry = opcode::Nop::new().build().user_data(NUDGE_TAG);
    // SAFETY: the state lock is held (`st`), as for every submission queue view; a NOP carries no
    // pointers.
    if unsafe { ring.submission_shared().push(&entry) }.is_ok() {
        st.in_kernel += 1;
        // A refused submit leaves it queued for whoever submits next.
        let _ = ring.submitter().submit();
    }
}
