//! Exact reads and whole writes of a socket: the kernel takes a socket's reads and writes only at
//! offset 0 (ESPIPE otherwise), so a transfer's later steps must not carry the count so far as
//! their offset.
mod common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;
use uring_core::{Memory, Op, Target};

/// Bytes waiting in `socket`'s receive queue.
fn unread(socket: &UnixStream) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which is valid for the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD failed");
    n
}

#[test]
fn an_exact_read_of_a_socket_reads_on_after_a_short_step() {
    let _serial = serial();
    let ring = TestRing::new();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    theirs.write_all(b"abc").unwrap();
    let (user, _) = ring.submit(Op::read_exact(Target::Fd(ours.as_raw_fd()), Memory::zeroed(6), 0));
    // The first step takes "abc" and returns short; the rest waits for the peer.
    wait_until("the first step to take what the socket held", || unread(&ours) == 0);
    theirs.write_all(b"def").unwrap();
    let c = ring.wait(user);
    assert_eq!(c.result, 6, "the first step's bytes were taken from the socket");
    assert_eq!(c.output.as_deref(), Some(&b"abcdef"[..]));
}

#[test]
fn a_whole_write_to_a_socket_writes_on_after_a_short_step() {
    let _serial = serial();
    let ring = TestRing::new();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    // More than the socket buffers, so the first step is short and the rest waits for the reader.
    let len = 4 << 20;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let mut got = vec![0u8; len];
        theirs.read_exact(&mut got).map(|_| got)
    });
    let result = ring.run(Op::write_all(Target::Fd(ours.as_raw_fd()), Memory::from_vec(data.clone()), 0));
    assert_eq!(result, len as i32);
    let got = reader.join().unwrap().expect("the reader got every byte");
    assert!(got == data, "the bytes arrived in order");
}
