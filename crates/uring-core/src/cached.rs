//! Reads, whole files and stats the caches can answer at once, done on the calling thread
//! instead of the ring.
//!
//! `preadv2` with `RWF_NOWAIT` copies what is cached and fails with `EAGAIN` rather than wait
//! for a device. A read the ring completes inline does the same work, plus an SQE, a CQE and
//! their bookkeeping, and its caller cannot know beforehand that it will not be left in flight;
//! this call either finishes before it returns or did nothing the caller must wait for.

use std::ffi::CStr;
use std::io::Write;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use crate::op::{FD_BYTES, MAX_RW_COUNT, PAGE};

// `read_cached` passes `preadv2` its offset whole in one argument: 64-bit Linux only.
const _: () = assert!(std::mem::size_of::<libc::c_long>() == 8);

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
    // The syscall itself, not glibc's `preadv2`: that wrapper is a thread-cancellation point, and
    // switching cancellation on and off around each call cost a tight loop of cached 4 KiB reads
    // 2-4%. Nothing cancels this thread. Every argument is widened to a long, as the kernel reads
    // them; the offset goes whole in `pos_l` (`pos_h` counts only where a long has 32 bits).
    let (fd, vlen, pos_h) = (libc::c_long::from(fd), 1 as libc::c_long, 0 as libc::c_long);
    let flags = libc::c_long::from(libc::RWF_NOWAIT);
    // SAFETY: `iov` describes writable bytes of `buf`, which is borrowed for the whole call.
    let n = unsafe { libc::syscall(libc::SYS_preadv2, fd, &iov as *const libc::iovec, vlen, offset, pos_h, flags) };
    if n < 0 {
        -last_errno()
    } else {
        // At most MAX_RW_COUNT, which fits.
        n as i32
    }
}

/// One range of a batch read on the calling thread (`read_cached`): `Some(result)` when that is
/// the range's whole answer (all of it, or the end of the file: 0, or a short count that ends
/// inside a page, which a cached part never does), else `None` and the ring must read it (not
/// cached, cached in part, or an error the ring will meet itself and report).
pub fn read_range_cached(fd: i32, buf: &mut [u8], offset: u64) -> Option<i32> {
    let n = read_cached(fd, buf, offset);
    let Ok(count) = u64::try_from(n) else { return None };
    let whole = count == buf.len() as u64;
    // `read_cached` refused offsets past i64::MAX, so this cannot overflow.
    let at_end = count == 0 || !(offset + count).is_multiple_of(PAGE);
    (whole || at_end).then_some(n)
}

/// The kernel's `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Whether the calling-thread paths work here: `openat2` takes `RESOLVE_CACHED` (Linux 5.12) and
/// a file's mount tells its file system (`mount_of`, Linux 6.12; `statmount`, 6.8). 0 not asked
/// yet, 1 yes, 2 no.
static CACHED_OPEN: AtomicU8 = AtomicU8::new(0);

/// Local block file systems: opening a regular file there waits on no network or daemon, closing
/// it flushes nothing, and `RWF_NOWAIT` reads work (ext2/3/4, XFS, Btrfs).
const LOCAL_FILE_SYSTEMS: [i64; 3] = [0xEF53, 0x5846_5342, 0x9123_683E];

