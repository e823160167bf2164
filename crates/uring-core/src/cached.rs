//! Reads the page cache can answer at once, done on the calling thread instead of the ring.
//!
//! `preadv2` with `RWF_NOWAIT` copies what is cached and fails with `EAGAIN` rather than wait
//! for a device. A read the ring completes inline does the same work, plus an SQE, a CQE and
//! their bookkeeping, and its caller cannot know beforehand that it will not be left in flight;
//! this call either finishes before it returns or did nothing the caller must wait for.

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::op::{FD_BYTES, MAX_RW_COUNT};

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
        -last_errno()
    } else {
        // At most MAX_RW_COUNT, which fits.
        n as i32
    }
}

/// The kernel's `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Set once the kernel refuses `openat2`'s `RESOLVE_CACHED` (before 5.12): no point asking again.
static NO_CACHED_OPEN: AtomicBool = AtomicBool::new(false);

/// A whole file opened, read and closed on the calling thread as far as the caches hold it, the
/// way `read_cached` reads a range: the path's lookup from the dentry cache (`RESOLVE_CACHED`) and
/// the data from the page cache (`RWF_NOWAIT`). Returns `-EAGAIN` when the lookup would wait or
/// the regular file's first page is not cached (or its file system cannot promise not to wait):
/// nothing is left open, and the ring should do it all. Any other `-errno` is the open's own
/// failure (or fstat's or the read's). Otherwise the byte count read into `buf` from offset 0,
/// with `kept` (4 bytes, little-endian) telling the rest: -1 when that was the whole file, now
/// closed; else the fd, still open (without `O_NONBLOCK`), for the caller to read on from there and
/// close: a file larger than `buf`, one cached only in part, or one that is not a regular file
/// (opened, a FIFO has let its writer in, who must not then lose its reader).
pub fn read_file_cached(dirfd: RawFd, path: &CStr, buf: &mut [u8], kept: &mut [u8; FD_BYTES]) -> i32 {
    if NO_CACHED_OPEN.load(Ordering::Relaxed) {
        return -libc::EAGAIN;
    }
    let how = OpenHow {
        // O_NONBLOCK: opening a FIFO must not wait for a writer here.
        flags: (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY) as u64,
        mode: 0,
        resolve: libc::RESOLVE_CACHED,
    };
    // SAFETY: `path` is NUL-terminated and `how` a struct open_how of the size passed.
    let fd = unsafe { libc::syscall(libc::SYS_openat2, dirfd, path.as_ptr(), &how, std::mem::size_of::<OpenHow>()) };
    if fd < 0 {
        let errno = last_errno();
        if matches!(errno, libc::ENOSYS | libc::EINVAL) {
            // A kernel without openat2 or RESOLVE_CACHED; these fixed flags are otherwise valid.
            NO_CACHED_OPEN.store(true, Ordering::Relaxed);
            return -libc::EAGAIN;
        }
        return -errno;
    }
    // Fits: an fd is an int.
    let fd = fd as RawFd;
    match read_opened(fd, buf) {
        Err(errno) => {
            close(fd);
            -errno
        }
        Ok((n, true)) => {
            close(fd);
            kept.copy_from_slice(&(-1i32).to_le_bytes());
            n
        }
        Ok((n, false)) => match clear_nonblock(fd) {
            Ok(()) => {
                kept.copy_from_slice(&fd.to_le_bytes());
                n
            }
            Err(errno) => {
                close(fd);
                -errno
            }
        },
    }
}

/// Reads the start of a file just opened: the count read and whether that was all of it.
fn read_opened(fd: RawFd, buf: &mut [u8]) -> Result<(i32, bool), i32> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open; `stat` has room for a struct stat.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } < 0 {
        return Err(last_errno());
    }
    // SAFETY: fstat succeeded, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok((0, false));
    }
    let n = read_cached(fd, buf, 0);
    if n == -libc::EOPNOTSUPP {
        // A file system that cannot promise not to wait: the ring reads it all.
        return Err(libc::EAGAIN);
    }
    if n < 0 {
        return Err(-n);
    }
    // Short of the buffer and of the size fstat gave: the end of the file, not of what is cached.
    let whole = (n as usize) < buf.len() && i64::from(n) == stat.st_size;
    Ok((n, whole))
}

fn clear_nonblock(fd: RawFd) -> Result<(), i32> {
    // SAFETY: plain fcntl calls on an open descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

fn close(fd: RawFd) {
    // SAFETY: closes the descriptor this module opened and no one else holds. A read-only regular
    // file's close reports nothing worth keeping.
    unsafe { libc::close(fd) };
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}
