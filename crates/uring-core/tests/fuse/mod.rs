//! A FUSE file system served by a thread of this process, speaking the protocol on /dev/fuse:
//! one file, `f`, whose reads (and, if asked, opens and statfs) are answered only when the caller says so. Shared by
//! tests/stuck.rs, tests/cancelled_reads.rs and examples/fuse_hold.rs (the daemon of the
//! TypeScript test of the same case). Needs root (mount).
#![allow(dead_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::common::{u32_at, u64_at};

const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_OPEN: u32 = 14;
const FUSE_READ: u32 = 15;
const FUSE_WRITE: u32 = 16;
const FUSE_STATFS: u32 = 17;
const FUSE_RELEASE: u32 = 18;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_BATCH_FORGET: u32 = 42;
const FUSE_ASYNC_READ: u32 = 1;
/// `fuse_open_out.open_flags`: reads of the file bypass the page cache, each a request.
const FOPEN_DIRECT_IO: u32 = 1;
const ROOT: u64 = 1;
const FILE: u64 = 2;
/// The byte every read of `f` returns, unless its pages are `numbered`.
pub const FILL: u8 = 0x5a;

/// How the daemon serves `f`.
#[derive(Clone, Debug)]
pub struct Serving {
    /// The size of `f`.
    pub size: u64,
    /// Reads that start in this range are held; the rest are answered at once.
    pub held: std::ops::Range<u64>,
    /// `f` is opened for direct I/O and the mount reads at most a page per request, so a larger
    /// read is a series of requests, each answered or held on its own. The kernel does such a read
    /// in the thread that submits it (io_uring's nonblocking try included) unless it goes to a
    /// kernel worker.
    pub direct_io: bool,
    /// A held read the kernel interrupts (a cancel of the kernel worker waiting for it) fails
    /// EINTR, as from a daemon that honours interrupts; otherwise the interrupt is ignored.
    pub honour_interrupts: bool,
    /// Every byte of page `n` of `f` is `n + 1` (mod 256), not `FILL`: bytes read into the wrong
    /// place show.
    pub numbered: bool,
    /// Each write request is answered as taking at most this many bytes (told on `Mount::writes`);
    /// none are kept.
    pub write_at_most: u64,
    /// Opens of `f` are held too (told on `Mount::reads`), as a daemon that lost its server would.
    pub hold_opens: bool,
    /// Statfs requests are held too (untold, then refused); otherwise answered at once, as an
    /// overlay mount over this one needs.
    pub hold_statfs: bool,
    /// Flushes (a close of `f` sends one) are held too (told on `Mount::reads`) and answered
    /// with this result once released.
    pub held_flush: Option<i32>,
}

impl Default for Serving {
    /// One page of `FILL`, every read held, interrupts ignored.
    fn default() -> Serving {
        Serving {
            size: 4096,
            held: 0..u64::MAX,
            direct_io: false,
            honour_interrupts: false,
            numbered: false,
            write_at_most: u64::MAX,
            hold_opens: false,
            hold_statfs: false,
            held_flush: None,
        }
    }
}

/// The byte at `offset` of `f`.
pub fn byte_at(serving: &Serving, offset: u64) -> u8 {
    if serving.numbered {
        (offset / 4096 + 1) as u8
    } else {
        FILL
    }
}

/// A `fuse_attr`: a root directory or the one regular file of `size` bytes.
fn attr(node: u64, size: u64) -> Vec<u8> {
    let (mode, size, nlink) = if node == ROOT { (0o040755u32, 0u64, 2u32) } else { (0o100644, size, 1) };
    let mut a = Vec::with_capacity(88);
    for v in [node, size, size.div_ceil(512), 0, 0, 0] {
        a.extend_from_slice(&v.to_ne_bytes());
    }
    for v in [0u32, 0, 0, mode, nlink, 0, 0, 0, 4096, 0] {
        a.extend_from_slice(&v.to_ne_bytes());
    }
    a
}

fn reply(dev: RawFd, unique: u64, error: i32, payload: &[u8]) {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&error.to_ne_bytes());
    out.extend_from_slice(&unique.to_ne_bytes());
    out.extend_from_slice(payload);
    // SAFETY: writes `out`, which lives across the call, to the connection's fd. A failed write
    // (the request was interrupted and is gone) needs nothing done.
    unsafe { libc::write(dev, out.as_ptr().cast(), out.len()) };
}

