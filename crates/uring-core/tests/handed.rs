//! The record of fds a ring handed its caller (`Ring::handed_fds`): what enters it, what leaves
//! it, and `close_handed`, which closes what is left once the ring is closed, and nothing else.
mod common;

use std::os::fd::{AsRawFd, IntoRawFd};
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use uring_core::{EngineError, Memory, Op, OpKey, RingConfig, FD_BYTES};

const CWD: i32 = libc::AT_FDCWD;

fn open_op(path: &std::ffi::CStr) -> Op {
    Op::OpenAt { dirfd: CWD, path: path.into(), flags: libc::O_RDONLY | libc::O_CLOEXEC, mode: 0 }
}

/// Whether `fd` is open in this process.
fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Fds of this process open on `path`.
fn fds_naming(path: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

fn sorted(mut fds: Vec<i32>) -> Vec<i32> {
    fds.sort_unstable();
    fds
}

#[test]
fn every_op_that_hands_out_an_fd_records_it_until_a_close_takes_it_out() {
    let _serial = serial();
    let ring = TestRing::new();
    let other = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![3u8; 8192]).unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, vec![4u8; 100]).unwrap();
    let root = std::fs::File::open(dir.path()).unwrap();

    let opened = ring.run(open_op(c"/proc/self/exe"));
    let how = Box::new(io_uring::types::OpenHow::new().flags((libc::O_RDONLY | libc::O_CLOEXEC) as u64).resolve(libc::RESOLVE_BENEATH));
    let beneath = ring.run(Op::OpenAt2 { dirfd: root.as_raw_fd(), path: c"small".into(), how });
    let mut kept = [0u8; FD_BYTES];
    // SAFETY: `kept` outlives the op, which completes before it is read.
    let keeping = Op::read_file_keeping(CWD, cstr(&big), Memory::zeroed(4096), unsafe { Memory::borrowed(kept.as_mut_ptr(), FD_BYTES) });
    assert_eq!(ring.run(keeping), 4096);
    let left_open = i32::from_le_bytes(kept);
    assert!(opened >= 0 && beneath >= 0 && left_open >= 0);
    assert_eq!(ring.ring.handed_fds(), sorted(vec![opened, beneath, left_open]));
    // Ops that close what they open hand nothing out, and neither does a failed open.
    assert_eq!(ring.run(Op::read_file(CWD, cstr(&small), Memory::zeroed(4096))), 100);
    assert_eq!(ring.run(Op::open_path(CWD, cstr(&small))), 0);
    assert_eq!(ring.run(Op::write_file(CWD, cstr(&small), libc::O_WRONLY, 0, Memory::zeroed(10))), 10);
    assert_eq!(ring.run(open_op(c"/nonexistent")), -libc::ENOENT);
    assert_eq!(ring.ring.handed_fds().len(), 3);
    assert!(other.ring.handed_fds().is_empty(), "each ring sees its own");

    // A close through this ring, through another ring, or by the caller who says so first.
    assert_eq!(ring.run(Op::Close { fd: opened }), 0);
    assert_eq!(ring.ring.handed_fds(), sorted(vec![beneath, left_open]));
    assert_eq!(other.run(Op::Close { fd: beneath }), 0);
    assert_eq!(ring.ring.handed_fds(), vec![left_open]);
    ring.ring.forget_fd(left_open);
    // SAFETY: handed out above and closed nowhere else.
    assert_eq!(unsafe { libc::close(left_open) }, 0);
    assert!(ring.ring.handed_fds().is_empty());
    // A number the caller got some other way is the caller's: recorded only when handed over.
    let plain = std::fs::File::open("/proc/self/exe").unwrap().into_raw_fd();
    assert!(ring.ring.handed_fds().is_empty());
    ring.ring.hand_over(plain);
    assert_eq!(ring.ring.handed_fds(), vec![plain]);
    assert_eq!(ring.run(Op::Close { fd: plain }), 0);
    assert!(ring.ring.handed_fds().is_empty());
}

/// A caller-reaps ring whose open of `dir`'s FIFO for writing the kernel has completed (a reader
/// came) and nobody has reaped yet: the ring, the open's user and key, the reader, the FIFO.
fn opened_not_reaped(dir: &std::path::Path) -> (TestRing, u64, OpKey, std::fs::File, PathBuf) {
    let ring = TestRing::deferred(RingConfig { inline_submit: true, caller_reaps: true, caller_stall: Duration::from_secs(60), ..RingConfig::default() });
    let ready = ring.ring.ready_fd().expect("this kernel registers an eventfd");
    let fifo = dir.join("fifo");
    // SAFETY: a valid C path.
    assert_eq!(unsafe { libc::mkfifo(cstr(&fifo).as_ptr(), 0o600) }, 0);
    // O_CREAT sends it to a kernel worker at once, where it waits (a first try without blocking
    // would fail with ENXIO).
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC;
    let (user, key) = ring.submit(Op::OpenAt { dirfd: CWD, path: cstr(&fifo), flags, mode: 0o600 });
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    assert!(out.is_empty(), "an open for writing waits for a reader");
    // Waits for the ring's open, the writer.
    let reader = std::fs::File::open(&fifo).unwrap();
    let mut pfd = libc::pollfd { fd: ready, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5_000) }, 1, "the open completed");
    assert_eq!(fds_naming(&fifo), 2, "the reader, and the fd the kernel opened");
    (ring, user, key, reader, fifo)
}

