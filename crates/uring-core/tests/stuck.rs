//! A close that gives up: an op the kernel cannot cancel stays in flight past the shutdown
//! timeout, and is delivered when the kernel finally completes it. A read of a FUSE file whose
//! daemon holds the answer back is such an op: once the kernel has sent the request, its worker
//! waits for the answer through a cancel (it tells the daemon, which may ignore it). Such reads
//! also keep every kernel worker busy, so a close queued behind them can be cancelled before it
//! runs. A read of more than the file holds comes back short once answered, which is how the
//! engine sees a read a cancel cut short: asked to stop, it reports the cancel. The daemon
//! (tests/fuse) is a thread of this test. Needs root (mount), as CI has.

mod common;
mod fuse;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{serial, TestRing};
use fuse::{abort_connection, Mount};
use uring_core::{Memory, Op, RingConfig, Target};

/// How many of this process's threads that run ops (io-wq workers, and the engine's off-ring
/// threads, which copy FUSE files) sleep where only a fatal signal wakes them.
fn op_threads_waiting() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The state follows the parenthesised name.
            let runs_ops = comm.starts_with("iou-wrk") || comm.starts_with("uring-off-ring");
            runs_ops && stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('D'))
        })
        .count()
}

fn op_thread_waiting() -> bool {
    op_threads_waiting() > 0
}

/// Ends the FUSE connection if the test is still running after 30 s, so a test that blocks on
/// the held request fails instead of hanging (with an io-wq worker, and so the process, stuck for
/// ever). Dropping it stands it down.
struct Watchdog {
    finished: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    fn new(connection: std::path::PathBuf) -> Watchdog {
        let finished = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&finished);
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !done.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    eprintln!("watchdog: aborting the FUSE connection");
                    abort_connection(&connection);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Watchdog { finished, thread: Some(thread) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A ring whose close gave up on a read of the FUSE file that the daemon holds back.
struct Stuck {
    ring: TestRing,
    /// The held read's `user`.
    user: u64,
    fd: RawFd,
    // Dropped in this order: the watchdog stands down once the test is over, then the mount
    // answers anything still held and goes.
    _watchdog: Watchdog,
    mount: Mount,
}

impl Stuck {
    /// A ring whose close gave up on a read of `len` bytes at 0 (the file has 4096).
    fn reading(len: usize) -> Stuck {
        let mount = Mount::new();
        let watchdog = Watchdog::new(mount.connection.clone());
        // An earlier test's unclean close leaves its ring's fd to its threads, which end on their
        // own: counted here and closed before the count below, it would look like this ring's.
        assert_eq!(common::threads_settle_at(0), 0, "an earlier test's ring threads ended");
        let rings = common::anon_fds("io_uring");
        let ring = TestRing::with(RingConfig { shutdown_timeout: Duration::from_millis(200), ..RingConfig::default() });
        let fd = mount.open_file_on_kernel_path(&ring.ring);
        let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(len), 0));
        mount.reads.recv_timeout(Duration::from_secs(5)).expect("the read reached the daemon");
        // A cancel that found the op still queued in io-wq would end it at once: close only once a
        // kernel worker is asleep on the page the daemon holds back (state D: killable or worse).
        common::wait_until("a kernel worker waiting on the held page", op_thread_waiting);

        // Cancelled, but the kernel waits for the daemon: the close gives up at its deadline.
        let started = Instant::now();
        assert!(!ring.ring.close(), "a close with an op still in the kernel is not clean");
        assert!(started.elapsed() < Duration::from_secs(5), "the close kept to its deadline");
        assert!(!ring.ring.close(), "a second close gives the first one's answer");
        assert_eq!(ring.ring.in_flight(), 1, "the stuck read is still in flight, its memory held");
        assert_eq!(common::anon_fds("io_uring"), rings + 1, "and the ring kept, to complete it through");
        assert!(ring.wait_for(user, Duration::from_millis(50)).is_none());
        Stuck { ring, user, fd, _watchdog: watchdog, mount }
    }

