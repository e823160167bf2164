//! `caller_reaps`: completions wait for the caller that polls `Ring::ready_fd`, the completion
//! thread takes over when the ring closes or the caller stops, and what a reap queues again
//! (the next stage of a whole-file read) goes on from the caller's reap.

mod common;

use std::io::Write;
use std::os::fd::RawFd;
use std::time::Duration;

use common::{blocking_fifo, cstr, serial, wait_until, TestRing};
use uring_core::{Memory, Op, RingConfig, Target};

fn caller_reaps() -> TestRing {
    TestRing::deferred(RingConfig { inline_submit: true, caller_reaps: true, ..RingConfig::default() })
}

/// Whether `fd` turns readable within `ms`.
fn readable(fd: RawFd, ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
}

#[test]
fn a_completion_waits_for_the_caller_that_polls() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (fd, mut fifo) = blocking_fifo(dir.path(), "fifo");
    let ring = caller_reaps();
    let ready = ring.ring.ready_fd().expect("this kernel registers an eventfd");
    let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(5), 0));
    ring.ring.submit_and_reap(&mut Vec::new(), usize::MAX);
    assert!(!readable(ready, 50), "nothing completed yet");
    fifo.write_all(b"hello").unwrap();
    assert!(readable(ready, 5_000), "the kernel signals the eventfd when the read completes");
    assert!(ring.wait_for(user, Duration::from_millis(200)).is_none(), "the completion thread left it to the caller");
    ring.ring.reap_ready();
    let c = ring.wait_for(user, Duration::ZERO).expect("delivered by the caller's reap");
    assert_eq!(c.result, 5);
    assert_eq!(&c.output.unwrap()[..], b"hello");
    assert!(!readable(ready, 0), "the reap reset the eventfd");
}

#[test]
fn a_settled_flush_leaves_the_eventfd_quiet_for_what_it_took() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cached");
    std::fs::write(&path, [9u8; 4096]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let ring = caller_reaps();
    let ready = ring.ring.ready_fd().unwrap();
    let read_inline = |settle: bool| {
        let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(4096), 0));
        let mut out = Vec::new();
        if settle {
            ring.ring.submit_and_reap_settled(&mut out, usize::MAX);
        } else {
            ring.ring.submit_and_reap(&mut out, usize::MAX);
        }
        assert_eq!(out.iter().map(|c| (c.user, c.result)).collect::<Vec<_>>(), vec![(user, 4096)], "read inside the call");
    };
    // A flush that is not the turn's last leaves the signal for the loop's one wake-up...
    read_inline(false);
    assert!(readable(ready, 0));
    // ...which the turn's last flush takes back, with its own.
    for _ in 0..3 {
        read_inline(true);
        assert!(!readable(ready, 0), "no wake-up for the event loop to find nothing");
    }
}

#[test]
fn the_completion_thread_takes_over_when_the_caller_stops() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (fd, mut fifo) = blocking_fifo(dir.path(), "fifo");
    let ring = caller_reaps();
    let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(3), 0));
    ring.ring.submit_and_reap(&mut Vec::new(), usize::MAX);
    fifo.write_all(b"abc").unwrap();
    assert!(ring.wait_for(user, Duration::from_millis(200)).is_none());
    ring.ring.stop_caller_reaping();
    assert!(ring.ring.ready_fd().is_none(), "nothing to poll any more");
    assert_eq!(ring.wait(user).result, 3, "reaped by the completion thread");
    // Later ops too.
    let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(2), 0));
    ring.ring.submit_and_reap(&mut Vec::new(), usize::MAX);
    fifo.write_all(b"de").unwrap();
    assert_eq!(ring.wait(user).result, 2);
}

#[test]
fn closing_drains_ops_the_caller_never_reaped() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (fd, _fifo) = blocking_fifo(dir.path(), "fifo");
    let ring = caller_reaps();
    let users: Vec<u64> = (0..4).map(|_| ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(8), 0)).0).collect();
    ring.ring.submit_and_reap(&mut Vec::new(), usize::MAX);
    wait_until("the reads to reach the kernel", || ring.ring.in_flight() == 4);
    let ready = ring.ring.ready_fd().unwrap();
    assert!(ring.ring.close(), "cancelled and reaped by the ring's threads, with nobody polling");
    assert!(ring.ring.ready_fd().is_none());
    // SAFETY: F_GETFD on a number: no memory involved.
    assert_eq!(unsafe { libc::fcntl(ready, libc::F_GETFD) }, -1, "the close closed the eventfd");
    for user in users {
        assert_eq!(ring.wait_for(user, Duration::ZERO).expect("delivered").result, -libc::ECANCELED);
    }
}

#[test]
fn a_whole_file_read_goes_on_from_the_callers_reaps() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whole");
    std::fs::write(&path, vec![7u8; 10_000]).unwrap();
    let ring = caller_reaps();
    let ready = ring.ring.ready_fd().unwrap();
    let (user, _) = ring.submit(Op::read_file(libc::AT_FDCWD, cstr(&path), Memory::zeroed(16_384)));
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    // Each stage the kernel finishes later signals the eventfd; the caller's reap queues and
    // submits the next, and a stage finished inside that submit is taken by the same reap.
    let mut rounds = 0;
    let result = loop {
        if let Some(c) = out.pop().or_else(|| ring.wait_for(user, Duration::ZERO)) {
            break c.result;
        }
        rounds += 1;
        assert!(rounds < 100, "the read never finished");
        if readable(ready, 100) {
            ring.ring.reap_ready();
        }
    };
    assert_eq!(result, 10_000);
    assert_eq!(ring.ring.in_flight(), 0);
}
