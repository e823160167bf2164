//! `caller_reaps`: completions wait for the caller that polls `Ring::ready_fd`, the completion
//! thread takes over when the ring closes or the caller stops, and what a reap queues again
//! (the next stage of a whole-file read) goes on from the caller's reap.

mod common;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{blocking_fifo, blocks_file, serial, wait_until, TestRing};
use uring_core::{Memory, Op, OpKey, RingConfig, Target};

/// A ring whose caller reaps, and may pause for a minute (these tests pause on purpose) before the
/// completion thread reaps in its place.
fn caller_reaps() -> TestRing {
    caller_reaps_stalling_after(Duration::from_secs(60))
}

fn caller_reaps_stalling_after(caller_stall: Duration) -> TestRing {
    TestRing::deferred(RingConfig { inline_submit: true, caller_reaps: true, caller_stall, ..RingConfig::default() })
}

/// Submits `op` from this thread; a FIFO with nothing in it leaves it in the kernel.
fn submit_waiting(ring: &TestRing, op: Op) -> u64 {
    let (user, _) = ring.submit(op);
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    assert!(out.is_empty(), "nothing completed inside the call");
    user
}

/// Whether `fd` turns readable within `ms`.
fn readable(fd: RawFd, ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
}

/// A caller-reaps ring with a FIFO read of `data` that the kernel has completed and signalled on
/// the eventfd, not reaped yet: the FIFO's guards, the ring, the read's user data and the eventfd.
fn signalled_fifo_read(data: &[u8]) -> (tempfile::TempDir, std::fs::File, TestRing, u64, RawFd) {
    let dir = tempfile::tempdir().unwrap();
    let (fd, mut fifo) = blocking_fifo(dir.path(), "fifo");
    let ring = caller_reaps();
    let ready = ring.ring.ready_fd().expect("this kernel registers an eventfd");
    let user = submit_waiting(&ring, Op::read(Target::Fd(fd), Memory::zeroed(data.len()), 0));
    assert!(!readable(ready, 50), "nothing completed yet");
    fifo.write_all(data).unwrap();
    assert!(readable(ready, 5_000), "the kernel signals the eventfd when the read completes");
    (dir, fifo, ring, user, ready)
}

/// A caller-reaps ring with a `write_all` of 128 KiB into an empty pipe, whose first step the
/// kernel has finished (the 64 KiB the pipe holds) and signalled, not reaped yet: the ring, the
/// write's user and key, and the pipe's ends.
fn half_done_write_all() -> (TestRing, u64, OpKey, [OwnedFd; 2]) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2(2) writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just opened both, and nothing else owns them.
    let pipe = fds.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let ring = caller_reaps();
    let ready = ring.ring.ready_fd().expect("this kernel registers an eventfd");
    let (user, key) = ring.submit(Op::write_all(Target::Fd(pipe[1].as_raw_fd()), Memory::zeroed(128 * 1024), 0));
    // The submission thread submits it, so its completion waits for the caller.
    ring.ring.flush();
    assert!(readable(ready, 5_000), "the first step completed");
    (ring, user, key, pipe)
}

/// Bytes waiting in a pipe.
fn unread(fd: &OwnedFd) -> i32 {
    let mut bytes: libc::c_int = 0;
    // SAFETY: FIONREAD writes the pipe's unread byte count into `bytes`.
    assert_eq!(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut bytes) }, 0);
    bytes
}

#[test]
fn a_write_all_cancelled_between_steps_reports_what_it_wrote() {
    let _serial = serial();
    let (ring, user, key, pipe) = half_done_write_all();
    ring.ring.cancel(key);
    ring.ring.reap_ready();
    let written = ring.wait(user).result;
    assert!(written > 0 && written < 128 * 1024, "the first step's count, not an error: {written}");
    assert_eq!(written, unread(&pipe[0]), "what landed, so a retry does not write it twice");
}

#[test]
fn a_write_all_whose_ring_closes_between_steps_reports_what_it_wrote() {
    let _serial = serial();
    let (ring, user, _, pipe) = half_done_write_all();
    assert!(ring.ring.close());
    let written = ring.wait(user).result;
    assert!(written > 0 && written < 128 * 1024, "the first step's count, not an error: {written}");
    assert_eq!(written, unread(&pipe[0]));
}