#[test]
fn an_fd_the_engine_closes_itself_is_never_recorded() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // Given up on after the kernel opened it, before its completion was reaped: the engine
    // closes the fd, and the caller hears it was cancelled.
    let (ring, user, key, _reader, fifo) = opened_not_reaped(dir.path());
    ring.ring.cancel(key);
    ring.ring.reap_ready();
    assert_eq!(ring.wait(user).result, -libc::ECANCELED);
    wait_until("the engine to close the fd", || fds_naming(&fifo) == 1);
    assert!(ring.ring.handed_fds().is_empty());
    // Caught by a close: closed by the engine and not recorded, or delivered and recorded (the
    // close's first step hands reaping back to the completion thread, which may reap it before
    // the ring counts as closing).
    drop(ring);
    let dir = tempfile::tempdir().unwrap();
    let (ring, user, _, _reader, fifo) = opened_not_reaped(dir.path());
    assert!(ring.ring.close());
    let recorded = match ring.wait(user).result {
        cancelled if cancelled == -libc::ECANCELED => 0,
        fd => {
            assert_eq!(ring.ring.handed_fds(), vec![fd]);
            1
        }
    };
    assert_eq!(ring.ring.close_handed(), recorded);
    wait_until("the fd to be closed once", || fds_naming(&fifo) == 1);
    // Whole-file reads given up on at random points: the fd they leave open is closed by the
    // engine, or recorded as the caller's.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![5u8; 8192]).unwrap();
    let ring = TestRing::new();
    let mut kept = [0u8; FD_BYTES];
    for _ in 0..500 {
        // SAFETY: `kept` outlives the op, which completes before it is read.
        let op = Op::read_file_keeping(CWD, cstr(&big), Memory::zeroed(4096), unsafe { Memory::borrowed(kept.as_mut_ptr(), FD_BYTES) });
        let (user, key) = ring.submit(op);
        ring.ring.cancel(key);
        match ring.wait(user).result {
            4096 => {
                let fd = i32::from_le_bytes(kept);
                assert_eq!(ring.ring.handed_fds(), vec![fd]);
                assert_eq!(ring.run(Op::Close { fd }), 0);
            }
            res => assert_eq!(res, -libc::ECANCELED),
        }
        assert!(ring.ring.handed_fds().is_empty());
    }
}

#[test]
fn close_handed_closes_what_is_left_once_the_ring_is_closed_and_no_number_closed_before() {
    let _serial = serial();
    let ring = TestRing::new();
    let left: Vec<i32> = (0..3).map(|_| ring.run(open_op(c"/proc/self/exe"))).collect();
    let closed = ring.run(open_op(c"/proc/self/exe"));
    assert_eq!(ring.run(Op::Close { fd: closed }), 0);
    // The lowest free number: most likely the one just closed, which the record must not name.
    let reused = std::fs::File::open("/proc/self/exe").unwrap();
    assert!(!ring.ring.handed_fds().contains(&reused.as_raw_fd()));
    assert_eq!(ring.ring.close_handed(), 0, "an open ring's caller may still use them");
    assert!(left.iter().all(|&fd| is_open(fd)));
    assert!(ring.ring.close());
    // Refused by the closed ring: the fd stays the caller's, and recorded.
    assert_eq!(ring.ring.submit(1 << 40, Op::Close { fd: left[0] }), Err(EngineError::Closed));
    assert_eq!(ring.ring.handed_fds(), sorted(left.clone()));
    assert_eq!(ring.ring.close_handed(), 3);
    assert!(left.iter().all(|&fd| !is_open(fd)));
    assert!(is_open(reused.as_raw_fd()));
    assert_eq!(ring.ring.close_handed(), 0, "closed once");
}

#[test]
fn a_ring_closed_for_a_caller_that_keeps_its_fds_forgets_them() {
    let _serial = serial();
    let ring = TestRing::new();
    let fd = ring.run(open_op(c"/proc/self/exe"));
    assert!(ring.ring.close());
    ring.ring.forget_handed();
    assert_eq!(ring.ring.close_handed(), 0);
    assert!(is_open(fd));
    let again = TestRing::new();
    assert_eq!(again.run(Op::Close { fd }), 0);
}