/// Serves requests until the connection ends. Reads in `serving.held` (and opens, with
/// `serving.hold_opens`, and flushes, with `serving.held_flush`) are held (their arrival told on `reads`) until `release` is dropped, and
/// so are statfs requests with `serving.hold_statfs`; everything else is answered at once
/// meanwhile. Each write's offset and count taken go to `writes`.
fn serve(dev: RawFd, serving: &Serving, reads: mpsc::Sender<()>, writes: mpsc::Sender<(u64, u64)>, release: mpsc::Receiver<()>) {
    let mut buf = vec![0u8; 1 << 20 | 4096];
    let mut released = false;
    let mut held: Vec<(u64, u64, u64)> = Vec::new();
    let mut held_statfs: Vec<u64> = Vec::new();
    let mut held_opens: Vec<u64> = Vec::new();
    let mut held_flushes: Vec<u64> = Vec::new();
    let open_out = || {
        let mut out = [0u8; 16];
        if serving.direct_io {
            out[8..12].copy_from_slice(&FOPEN_DIRECT_IO.to_ne_bytes());
        }
        out
    };
    let answer = |unique: u64, offset: u64, size: u64| {
        let end = (offset + size).min(serving.size);
        let data: Vec<u8> = (offset..end.max(offset)).map(|at| byte_at(serving, at)).collect();
        reply(dev, unique, 0, &data);
    };
    loop {
        if !released && matches!(release.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
            released = true;
            for (unique, offset, size) in held.drain(..) {
                answer(unique, offset, size);
            }
            for unique in held_statfs.drain(..) {
                reply(dev, unique, -libc::ENOSYS, &[]);
            }
            for unique in held_opens.drain(..) {
                reply(dev, unique, 0, &open_out());
            }
            for unique in held_flushes.drain(..) {
                reply(dev, unique, serving.held_flush.unwrap_or(0), &[]);
            }
        }
        let mut poll = libc::pollfd { fd: dev, events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd that outlives the call.
        if unsafe { libc::poll(&mut poll, 1, 10) } <= 0 {
            continue;
        }
        // SAFETY: reads into `buf`, which outlives the call.
        let n = unsafe { libc::read(dev, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR | libc::EAGAIN | libc::ENOENT) => continue,
                _ => return, // ENODEV: unmounted or aborted.
            }
        }
        let req = &buf[..n as usize];
        let (opcode, unique, node) = (u32_at(req, 4), u64_at(req, 8), u64_at(req, 16));
        let body = &req[40..];
        match opcode {
            FUSE_INIT => {
                let mut out = Vec::with_capacity(64);
                // FUSE_ASYNC_READ, as libfuse sets: without it, readahead waits for the daemon in the
                // reading thread, which for io_uring is the submitting one, however nonblocking its try.
                for v in [7u32, 31, u32_at(body, 8), FUSE_ASYNC_READ] {
                    out.extend_from_slice(&v.to_ne_bytes());
                }
                out.extend_from_slice(&16u16.to_ne_bytes()); // max_background
                out.extend_from_slice(&12u16.to_ne_bytes()); // congestion_threshold
                out.extend_from_slice(&(1u32 << 20).to_ne_bytes()); // max_write
                out.extend_from_slice(&1u32.to_ne_bytes()); // time_gran
                out.resize(64, 0);
                reply(dev, unique, 0, &out);
            }
            FUSE_LOOKUP if node == ROOT && body.starts_with(b"f\0") => {
                let mut out = Vec::with_capacity(128);
                // nodeid, generation, entry_valid (a minute: the dentry cache holds `f`), attr_valid.
                for v in [FILE, 0, 60, 0] {
                    out.extend_from_slice(&v.to_ne_bytes());
                }
                out.extend_from_slice(&[0u8; 8]);
                out.extend_from_slice(&attr(FILE, serving.size));
                reply(dev, unique, 0, &out);
            }
            FUSE_LOOKUP => reply(dev, unique, -libc::ENOENT, &[]),
            FUSE_GETATTR => {
                let mut out = vec![0u8; 16];
                out.extend_from_slice(&attr(node, serving.size));
                reply(dev, unique, 0, &out);
            }
            FUSE_OPEN if serving.hold_opens && !released => {
                held_opens.push(unique);
                let _ = reads.send(());
            }
            FUSE_OPEN => reply(dev, unique, 0, &open_out()),
            FUSE_READ => {
                let (offset, size) = (u64_at(body, 8), u64::from(u32_at(body, 16)));
                if released || !serving.held.contains(&offset) {
                    answer(unique, offset, size);
                } else {
                    held.push((unique, offset, size));
                    let _ = reads.send(());
                }
            }
            FUSE_WRITE => {
                // `fuse_write_in`: fh, offset, size; answered with `fuse_write_out`.
                let (offset, size) = (u64_at(body, 8), u64::from(u32_at(body, 16)));
                let taken = size.min(serving.write_at_most);
                let _ = writes.send((offset, taken));
                reply(dev, unique, 0, &[(taken as u32).to_ne_bytes(), [0; 4]].concat());
            }
            FUSE_STATFS if serving.hold_statfs && !released => held_statfs.push(unique),
            // `fuse_statfs_out`: an empty file system of 4 KiB blocks and 255-byte names.
            FUSE_STATFS => {
                let mut statfs = [0u8; 80];
                statfs[40..44].copy_from_slice(&4096u32.to_ne_bytes());
                statfs[44..48].copy_from_slice(&255u32.to_ne_bytes());
                reply(dev, unique, 0, &statfs);
            }
            FUSE_FLUSH if serving.held_flush.is_some() && !released => {
                held_flushes.push(unique);
                let _ = reads.send(());
            }
            FUSE_FLUSH => reply(dev, unique, serving.held_flush.unwrap_or(0), &[]),
            FUSE_RELEASE => reply(dev, unique, 0, &[]),
            // `fuse_interrupt_in` names the interrupted request.
            FUSE_INTERRUPT if serving.honour_interrupts => {
                let interrupted = u64_at(body, 0);
                if let Some(at) = held.iter().position(|(unique, ..)| *unique == interrupted) {
                    held.remove(at);
                    reply(dev, interrupted, -libc::EINTR, &[]);
                }
            }
            FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => {} // no answer expected; an interrupt is ignored
            _ => reply(dev, unique, -libc::ENOSYS, &[]),
        }
    }
}