#[test]
fn a_completion_waits_for_the_caller_that_polls() {
    let _serial = serial();
    let (_dir, _fifo, ring, user, ready) = signalled_fifo_read(b"hello");
    assert!(ring.wait_for(user, Duration::from_millis(200)).is_none(), "the completion thread left it to the caller");
    ring.ring.reap_ready();
    let c = ring.wait_for(user, Duration::ZERO).expect("delivered by the caller's reap");
    assert_eq!(c.result, 5);
    assert_eq!(&c.output.unwrap()[..], b"hello");
    assert!(!readable(ready, 0), "the reap reset the eventfd");
}

#[test]
fn reap_ready_into_hands_the_completions_to_the_caller_not_the_sink() {
    let _serial = serial();
    let (_dir, _fifo, ring, user, ready) = signalled_fifo_read(b"abc");
    let mut out = Vec::new();
    ring.ring.reap_ready_into(&mut out);
    assert_eq!(out.len(), 1, "the caller's own vector holds the completion");
    assert_eq!((out[0].user, out[0].result), (user, 3));
    assert_eq!(out[0].output.as_deref().unwrap(), b"abc");
    assert!(ring.wait_for(user, Duration::from_millis(100)).is_none(), "nothing went to the sink");
    assert!(!readable(ready, 0), "the reap reset the eventfd");
    out.clear();
    ring.ring.reap_ready_into(&mut out);
    assert!(out.is_empty(), "a second reap finds nothing");
}

#[test]
fn a_settled_flush_leaves_the_eventfd_quiet_for_what_it_took() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 1);
    let fd = file.as_raw_fd();
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
    let user = submit_waiting(&ring, Op::read(Target::Fd(fd), Memory::zeroed(3), 0));
    fifo.write_all(b"abc").unwrap();
    assert!(ring.wait_for(user, Duration::from_millis(200)).is_none());
    ring.ring.stop_caller_reaping();
    assert!(ring.ring.ready_fd().is_none(), "nothing to poll any more");
    assert_eq!(ring.wait(user).result, 3, "reaped by the completion thread");
    // Later ops too.
    let user = submit_waiting(&ring, Op::read(Target::Fd(fd), Memory::zeroed(2), 0));
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
fn an_exact_read_goes_on_from_the_callers_reaps() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (fd, mut fifo) = blocking_fifo(dir.path(), "fifo");
    let ring = caller_reaps();
    let ready = ring.ring.ready_fd().unwrap();
    let user = submit_waiting(&ring, Op::read_exact(Target::Fd(fd), Memory::zeroed(5), 0));
    // A short first part: the reap queues the rest and submits it from the caller's thread.
    fifo.write_all(b"ab").unwrap();
    assert!(readable(ready, 5_000));
    ring.ring.reap_ready();
    assert!(ring.wait_for(user, Duration::ZERO).is_none(), "the rest is in the kernel");
    fifo.write_all(b"cde").unwrap();
    assert!(readable(ready, 5_000), "the rest was submitted");
    ring.ring.reap_ready();
    let c = ring.wait_for(user, Duration::ZERO).expect("delivered by the caller's reap");
    assert_eq!((c.result, &c.output.unwrap()[..]), (5, &b"abcde"[..]));
}

#[test]
fn ops_go_on_while_the_caller_stalls() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (fd, mut fifo) = blocking_fifo(dir.path(), "fifo");
    // The caller submits, then never reaps nor flushes again (a JS thread blocked in a
    // synchronous wait on what this op delivers): the completion thread takes the first part,
    // and the rest goes on without the caller.
    let ring = caller_reaps_stalling_after(Duration::from_millis(10));
    let user = submit_waiting(&ring, Op::read_exact(Target::Fd(fd), Memory::zeroed(5), 0));
    fifo.write_all(b"ab").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    fifo.write_all(b"cde").unwrap();
    let c = ring.wait(user);
    assert_eq!((c.result, &c.output.unwrap()[..]), (5, &b"abcde"[..]));
    // The caller is back: completions are its own again.
    ring.ring.reap_ready();
    let user = submit_waiting(&ring, Op::read(Target::Fd(fd), Memory::zeroed(1), 0));
    fifo.write_all(b"f").unwrap();
    // Whoever takes it (the caller's reap, or the thread if this host paused the test past the
    // stall time), it arrives.
    let ready = ring.ring.ready_fd().expect("the caller still reaps");
    let result = loop {
        if let Some(c) = ring.wait_for(user, Duration::ZERO) {
            break c.result;
        }
        if readable(ready, 10) {
            ring.ring.reap_ready();
        }
    };
    assert_eq!(result, 1);
}

