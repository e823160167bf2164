//! A blocking client over the engine for tests: submit, then wait for that op's completion.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use uring_core::{Completion, CompletionSink, Op, OpKey, Ring, RingConfig};

#[derive(Default)]
pub struct Collector {
    done: Mutex<HashMap<u64, Completion>>,
    arrived: Condvar,
    batches: AtomicU64,
    delivered: AtomicU64,
}

impl Collector {
    /// A completion that has already arrived.
    pub fn take(&self, user: u64) -> Option<Completion> {
        self.done.lock().unwrap().remove(&user)
    }

    /// Completions delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

struct Sink(Arc<Collector>);

impl CompletionSink for Sink {
    fn deliver(&self, batch: Vec<Completion>) {
        self.0.batches.fetch_add(1, Ordering::Relaxed);
        self.0.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut done = self.0.done.lock().unwrap();
        for c in batch {
            assert!(done.insert(c.user, c).is_none(), "a completion was delivered twice");
        }
        self.0.arrived.notify_all();
    }
}

pub struct TestRing {
    pub ring: Ring,
    pub collector: Arc<Collector>,
    next: AtomicU64,
}

impl TestRing {
    pub fn new() -> TestRing {
        TestRing::with(RingConfig::default())
    }

    pub fn with(config: RingConfig) -> TestRing {
        let collector = Arc::new(Collector::default());
        let ring = Ring::new(config, Sink(Arc::clone(&collector))).expect("ring");
        TestRing { ring, collector, next: AtomicU64::new(1) }
    }

    /// A ring with deferred wake-ups, returned once its submission thread waits for work, as it
    /// does between bursts in real use: queued ops then stay queued until a flush.
    pub fn deferred(config: RingConfig) -> TestRing {
        let ring = TestRing::with(RingConfig { deferred_wakeups: true, ..config });
        wait_until("the submission thread to go idle", || ring.ring.is_submitter_idle());
        ring
    }

    pub fn submit(&self, op: Op) -> (u64, OpKey) {
        let user = self.next.fetch_add(1, Ordering::Relaxed);
        let key = self.ring.submit(user, op).expect("submit");
        (user, key)
    }

    /// Submits what is queued, on this thread (`Ring::submit_and_reap`), and returns what
    /// completed meanwhile.
    pub fn flush_inline(&self) -> Vec<Completion> {
        let mut out = Vec::new();
        self.ring.submit_and_reap(&mut out, usize::MAX);
        out
    }

    /// `user`'s completion: among `flushed` (`flush_inline`'s), or else once delivered.
    pub fn completion_in(&self, flushed: Vec<Completion>, user: u64) -> Completion {
        flushed.into_iter().find(|c| c.user == user).unwrap_or_else(|| self.wait(user))
    }

    pub fn wait(&self, user: u64) -> Completion {
        self.wait_for(user, Duration::from_secs(30)).unwrap_or_else(|| panic!("op {user} did not complete"))
    }

    pub fn wait_for(&self, user: u64, timeout: Duration) -> Option<Completion> {
        let deadline = Instant::now() + timeout;
        let mut done = self.collector.done.lock().unwrap();
        loop {
            if let Some(c) = done.remove(&user) {
                return Some(c);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            done = self.collector.arrived.wait_timeout(done, left).unwrap().0;
        }
    }

    /// Submits and waits; returns the result.
    pub fn run(&self, op: Op) -> i32 {
        self.run_full(op).result
    }

    pub fn run_full(&self, op: Op) -> Completion {
        let (user, _) = self.submit(op);
        self.wait(user)
    }

    pub fn batches(&self) -> u64 {
        self.collector.batches.load(Ordering::Relaxed)
    }
}

pub fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

pub fn open_fd(ring: &TestRing, path: &Path, flags: i32, mode: u32) -> RawFd {
    let fd = ring.run(Op::OpenAt { dirfd: libc::AT_FDCWD, path: cstr(path), flags: flags | libc::O_CLOEXEC, mode });
    assert!(fd >= 0, "open {path:?} failed: {fd}");
    fd
}

/// Tests that count process-wide fds or threads hold this, so they do not see each other's.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Polls `done` until it holds; fails the test after 5 s, naming `what` it waited for.
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "waited 5 s for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Open fds of this process that are anonymous inodes of `kind` (`io_uring`, `eventfd`).
pub fn anon_fds(kind: &str) -> usize {
    let name = format!("anon_inode:[{kind}]");
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.as_os_str() == name.as_str())
        .count()
}

/// Mappings of this process of an anonymous inode of `kind` (a ring's queues: `io_uring`).
pub fn anon_mappings(kind: &str) -> usize {
    let name = format!("anon_inode:[{kind}]");
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().filter(|line| line.ends_with(&name)).count()
}

/// The engine's own threads in this process (kernel io-wq workers exit on their own schedule).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("uring-"))
        .count()
}

/// `thread_count()` once it reaches `n` (a new thread names itself shortly after it starts).
pub fn threads_settle_at(n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    while thread_count() != n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    thread_count()
}

/// A synced file of `blocks` 4 KiB blocks, block `i` filled with the byte `i` (mod 256).
pub fn blocks_file(dir: &tempfile::TempDir, blocks: usize) -> std::fs::File {
    let path = dir.path().join("blocks");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..blocks {
        file.write_all(&[i as u8; 4096]).unwrap();
    }
    file.sync_all().unwrap();
    std::fs::File::open(&path).unwrap()
}

/// `posix_fadvise` over the whole of `file`.
pub fn advise(file: &std::fs::File, advice: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor.
    assert_eq!(unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, advice) }, 0);
}

/// A FIFO with a reader-writer fd held open by nobody else: reads from it block until cancelled.
pub fn blocking_fifo(dir: &Path, name: &str) -> (RawFd, std::fs::File) {
    let path = dir.join(name);
    let c = cstr(&path);
    // SAFETY: a valid C path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // O_RDWR on a FIFO never blocks on open and keeps a writer present, so reads wait for data.
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    use std::os::fd::AsRawFd;
    (file.as_raw_fd(), file)
}

/// Kernel structs (statx, FUSE messages) are in the machine's byte order.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

/// Fields of a statx buffer the tests compare: (mode, size, ino, nlink).
pub fn statx_fields(b: &[u8]) -> (u16, u64, u64, u32) {
    (u16::from_le_bytes([b[28], b[29]]), u64_at(b, 40), u64_at(b, 32), u32_at(b, 16))
}