/// A FUSE mount served by a thread of this process; dropping it answers held reads, unmounts
/// and joins the thread, so a failing test cannot leave a request hanging.
pub struct Mount {
    dir: tempfile::TempDir,
    /// The connection's fusectl directory (see `abort_connection`).
    pub connection: std::path::PathBuf,
    /// Dropped (or taken and dropped) to answer the held reads.
    pub release: Option<mpsc::Sender<()>>,
    /// A message per read (or open, with `Serving::hold_opens`) held back.
    pub reads: mpsc::Receiver<()>,
    /// The offset and count taken of each write.
    pub writes: mpsc::Receiver<(u64, u64)>,
    daemon: Option<JoinHandle<()>>,
}

impl Mount {
    /// `f` is one page whose reads are all held; interrupts are ignored.
    pub fn new() -> Mount {
        Mount::serving(Serving::default())
    }

    pub fn serving(serving: Serving) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: opens a device by a NUL-terminated path; the fd is owned below.
        let raw = unsafe { libc::open(c"/dev/fuse".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        assert!(raw >= 0, "open /dev/fuse: {}", std::io::Error::last_os_error());
        // SAFETY: `raw` was just opened and nothing else owns it.
        let dev = unsafe { OwnedFd::from_raw_fd(raw) };
        let target = CString::new(dir.path().to_str().unwrap()).unwrap();
        let max_read = if serving.direct_io { ",max_read=4096" } else { "" };
        let options = CString::new(format!("fd={raw},rootmode=40000,user_id=0,group_id=0{max_read}")).unwrap();
        // SAFETY: NUL-terminated strings that outlive the call.
        let mounted = unsafe {
            libc::mount(c"uring-stuck".as_ptr(), target.as_ptr(), c"fuse".as_ptr(), 0, options.as_ptr().cast())
        };
        assert_eq!(mounted, 0, "mount fuse: {}", std::io::Error::last_os_error());
        let (reads_tx, reads) = mpsc::channel();
        let (writes_tx, writes) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let daemon = std::thread::spawn(move || serve(dev.as_raw_fd(), &serving, reads_tx, writes_tx, release_rx));
        let connection = connection_of(dir.path());
        Mount { dir, connection, release: Some(release), reads, writes, daemon: Some(daemon) }
    }

    /// The mount point.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the file `f` read-only; the caller owns the fd.
    pub fn open_file(&self) -> RawFd {
        let path = CString::new(self.dir.path().join("f").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path; the daemon answers the lookup and the open.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "open the FUSE file: {}", std::io::Error::last_os_error());
        fd
    }

    /// `open_file`, recorded by `ring` as an fd it handed out on a file not on FUSE, which the
    /// engine takes at its word: reads of it by fd then take io_uring's own path and its kernel
    /// workers, which the tests of the kernel's behaviour stage, not the engine's off-ring threads
    /// (`off_ring.rs`). A registration still learns the file is on FUSE. Closed by
    /// `close_file_on_kernel_path`.
    pub fn open_file_on_kernel_path(&self, ring: &uring_core::Ring) -> RawFd {
        let fd = self.open_file();
        ring.hand_over(fd);
        fd
    }

    /// Closes `fd` of `open_file_on_kernel_path`, out of the engine's record first (a number
    /// closed is the process's to reuse at once).
    pub fn close_file_on_kernel_path(ring: &uring_core::Ring, fd: RawFd) {
        ring.forget_fd(fd);
        // SAFETY: the test's own fd, closed once, after no op of it is left in flight.
        unsafe { libc::close(fd) };
    }

    /// Lets the held read (and every later one) be answered.
    pub fn release(&mut self) {
        self.release.take();
    }
}

/// The fusectl directory of the FUSE connection mounted on `dir`, found in mountinfo (a stat
/// of the mount would itself wait on the daemon).
fn connection_of(dir: &std::path::Path) -> std::path::PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info.lines().find(|l| l.split(' ').nth(4) == dir.to_str()).expect("the FUSE mount in mountinfo");
    let device = line.split(' ').nth(2).unwrap();
    let minor = device.split(':').nth(1).unwrap();
    std::path::Path::new("/sys/fs/fuse/connections").join(minor)
}