    /// Lets the daemon answer, and returns the stuck read's completion, which the completion
    /// thread, still there for it, delivers before it ends.
    fn answered(&mut self) -> uring_core::Completion {
        self.mount.release();
        self.ring.wait_for(self.user, Duration::from_secs(5)).expect("the stuck read's completion was delivered")
    }
}

impl Drop for Stuck {
    fn drop(&mut self) {
        Mount::close_file_on_kernel_path(&self.ring.ring, self.fd);
    }
}

#[test]
fn an_op_the_kernel_cannot_cancel_makes_close_unclean_and_completes_when_the_kernel_is_done() {
    let _serial = serial();
    let mut stuck = Stuck::reading(16);
    // Answered at last: the cancel, whether the kernel honoured it on the way out or the engine
    // reports it for a read whose count comes after one (`a_cancelled_read_of_a_regular_file...`).
    let done = stuck.answered();
    assert!([-libc::ECANCELED, -libc::EINTR].contains(&done.result), "result {}", done.result);
    assert_eq!(stuck.ring.ring.in_flight(), 0);
    assert_eq!(common::threads_settle_at(0), 0, "the ring's threads ended");
    // A close that waits gives the first close's answer and finds nothing left to reap.
    assert!(!stuck.ring.ring.close_waiting());
}

/// Which of close_waiting and the completion thread takes the read's completion is up to timing;
/// the wake close_waiting sends when it is done, for a completion thread that would otherwise wait
/// in the kernel for nothing, matters only in a window this does not force.
#[test]
fn close_waiting_after_an_unclean_close_returns_once_the_stuck_op_completes_and_the_threads_end() {
    let _serial = serial();
    let mut stuck = Stuck::reading(16);
    // The daemon answers while close_waiting waits, on this thread, beside the completion thread.
    let release = stuck.mount.release.take();
    let answer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(release);
    });
    assert!(!stuck.ring.ring.close_waiting(), "the first close's answer");
    assert_eq!(stuck.ring.ring.in_flight(), 0, "close_waiting returned once the read was reaped");
    assert_eq!(common::threads_settle_at(0), 0, "the ring's threads ended");
    let _ = answer.join();
}

/// The kernel takes a closed fd out of the table before it flushes the file, so a close under way
/// has closed its fd whatever it reports, and one cancelled while queued has not: the two give the
/// same ECANCELED. So the engine never cancels a close in the kernel (`Op::closes`): a shutdown
/// leaves one queued behind busy kernel workers to run once one is free. Before, the shutdown
/// cancelled it and closed the fd itself, which for a close already under way closed the number a
/// second time (`tests/fuse_files.rs` has that case).
#[test]
fn a_close_queued_for_a_kernel_worker_at_shutdown_runs_once_one_is_free() {
    let _serial = serial();
    let mut mount = Mount::new();
    let _watchdog = Watchdog::new(mount.connection.clone());
    let closing = mount.open_file();
    let open = |fd: RawFd| std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists();
    // A ring of 4 entries gets at most min(4, 4 x CPUs) = 4 bounded kernel workers, all of them
    // kept busy by reads the daemon holds back.
    const WORKERS: usize = 4;
    let ring = TestRing::with(RingConfig { entries: WORKERS as u32, shutdown_timeout: Duration::from_millis(200), ..RingConfig::default() });
    let reading = mount.open_file_on_kernel_path(&ring.ring);
    for _ in 0..WORKERS {
        ring.submit(Op::read(Target::Fd(reading), Memory::zeroed(16), 0));
    }
    common::wait_until("every kernel worker waiting on the held page", || op_threads_waiting() >= WORKERS);
    // A FUSE file flushes on close, so io_uring hands the close to a kernel worker: none is free,
    // and it waits in io-wq's queue (the daemon answers a flush at once, so a close that ran would
    // be done within milliseconds).
    let (close_user, _) = ring.submit(Op::Close { fd: closing });
    std::thread::sleep(Duration::from_millis(200));
    assert!(ring.wait_for(close_user, Duration::ZERO).is_none(), "the close waits for a kernel worker");

    // The shutdown cancels the reads (which the daemon holds all the same), not the close.
    assert!(!ring.ring.close(), "the held reads keep the close unclean");
    assert!(ring.wait_for(close_user, Duration::ZERO).is_none(), "the close was left to run");
    assert!(open(closing));

    mount.release();
    assert!(!ring.ring.close_waiting());
    assert_eq!(ring.ring.in_flight(), 0);
    assert!(!open(closing), "the close closed its fd");
    // Reaped after a close that gave up, by the completion thread (delivered) or by
    // `close_waiting` (not: the caller gave up on it).
    if let Some(closed) = ring.wait_for(close_user, Duration::from_millis(100)) {
        assert_eq!(closed.result, 0);
    }
    Mount::close_file_on_kernel_path(&ring.ring, reading);
}