/// A whole file opened, read and closed on the calling thread as far as the caches hold it, the
/// way `read_cached` reads a range. The path resolves from the dentry cache alone
/// (`RESOLVE_CACHED`) to an `O_PATH` fd, which runs no file system's open: only a regular file on
/// a local block file system is then opened for reading (through that fd, so it is the same file)
/// and read with `RWF_NOWAIT`. Returns `-EAGAIN` when any of that does not hold (a lookup that
/// would wait, a FIFO, a device, a directory, FUSE, NFS, tmpfs, a first page not cached): nothing
/// is left open, and the ring should do it all. `-ENOENT`, `-ENOTDIR`, `-ELOOP`,
/// `-ENAMETOOLONG` and `-EACCES` are the lookup's own answer. Otherwise the byte count read into
/// `buf` from offset 0, with `kept` (4 bytes, little-endian) telling the rest: -1 when that was
/// the whole file, now closed; else the fd, still open, for the caller to read on from there and
/// close (a file larger than `buf`, or one cached only in part).
pub fn read_file_cached(dirfd: RawFd, path: &CStr, buf: &mut [u8], kept: &mut [u8; FD_BYTES]) -> i32 {
    if !cached_open_works() {
        return -libc::EAGAIN;
    }
    let located = match open_path(dirfd, path, 0) {
        Ok(fd) => fd,
        Err(errno) => return lookup_answer(errno),
    };
    let result = read_located(located, buf, kept);
    // An O_PATH fd's close calls no file system's release (only if the file was unlinked or its
    // mount detached meanwhile may it drop the last reference, a window of microseconds).
    close(located);
    result
}

/// File systems whose attributes a stat reads from memory, with no device, network or daemon to
/// wait for: the local block ones of `LOCAL_FILE_SYSTEMS`, and tmpfs.
const IN_MEMORY_ATTRIBUTES: [i64; 4] = [LOCAL_FILE_SYSTEMS[0], LOCAL_FILE_SYSTEMS[1], LOCAL_FILE_SYSTEMS[2], 0x0102_1994];

/// A `statx` of `path` answered on the calling thread from the caches, as `read_file_cached`
/// opens: the path resolves from the dentry cache alone (`RESOLVE_CACHED`) to an `O_PATH` fd (of
/// a trailing symlink itself with `AT_SYMLINK_NOFOLLOW`), whose `statx` is taken only on a file
/// system that keeps attributes in memory (`IN_MEMORY_ATTRIBUTES`). Returns 0 with `out` (a
/// `struct statx`) filled, the lookup's own answer (`-ENOENT`, `-ENOTDIR`, `-ELOOP`,
/// `-ENAMETOOLONG`, `-EACCES`), or `-EAGAIN` when the ring should do it: a lookup that would wait,
/// flags other than `AT_SYMLINK_NOFOLLOW`, an empty path, any other file system (FUSE, NFS,
/// overlay, ...). `-EINVAL` if `out` cannot hold a `struct statx`.
pub fn stat_cached(dirfd: RawFd, path: &CStr, flags: i32, mask: u32, out: &mut [u8]) -> i32 {
    if out.len() < std::mem::size_of::<libc::statx>() {
        return -libc::EINVAL;
    }
    if flags & !libc::AT_SYMLINK_NOFOLLOW != 0 || path.is_empty() || !cached_open_works() {
        return -libc::EAGAIN;
    }
    let nofollow = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 { libc::O_NOFOLLOW } else { 0 };
    let located = match open_path(dirfd, path, nofollow) {
        Ok(fd) => fd,
        Err(errno) => return lookup_answer(errno),
    };
    let result = if file_system_in(located, &IN_MEMORY_ATTRIBUTES) {
        // SAFETY: `located` is open; an empty NUL-terminated path with AT_EMPTY_PATH names it, and
        // `out` has room for a struct statx (checked above).
        let done = unsafe { libc::statx(located, c"".as_ptr(), libc::AT_EMPTY_PATH, mask, out.as_mut_ptr().cast()) };
        if done < 0 { -libc::EAGAIN } else { 0 }
    } else {
        -libc::EAGAIN
    };
    close(located);
    result
}

/// What a cached lookup's errno means here: the path's own answer, or `-EAGAIN` for anything the
/// ring's op should meet itself (a lookup that would wait, a refusal of this way of looking).
fn lookup_answer(errno: i32) -> i32 {
    match errno {
        libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG | libc::EACCES => -errno,
        _ => -libc::EAGAIN,
    }
}

