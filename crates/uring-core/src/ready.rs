//! Completions for a caller's event loop: an eventfd registered with the ring
//! (`IORING_REGISTER_EVENTFD`), which the kernel signals whenever it posts completions. A caller
//! that polls it (the JS thread, through libuv) reaps them itself, so an op a kernel worker
//! finishes reaches it with one wake-up, where the completion thread cost two (its own, then its
//! hand-off to the caller).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use io_uring::IoUring;

pub(crate) struct ReadyFd(OwnedFd);

impl ReadyFd {
    /// A nonblocking eventfd registered with `ring`, or `None` where the kernel refuses either.
    pub(crate) fn register(ring: &IoUring) -> Option<ReadyFd> {
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        ring.submitter().register_eventfd(fd.as_raw_fd()).ok()?;
        Some(ReadyFd(fd))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Resets the counter, so a level-triggered poll reports only completions posted after this.
    pub(crate) fn drain(&self) {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into `count`; a nonblocking eventfd at zero fails with EAGAIN.
        unsafe { libc::read(self.raw(), (&raw mut count).cast(), 8) };
    }
}