/// A read of a regular file that was asked to stop reports the cancel, whatever its count: after
/// a cancel the kernel's count is not the file's (a read cut short reports the part copied, which
/// a caller takes for the end of the file; `reap::stopped_read_is_cancelled`). Here the kernel
/// cannot cancel the reads, and they end once the daemon answers: one short at the end of the file,
/// one whole, and both report the cancel.
#[test]
fn a_cancelled_read_of_a_regular_file_reports_the_cancel_short_or_whole_by_fd_and_by_slot() {
    let _serial = serial();
    let mut mount = Mount::new();
    let _watchdog = Watchdog::new(mount.connection.clone());
    let ring = TestRing::new();
    let fd = mount.open_file_on_kernel_path(&ring.ring);
    let slot = ring.run(Op::register_file(fd));
    let slot = u32::try_from(slot).expect("a registered slot");
    // 8192 bytes of a 4096-byte file come back short, 16 whole.
    let reads: Vec<(u64, _)> = [(Target::Fd(fd), 8192), (Target::Fixed(slot), 16)]
        .into_iter()
        .map(|(target, len)| ring.submit(Op::read(target, Memory::zeroed(len), 0)))
        .collect();
    // One request for the page; both reads wait for it.
    mount.reads.recv_timeout(Duration::from_secs(5)).expect("the read reached the daemon");
    // The read by fd on a kernel worker, the one by slot on an off-ring thread.
    common::wait_until("both reads waiting on the held page", || op_threads_waiting() >= 2);
    for (_, key) in &reads {
        ring.ring.cancel(*key);
    }
    mount.release();
    for (user, _) in &reads {
        let done = ring.wait_for(*user, Duration::from_secs(5)).expect("the read completed once answered");
        assert_eq!(done.result, -libc::ECANCELED, "the kernel's count is not taken for the file's");
        assert!(done.output.is_none(), "a cancelled read hands no bytes back");
    }
    // Not cancelled, the same read ends short at the end of the file, as asked.
    let whole = ring.run_full(Op::read(Target::Fixed(slot), Memory::zeroed(8192), 0));
    assert_eq!(whole.result, 4096);
    assert!(whole.output.expect("the bytes read").iter().all(|b| *b == 0x5a));
    Mount::close_file_on_kernel_path(&ring.ring, fd);
}

/// A short one through a ring's shutdown, which cancels every op in flight.
#[test]
fn a_read_the_shutdown_stopped_that_comes_back_short_reports_the_cancel() {
    let _serial = serial();
    let mut stuck = Stuck::reading(8192);
    assert_eq!(stuck.answered().result, -libc::ECANCELED, "the kernel's 4096 of 8192 is not taken for the end of the file");
    assert_eq!(common::threads_settle_at(0), 0, "the ring's threads ended");
}
