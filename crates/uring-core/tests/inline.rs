//! `Ring::submit_and_reap`: submitting and reaping on the caller's thread while the submission
//! thread is idle, and falling back to the threads for everything that cannot finish there.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{blocking_fifo, blocks_file, cstr, serial, TestRing};
use uring_core::{Completion, Memory, Op, RingConfig, Target};

fn inline() -> RingConfig {
    RingConfig { inline_submit: true, ..RingConfig::default() }
}

/// Queues a 4 KiB read of each of the first `blocks` blocks of `file`; returns their users in block order.
fn queue_block_reads(ring: &TestRing, file: &std::fs::File, blocks: u64) -> Vec<u64> {
    (0..blocks).map(|i| ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(4096), i * 4096)).0).collect()
}

#[test]
fn cached_reads_complete_inside_the_call_with_their_bytes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 16);
    let ring = TestRing::deferred(inline());
    let users = queue_block_reads(&ring, &file, 16);
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    assert_eq!(out.len(), 16, "every cached read finished inside the call");
    for c in &out {
        let block = users.iter().position(|&u| u == c.user).expect("a completion of this batch") as u8;
        assert_eq!(c.result, 4096);
        assert!(c.output.as_ref().unwrap().iter().all(|&b| b == block), "block {block} has its own bytes");
    }
    assert_eq!(ring.batches(), 0, "nothing went through the completion thread");
    assert_eq!(ring.ring.in_flight(), 0);
}

#[test]
fn an_op_that_cannot_finish_inline_arrives_through_the_sink() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (fd, mut fifo) = blocking_fifo(dir.path(), "fifo");
    let ring = TestRing::deferred(inline());
    let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(5), 0));
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    assert!(out.is_empty(), "a read with no data yet cannot complete inline");
    fifo.write_all(b"hello").unwrap();
    let done = ring.wait(user);
    assert_eq!(done.result, 5);
    assert_eq!(done.output.unwrap(), b"hello");
}

#[test]
fn with_inline_submit_off_or_coop_taskrun_the_threads_do_the_work() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 1);
    for config in [
        RingConfig { inline_submit: false, ..inline() },
        RingConfig { coop_taskrun: true, ..inline() },
    ] {
        let ring = TestRing::deferred(config);
        let (user, _) = ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(4096), 0));
        let mut out = Vec::new();
        ring.ring.submit_and_reap(&mut out, usize::MAX);
        assert!(out.is_empty());
        assert_eq!(ring.wait(user).result, 4096);
    }
}

#[test]
fn multi_part_ops_finish_once_whichever_thread_reaps_them() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whole");
    std::fs::write(&path, vec![7u8; 10_000]).unwrap();
    let ring = TestRing::deferred(inline());
    // Open, read and close are three kernel entries; open runs on a kernel worker.
    let users: HashSet<u64> =
        (0..32).map(|_| ring.submit(Op::read_file(libc::AT_FDCWD, cstr(&path), Memory::zeroed(16_384))).0).collect();
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    let inline: HashSet<u64> = out.iter().map(|c| c.user).collect();
    assert_eq!(inline.len(), out.len(), "no completion twice inline");
    for c in &out {
        assert_eq!(c.result, 10_000);
    }
    for &user in users.difference(&inline) {
        assert_eq!(ring.wait(user).result, 10_000);
    }
    for &user in &inline {
        assert!(ring.collector.take(user).is_none(), "op {user} was delivered inline and by the sink");
    }
    assert_eq!(ring.ring.in_flight(), 0);
}

#[test]
fn closing_while_another_thread_submits_inline_neither_hangs_nor_loses_an_op() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = Arc::new(blocks_file(&dir, 4));
    let ring = Arc::new(TestRing::deferred(inline()));
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (ring, file, stop) = (Arc::clone(&ring), Arc::clone(&file), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut submitted = Vec::new();
            let mut inline: Vec<Completion> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for i in 0..8u64 {
                    let op = Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(4096), (i % 4) * 4096);
                    match ring.ring.submit(1_000_000 + submitted.len() as u64, op) {
                        Ok(_) => submitted.push(1_000_000 + submitted.len() as u64),
                        Err(_) => return (submitted, inline),
                    }
                }
                ring.ring.submit_and_reap(&mut inline, usize::MAX);
            }
            (submitted, inline)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    assert!(ring.ring.close(), "every op completed before the timeout");
    assert!(started.elapsed() < Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let (submitted, inline) = submitter.join().unwrap();
    assert!(submitted.len() > 8, "the other thread got work through before the close");
    let inline: HashSet<u64> = inline.iter().map(|c| c.user).collect();
    for user in submitted {
        let by_sink = ring.collector.take(user).is_some();
        assert!(by_sink != inline.contains(&user), "op {user}: delivered inline {} and by the sink {by_sink}", inline.contains(&user));
    }
}