/// Ends a FUSE connection through fusectl (mounted here if it is not): every request fails at
/// once and the daemon's read returns, whatever still holds the mount.
pub fn abort_connection(connection: &std::path::Path) {
    if !connection.exists() {
        // SAFETY: NUL-terminated strings; fusectl may already be mounted (EBUSY), which is fine.
        unsafe {
            libc::mount(c"fusectl".as_ptr(), c"/sys/fs/fuse/connections".as_ptr(), c"fusectl".as_ptr(), 0, std::ptr::null())
        };
    }
    let _ = std::fs::write(connection.join("abort"), "1");
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.release();
        // A request still unanswered (a failed test) would hold an io-wq worker, and the process
        // with it, for ever: end the connection first.
        abort_connection(&self.connection);
        let target = CString::new(self.dir.path().to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path. Lazy: the test's own fd may still be open.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        if let Some(daemon) = self.daemon.take() {
            let _ = daemon.join();
        }
    }
}


/// An overlay file system whose lower layer is a FUSE mount: its files are opened through FUSE's
/// open. Its upper and work directories live in a temporary directory beside its mount point;
/// dropping it unmounts it.
pub struct Overlay {
    dir: tempfile::TempDir,
}

impl Overlay {
    pub fn over(mount: &Mount) -> Overlay {
        let dir = tempfile::tempdir().unwrap();
        for part in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(part)).unwrap();
        }
        let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
        let options = format!("lowerdir={},upperdir={},workdir={}", mount.dir().display(), upper.display(), work.display());
        let (options, target) = (CString::new(options).unwrap(), CString::new(dir.path().join("merged").to_str().unwrap()).unwrap());
        // SAFETY: NUL-terminated strings that outlive the call.
        let mounted = unsafe {
            libc::mount(c"overlay".as_ptr(), target.as_ptr(), c"overlay".as_ptr(), 0, options.as_ptr().cast())
        };
        assert_eq!(mounted, 0, "mount overlay: {}", std::io::Error::last_os_error());
        Overlay { dir }
    }

    /// The mount point, where the FUSE mount's `f` shows.
    pub fn dir(&self) -> std::path::PathBuf {
        self.dir.path().join("merged")
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let target = CString::new(self.dir().to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path. Lazy: a failed test's fd may still be open.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}