/// `openat2(path, O_PATH | flags, RESOLVE_CACHED)`: the fd or the errno.
fn open_path(dirfd: RawFd, path: &CStr, flags: i32) -> Result<RawFd, i32> {
    let how = OpenHow { flags: (libc::O_PATH | libc::O_CLOEXEC | flags) as u64, mode: 0, resolve: libc::RESOLVE_CACHED };
    // SAFETY: `path` is NUL-terminated and `how` a struct open_how of the size passed.
    let fd = unsafe { libc::syscall(libc::SYS_openat2, dirfd, path.as_ptr(), &how, std::mem::size_of::<OpenHow>()) };
    // An fd is an int.
    if fd < 0 { Err(last_errno()) } else { Ok(fd as RawFd) }
}

/// Asked once per process: a kernel before 5.12 (no `RESOLVE_CACHED`) or before 6.12 (no
/// unique mount id from `name_to_handle_at`), or a sandbox that refuses either call. Else each
/// call would pay a lookup and a close to learn the same.
fn cached_open_works() -> bool {
    match CACHED_OPEN.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let works = match open_path(libc::AT_FDCWD, c"/", 0) {
                Ok(fd) => {
                    let known = mount_of(fd).and_then(magic_of_mount).is_some();
                    close(fd);
                    known
                }
                Err(_) => false,
            };
            CACHED_OPEN.store(if works { 1 } else { 2 }, Ordering::Relaxed);
            works
        }
    }
}

/// Reads the file `located` (an O_PATH fd) names, if it is a regular file on a local file system.
fn read_located(located: RawFd, buf: &mut [u8], kept: &mut [u8; FD_BYTES]) -> i32 {
    let Some(size) = local_regular_size(located) else {
        return -libc::EAGAIN;
    };
    // O_NONBLOCK: an open that must break another process's lease fails instead of waiting.
    let Ok(fd) = reopen(located, libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) else {
        return -libc::EAGAIN;
    };
    let n = read_cached(fd, buf, 0);
    if n < 0 {
        // Not cached (or an error the ring reports).
        close(fd);
        return -libc::EAGAIN;
    }
    // Short of the buffer and of the size fstat gave: the end of the file, not of what is cached.
    if (n as usize) < buf.len() && i64::from(n) == size {
        close(fd);
        kept.copy_from_slice(&(-1i32).to_le_bytes());
        return n;
    }
    if clear_nonblock(fd).is_err() {
        close(fd);
        return -libc::EAGAIN;
    }
    kept.copy_from_slice(&fd.to_le_bytes());
    n
}

/// `statfs`'s magic number of FUSE, `fuseblk` included.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// Whether the file `fd` names is on FUSE (see `handed::on_fuse`).
pub(crate) fn on_fuse(fd: RawFd) -> bool {
    file_system_in(fd, &[FUSE_SUPER_MAGIC])
}

/// Whether the file `fd` (an `O_PATH` fd, or any other) names lives on one of `kinds` (superblock magic
/// numbers, as `statfs` gives them). Asked of its mount, never of its file system: `fstatfs`
/// would ask a FUSE daemon or an NFS server, and wait for the answer.
fn file_system_in(fd: RawFd, kinds: &[i64]) -> bool {
    mount_of(fd).and_then(magic_of_mount).is_some_and(|magic| kinds.contains(&magic))
}

/// `statmount(2)` (Linux 6.8); the same number on every architecture.
const SYS_STATMOUNT: libc::c_long = 457;
/// `name_to_handle_at` reports the mount's unique id, one never reused (Linux 6.12).
const AT_HANDLE_MNT_ID_UNIQUE: i32 = 0x001;
/// `statmount`'s request for the superblock's basics, its magic among them.
const STATMOUNT_SB_BASIC: u64 = 0x1;

