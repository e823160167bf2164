//! Reads the page cache can answer at once, done on the calling thread instead of the ring.
//!
//! `preadv2` with `RWF_NOWAIT` copies what is cached and fails with `EAGAIN` rather than wait
//! for a device. A read the ring completes inline does the same work, plus an SQE, a CQE and
//! their bookkeeping, and its caller cannot know beforehand that it will not be left in flight;
//! this call either finishes before it returns or did nothing the caller must wait for.

use crate::op::MAX_RW_COUNT;

/// Reads into `buf` at `offset` as far as the page cache holds the data. Returns the byte count
/// (0 at end of file, short where the cached part or the file ends) or `-errno`: `-EAGAIN` when
/// the first page is not cached (or a lock is contended), `-EOPNOTSUPP` for a file that cannot
/// promise not to wait, `-ESPIPE` for pipes and sockets. Reads at most `MAX_RW_COUNT` bytes.
///
/// Not for `O_DIRECT` descriptors: for those the kernel may still wait for the device.
pub fn read_cached(fd: i32, buf: &mut [u8], offset: u64) -> i32 {
    let Ok(offset) = libc::off64_t::try_from(offset) else {
        return -libc::EINVAL;
    };
    let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len().min(MAX_RW_COUNT) };
    // SAFETY: `iov` describes writable bytes of `buf`, which is borrowed for the whole call.
    let n = unsafe { libc::preadv2(fd, &iov, 1, offset, libc::RWF_NOWAIT) };
    if n < 0 {
        -std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
    } else {
        // At most MAX_RW_COUNT, which fits.
        n as i32
    }
}
