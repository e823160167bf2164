//! A read a cancel interrupts on a kernel worker, whose count the kernel gets wrong: staged on a
//! FUSE file opened for direct I/O and read a page per request (tests/fuse). The daemon answers the
//! first half of a large read and holds the rest until the kernel interrupts it, as the cancel of
//! the kernel worker waiting for it does, then fails it EINTR. On Linux 6.18.44 the kernel then
//! asks for the first half again, from offset 0, into the second half of the buffer, and reports
//! the read whole. The engine reports a read asked to stop of such a file as cancelled, whatever
//! its count (`reap::stopped_read_is_cancelled`). The read must run on a kernel worker: the
//! kernel does a direct-I/O FUSE read in the thread that submits it, which would wait for the
//! daemon. The engine sends a large read to a worker when another follows it in an inline flush.
//! Needs root (mount), as CI has.

mod common;
mod fuse;

use std::time::Duration;

use common::{serial, TestRing};
use fuse::{byte_at, Mount, Serving};
use uring_core::{Completion, Memory, Op, OpKey, RingConfig, Target, LARGE_READ};

/// Two large reads' worth of numbered pages; the first read's second half held until interrupted.
fn serving() -> Serving {
    Serving {
        size: 2 * LARGE_READ as u64,
        held: LARGE_READ as u64 / 2..LARGE_READ as u64,
        direct_io: true,
        honour_interrupts: true,
        numbered: true,
        ..Serving::default()
    }
}

/// A ring whose queued ops wait for the caller's inline flush.
fn inline_ring() -> TestRing {
    TestRing::deferred(RingConfig { inline_submit: true, ..RingConfig::default() })
}

/// Reads both halves of `f` through `target`, one large read each, in one inline flush: the first
/// goes to a kernel worker, which the daemon holds half-way; the second, all answered, is copied
/// in the flush. Returns the first's user and key once the daemon holds it.
fn read_held(ring: &TestRing, mount: &Mount, target: Target) -> (u64, OpKey) {
    let held = ring.submit(Op::read(target, Memory::zeroed(LARGE_READ), 0));
    let (answered, _) = ring.submit(Op::read(target, Memory::zeroed(LARGE_READ), LARGE_READ as u64));
    let second = ring.completion_in(ring.flush_inline(), answered);
    assert_eq!(second.result, LARGE_READ as i32, "the second read, all answered, is whole");
    check_bytes(&second, LARGE_READ as u64);
    mount.reads.recv_timeout(Duration::from_secs(5)).expect("the first read's second half reached the daemon");
    held
}

/// The bytes a read at `offset` handed back are the file's.
fn check_bytes(read: &Completion, offset: u64) {
    let bytes = read.output.as_ref().expect("the bytes read");
    let serving = serving();
    let wrong = (0..bytes.len()).find(|&i| bytes[i] != byte_at(&serving, offset + i as u64));
    assert_eq!(wrong, None, "the first byte that is not the file's");
}

/// The engine copies a FUSE file off the ring (tests/fuse_files.rs): the kernel's path, staged
/// here, is kept with `open_file_on_kernel_path`.
#[test]
fn a_read_a_cancel_interrupts_on_a_kernel_worker_fails_cancelled() {
    let _serial = serial();
    let mut mount = Mount::serving(serving());
    let ring = inline_ring();
    let fd = mount.open_file_on_kernel_path(&ring.ring);
    let (user, key) = read_held(&ring, &mount, Target::Fd(fd));
    ring.ring.cancel(key);
    let done = ring.wait_for(user, Duration::from_secs(5)).expect("the cancelled read completed");
    assert!(done.result < 0, "a count ({}) the kernel cannot vouch for", done.result);
    assert!([-libc::ECANCELED, -libc::EINTR].contains(&done.result), "{}", done.result);
    // Not cancelled, the same read gives the file's bytes.
    mount.release();
    let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(LARGE_READ), 0));
    let whole = ring.completion_in(ring.flush_inline(), user);
    assert_eq!(whole.result, LARGE_READ as i32);
    check_bytes(&whole, 0);
    assert!(ring.ring.close());
    Mount::close_file_on_kernel_path(&ring.ring, fd);
}

#[test]
fn a_read_the_shutdown_interrupts_on_a_kernel_worker_fails_cancelled() {
    let _serial = serial();
    let mount = Mount::serving(serving());
    let ring = inline_ring();
    let fd = mount.open_file_on_kernel_path(&ring.ring);
    let (user, _) = read_held(&ring, &mount, Target::Fd(fd));
    assert!(ring.ring.close(), "the interrupted read ends, so the close is clean");
    let done = ring.wait_for(user, Duration::from_secs(5)).expect("the read's completion was delivered");
    assert!([-libc::ECANCELED, -libc::EINTR].contains(&done.result), "{}", done.result);
    Mount::close_file_on_kernel_path(&ring.ring, fd);
}