/// The unique id of the mount `fd` is on: `name_to_handle_at` with no room for the handle, so no
/// file system encodes one (`EOVERFLOW`, the mount id filled in all the same).
fn mount_of(fd: RawFd) -> Option<u64> {
    // struct file_handle with `handle_bytes` 0: the header only.
    let mut handle = [0u32; 2];
    let mut mount = 0u64;
    let flags = libc::AT_EMPTY_PATH | libc::AT_HANDLE_FID | AT_HANDLE_MNT_ID_UNIQUE;
    // SAFETY: `handle` is a file_handle header saying it has no room; `mount` takes the 64-bit id
    // that AT_HANDLE_MNT_ID_UNIQUE asks for; the path is an empty NUL-terminated string.
    let done = unsafe {
        libc::syscall(libc::SYS_name_to_handle_at, fd, c"".as_ptr(), handle.as_mut_ptr(), &mut mount, flags)
    };
    // An older kernel refuses the flag (EINVAL), and no mount id is 0.
    (done == 0 || last_errno() == libc::EOVERFLOW).then_some(mount).filter(|&id| id != 0)
}

/// Superblock magic numbers of the mounts asked about, by unique mount id: a mount keeps its
/// file system, and its id is never reused. A few, replaced in turn.
static MOUNTS: Mutex<([(u64, i64); 16], usize)> = Mutex::new(([(0, 0); 16], 0));

/// The kernel's `struct mnt_id_req`, version 0.
#[repr(C)]
struct MountIdRequest {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

/// The superblock magic of mount `id`, from `MOUNTS` or else `statmount`, which reads the
/// mount table and the superblock and calls no file system.
fn magic_of_mount(id: u64) -> Option<i64> {
    let mut mounts = MOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&(_, magic)) = mounts.0.iter().find(|(known, _)| *known == id) {
        return Some(magic);
    }
    let request = MountIdRequest { size: std::mem::size_of::<MountIdRequest>() as u32, spare: 0, mnt_id: id, param: STATMOUNT_SB_BASIC };
    // struct statmount: room for its fixed part; the mask at byte 8, sb_magic at byte 24.
    let mut out = [0u64; 512];
    // SAFETY: `request` is a mnt_id_req of the size it states; `out` is writable for the size passed.
    let done = unsafe { libc::syscall(SYS_STATMOUNT, &request, out.as_mut_ptr(), std::mem::size_of_val(&out), 0) };
    if done != 0 || out[1] & STATMOUNT_SB_BASIC == 0 {
        return None;
    }
    // A 32-bit magic in a u64 field.
    let magic = out[3] as i64;
    let next = mounts.1;
    mounts.0[next] = (id, magic);
    mounts.1 = (next + 1) % mounts.0.len();
    Some(magic)
}

/// The size of a regular file on a local block file system; `None` for anything else.
fn local_regular_size(fd: RawFd) -> Option<i64> {
    if !file_system_in(fd, &LOCAL_FILE_SYSTEMS) {
        return None;
    }
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open (O_PATH allows fstat); `stat` has room for a struct stat.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } < 0 {
        return None;
    }
    // SAFETY: fstat succeeded, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    (stat.st_mode & libc::S_IFMT == libc::S_IFREG).then_some(stat.st_size)
}

/// Opens the file an O_PATH fd names through `/proc/self/fd`, which reaches that very file
/// whatever its path names by now.
fn reopen(located: RawFd, flags: i32) -> Result<RawFd, i32> {
    // Formatted into the stack: no allocation per file.
    let mut path = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut path[..]);
    if write!(cursor, "/proc/self/fd/{located}\0").is_err() {
        return Err(libc::EINVAL);
    }
    let len = cursor.position() as usize;
    let Ok(path) = CStr::from_bytes_with_nul(&path[..len]) else {
        return Err(libc::EINVAL);
    };
    // SAFETY: a NUL-terminated path; a plain open.
    let fd = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 { Err(last_errno()) } else { Ok(fd) }
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