#[test]
fn large_transfers_are_left_to_the_submission_thread() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large");
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let ring = TestRing::deferred(inline());
    // A small read first, then one larger than an inline call may copy.
    let (small, _) = ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(4096), 0));
    let (large, _) = ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(8 << 20), 0));
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    assert_eq!(out.iter().map(|c| c.user).collect::<Vec<_>>(), vec![small], "only the small read ran inline");
    let done = ring.wait(large);
    assert_eq!(done.result, 8 << 20);
    assert!(done.output.unwrap() == data, "the large read has the file's bytes");
}

#[test]
fn completions_beyond_the_callers_room_go_to_the_sink() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 4);
    let ring = TestRing::deferred(inline());
    let users = queue_block_reads(&ring, &file, 4);
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, 2);
    assert_eq!(out.len(), 2, "as many as the caller has room for");
    let inline: HashSet<u64> = out.iter().map(|c| c.user).collect();
    for &user in users.iter().filter(|u| !inline.contains(u)) {
        assert_eq!(ring.wait(user).result, 4096, "op {user} reaches the sink");
    }
    for user in inline {
        assert!(ring.collector.take(user).is_none(), "op {user} was delivered twice");
    }
}

#[test]
fn worker_ops_are_left_to_the_submission_thread_while_the_kernel_has_others() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 1);
    let path = cstr(&dir.path().join("blocks"));
    let ring = TestRing::deferred(inline());
    let queue_stat_then_read = || {
        let (stat, _) = ring.submit(Op::statx(libc::AT_FDCWD, path.clone(), 0, libc::STATX_SIZE));
        let (read, _) = ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(4096), 0));
        (stat, read)
    };
    // Nothing else in the kernel: the stat is submitted here too, and the read behind it completes here.
    let (stat, read) = queue_stat_then_read();
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    assert!(out.iter().any(|c| c.user == read && c.result == 4096), "the read completed inline");
    // The worker may finish the stat before this thread reaps.
    match out.iter().find(|c| c.user == stat) {
        Some(c) => assert_eq!(c.result, 0),
        None => assert_eq!(ring.wait(stat).result, 0),
    }
    // With a FIFO read waiting in the kernel, this thread stops at the stat (a kernel worker runs
    // it whoever submits it) and the submission thread takes it and the read behind it.
    let (fd, mut fifo) = blocking_fifo(dir.path(), "fifo");
    let (waiting, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(2), 0));
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    out.clear();
    let (stat, read) = queue_stat_then_read();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    assert!(out.is_empty(), "nothing ran on this thread: {:?}", out.iter().map(|c| c.user).collect::<Vec<_>>());
    assert_eq!(ring.wait(stat).result, 0);
    let done = ring.wait(read);
    assert_eq!(done.result, 4096);
    fifo.write_all(b"ok").unwrap();
    assert_eq!(ring.wait(waiting).result, 2);
}

#[test]
fn large_reads_submitted_together_split_between_a_kernel_worker_and_this_thread() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large");
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let _ = std::fs::read(&path);
    let ring = TestRing::deferred(inline());
    let chunk = 1usize << 20;
    let users: Vec<u64> = (0..4)
        .map(|i| ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(chunk), (i * chunk) as u64)).0)
        .collect();
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    for (i, &user) in users.iter().enumerate() {
        let done = match out.iter().position(|c| c.user == user) {
            Some(at) => out.swap_remove(at),
            None => ring.wait(user),
        };
        assert_eq!(done.result, chunk as i32);
        assert!(done.output.unwrap() == data[i * chunk..(i + 1) * chunk], "read {i} has its own bytes");
    }

    // Two large reads of a pipe, the first sent to a worker: the worker arms the pipe's poll as
    // this thread's submit does for the second, so neither holds a thread while it waits.
    let (fifo, mut writer) = blocking_fifo(dir.path(), "fifo");
    let reads: Vec<u64> = (0..2).map(|_| ring.submit(Op::read(Target::Fd(fifo), Memory::zeroed(chunk), 0)).0).collect();
    let mut out = Vec::new();
    ring.ring.submit_and_reap(&mut out, usize::MAX);
    assert!(out.is_empty(), "nothing to read yet");
    writer.write_all(&[7u8; 100]).unwrap();
    // One of them takes the 100 bytes; the close cancels the other, on its worker or its poll.
    let first = ring.wait_for(reads[0], Duration::from_millis(500)).or_else(|| ring.wait_for(reads[1], Duration::from_millis(500)));
    assert_eq!(first.map(|c| c.result), Some(100));
    assert!(ring.ring.close(), "the read left waiting is cancelled");
}
