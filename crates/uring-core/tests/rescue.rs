//! An op a caller's thread submitted inline and that its io-wq keeps queued is cancelled after
//! about two seconds and run by the submission thread instead, and that thread's later inline
//! flushes leave their ops to the submission thread (`rescue.rs`). Staged with the test
//! thread's own io-wq held to one bound worker (`IORING_REGISTER_IOWQ_MAX_WORKERS`, set through
//! a ring of the test's own, which the thread's io-wq serves too), which an open of a FIFO with
//! no reader keeps busy: the engine's op waits behind it, as ops did behind an io-wq that had
//! stopped running them (Linux 6.18.44).

mod common;

use std::ffi::CString;
use std::path::Path;
use std::time::Duration;

use common::{cstr, serial, TestRing};
use io_uring::{opcode, squeue, types, IoUring};
use uring_core::{Memory, Op, RingConfig, Target};

fn fifo(path: &Path) -> CString {
    let c = cstr(path);
    // SAFETY: a valid C path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    c
}

/// Opens `path`'s read side without waiting for a writer.
fn reader(path: &CString) -> i32 {
    // SAFETY: a valid C path; the fd is closed by the caller.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open the read side: {}", std::io::Error::last_os_error());
    fd
}

fn close(fd: i32) {
    // SAFETY: the test's own fd, closed once.
    unsafe { libc::close(fd) };
}

#[test]
fn an_op_a_callers_io_wq_keeps_queued_runs_on_the_submission_thread() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let held = fifo(&dir.path().join("held"));
    let wanted = fifo(&dir.path().join("wanted"));

    // This thread's io-wq: one bound worker, kept busy by an open waiting for a reader.
    let mut own = IoUring::new(8).expect("a ring of the test's own");
    // SAFETY: a NOP carries no pointers.
    unsafe { own.submission().push(&opcode::Nop::new().build().user_data(0)) }.expect("room");
    own.submit_and_wait(1).expect("the NOP, which gives this thread its io-wq");
    own.completion().for_each(drop);
    own.submitter().register_iowq_max_workers(&mut [1, 0]).expect("one bound worker for this thread");
    let open_held = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), held.as_ptr())
        .flags(libc::O_WRONLY | libc::O_CLOEXEC)
        .build()
        .flags(squeue::Flags::ASYNC)
        .user_data(1);
    // SAFETY: `held` outlives the op, which completes before the end of the test.
    unsafe { own.submission().push(&open_held) }.expect("room");
    own.submit().expect("the held open");
    std::thread::sleep(Duration::from_millis(100));

    let ring = TestRing::deferred(RingConfig { inline_submit: true, ..RingConfig::default() });
    let (user, _) = ring.submit(Op::OpenAt { dirfd: libc::AT_FDCWD, path: wanted.clone(), flags: libc::O_WRONLY | libc::O_CLOEXEC, mode: 0 });
    // Tried at once (ENXIO: no reader), then queued on this thread's io-wq behind the held open.
    let flushed = ring.flush_inline();
    assert!(flushed.iter().all(|c| c.user != user), "the open waits");
    let wanted_reader = reader(&wanted);
    let opened = ring.wait_for(user, Duration::from_secs(10));

    // This thread's inline flushes now leave their ops to the submission thread.
    let file = tempfile::tempfile().expect("a temporary file");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let (read, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(16), 0));
    let left_to_the_thread = ring.flush_inline().iter().all(|c| c.user != read);
    let read_result = ring.wait(read).result;

    // Let the held open go, whatever happened.
    let held_reader = reader(&held);
    own.submit_and_wait(1).expect("the held open's completion");
    let held_fd = own.completion().next().expect("a completion").result();
    close(held_fd);
    close(held_reader);
    close(wanted_reader);

    let opened = opened.expect("the open queued behind the held one completed");
    assert!(opened.result >= 0, "open: {}", opened.result);
    close(opened.result);
    assert!(left_to_the_thread, "the flush left the read to the submission thread");
    assert_eq!(read_result, 0);
    assert!(ring.ring.close());
}