#[test]
fn no_wake_up_is_lost_between_resets_and_reaps() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (fd, fifo) = blocking_fifo(dir.path(), "fifo");
    let cached = blocks_file(&dir, 1);
    let ring = caller_reaps();
    let ready = ring.ring.ready_fd().unwrap();
    // Another thread completes each pipe read at a moment of its own, while this one resets and
    // reaps: through `reap_ready`, and through settled flushes of reads that complete inline. A
    // completion posted between a reset and a reap whose signal were lost would leave the poll
    // below waiting with the read still pending.
    // The writer has a file description of its own: the reads use `fifo`'s fd, which must stay
    // open after the writer is done.
    let mut to_fifo = fifo.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut seed = 0x2545_f491u32;
        for _ in 0..2_000 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let spin = std::time::Instant::now();
            while spin.elapsed() < Duration::from_micros(u64::from(seed % 60)) {}
            to_fifo.write_all(b"x").unwrap();
        }
    });
    for i in 0..2_000 {
        let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(1), 0));
        // Data the writer sent ahead completes the read inside this very call.
        let mut out = Vec::new();
        ring.ring.submit_and_reap(&mut out, usize::MAX);
        loop {
            if i % 2 == 0 {
                ring.submit(Op::read(Target::Fd(cached.as_raw_fd()), Memory::zeroed(4096), 0));
                ring.ring.submit_and_reap_settled(&mut out, usize::MAX);
            }
            let taken = out.iter().find(|c| c.user == user).map(|c| c.result);
            if let Some(result) = taken.or_else(|| ring.wait_for(user, Duration::ZERO).map(|c| c.result)) {
                assert_eq!(result, 1, "read {i}");
                break;
            }
            assert!(readable(ready, 5_000), "read {i}: its completion never signalled the eventfd");
            ring.ring.reap_ready();
        }
    }
    writer.join().unwrap();
}

#[test]
fn reaping_submitting_cancelling_and_closing_on_three_threads_delivers_each_op_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = Arc::new(blocks_file(&dir, 4));
    // A short stall, so the completion thread now and then reaps beside the caller's two threads:
    // this is the test the ThreadSanitizer run (`npm run test:tsan`) leans on for that mix.
    let ring = Arc::new(caller_reaps_stalling_after(Duration::from_millis(1)));
    let stop = Arc::new(AtomicBool::new(false));
    // One thread reaps as an event loop would, never polling: the close below takes the eventfd
    // away, and a poll of a closed number would be this test's race, not the engine's.
    let reaper = {
        let (ring, stop) = (Arc::clone(&ring), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reaped = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                ring.ring.reap_ready_into(&mut reaped);
                std::thread::sleep(Duration::from_micros(100));
            }
            reaped
        })
    };
    // Another submits and flushes inline, and cancels every third op, until the close refuses it.
    let submitter = {
        let (ring, file) = (Arc::clone(&ring), Arc::clone(&file));
        std::thread::spawn(move || {
            let (mut submitted, mut inline) = (Vec::new(), Vec::new());
            loop {
                for i in 0..8u64 {
                    let user = 1_000_000 + submitted.len() as u64;
                    let op = Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(4096), (i % 4) * 4096);
                    let Ok(key) = ring.ring.submit(user, op) else { return (submitted, inline) };
                    submitted.push(user);
                    if i % 3 == 0 {
                        ring.ring.cancel(key);
                    }
                }
                ring.ring.submit_and_reap_settled(&mut inline, usize::MAX);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(ring.ring.close(), "every op completed before the timeout");
    stop.store(true, Ordering::SeqCst);
    let (submitted, inline) = submitter.join().unwrap();
    let reaped = reaper.join().unwrap();
    assert!(submitted.len() > 8, "the submitting thread got work through before the close");
    for user in submitted {
        let found = [
            inline.iter().any(|c| c.user == user),
            reaped.iter().any(|c| c.user == user),
            ring.collector.take(user).is_some(),
        ];
        assert_eq!(found.iter().filter(|&&f| f).count(), 1, "op {user}: (inline, reaped, sink) = {found:?}");
    }
}
