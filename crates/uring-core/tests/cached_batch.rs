//! `CachedBatchReader`: a batch of cached reads shared by the calling thread and a helper thread.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

mod common;

use common::{advise, blocks_file, serial, thread_count, threads_settle_at};
use uring_core::{read_range_cached, CachedBatchReader, EngineError, MAX_RANGES, SHARED_FROM};

const BLOCK: usize = 4096;
const UNREAD: i32 = i32::MIN;

/// Whether this process may run on two CPUs or more: with one, no helper starts.
fn two_cores() -> bool {
    std::thread::available_parallelism().is_ok_and(|cores| cores.get() >= 2)
}

/// A xorshift sequence: the same ranges on every run.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

#[test]
fn many_batches_read_by_two_threads_give_what_one_thread_reads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // 64 blocks, block `i` filled with `i`, plus 100 bytes: ranges cross the end of the file too.
    let file = blocks_file(&dir, 64);
    let appender = std::fs::OpenOptions::new().append(true).open(dir.path().join("blocks")).unwrap();
    appender.write_all_at(&[0xee; 100], 64 * BLOCK as u64).unwrap();
    let size = 64 * BLOCK + 100;
    let mut whole = vec![0u8; size];
    file.read_exact_at(&mut whole, 0).unwrap();
    let fd = file.as_raw_fd();
    let mut reader = CachedBatchReader::new();
    let mut rng = Rng(0x2545_f491);
    let (mut shared, mut alone) = (0, 0);
    // Ranges on which the batch and the single read disagreed only in that one of them found a
    // page not cached: the kernel may evict a page between the two (reclaim runs on these hosts)
    // or bring it back (the `RWF_NOWAIT` read that missed it starts readahead), and a range not
    // cached is left to the ring either way.
    let (mut ranges_read, mut disagreed) = (0, 0);
    for batch in 0..3000 {
        let count = 1 + rng.next() as usize % 96;
        let ranges: Vec<(u64, usize)> = (0..count).map(|_| (u64::from(rng.next() % (size as u32 + 200)), rng.next() as usize % (2 * BLOCK))).collect();
        let mut buf = vec![0x55u8; ranges.iter().map(|r| r.1).sum()];
        let mut results = vec![0i32; count];
        let left = reader.read(fd, &mut buf, ranges.iter().copied(), &mut results, UNREAD).expect("read");
        if count >= SHARED_FROM { shared += 1 } else { alone += 1 }
        let mut at = 0;
        for (i, &(offset, len)) in ranges.iter().enumerate() {
            // What one thread's read of the same range answers.
            let mut own = vec![0u8; len];
            let single = read_range_cached(fd, &mut own, offset).unwrap_or(UNREAD);
            if results[i] == UNREAD || single == UNREAD {
                if results[i] != single {
                    disagreed += 1;
                }
            } else {
                assert_eq!(results[i], single, "batch {batch}, range {i} ({offset}, {len})");
            }
            if results[i] >= 0 {
                // A count is always the range's whole answer: up to the end of the file.
                let from = (offset as usize).min(size);
                let n = len.min(size - from);
                assert_eq!(results[i], n as i32, "batch {batch}, range {i} ({offset}, {len})");
                assert_eq!(&buf[at..at + n], &whole[from..from + n], "batch {batch}, range {i}");
                assert!(buf[at + n..at + len].iter().all(|&b| b == 0x55), "nothing past the count is written");
            }
            ranges_read += 1;
            at += len;
        }
        assert_eq!(left as usize, results.iter().filter(|&&r| r == UNREAD).count());
    }
    assert!(shared > 1000 && alone > 100);
    assert!(disagreed * 100 <= ranges_read, "{disagreed} of {ranges_read} ranges: the batch and a single read disagree too often");
    if two_cores() {
        assert!(reader.helping(), "a batch of {SHARED_FROM} ranges or more started the helper");
        assert!(reader.helped() > 0, "and the helper read some of the ranges");
    } else {
        assert!(!reader.helping());
    }
}

#[test]
fn ranges_left_to_the_ring_are_marked_and_counted() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 32);
    let fd = file.as_raw_fd();
    // No readahead, then only the even blocks back in the page cache. DONTNEED skips pages
    // something else holds for a moment: try again until an odd block is out.
    advise(&file, libc::POSIX_FADV_RANDOM);
    let ranges: Vec<(u64, usize)> = (0..32).map(|b| (b * BLOCK as u64, BLOCK)).collect();
    let mut reader = CachedBatchReader::new();
    let mut results = vec![0i32; 32];
    let mut buf = vec![0u8; 32 * BLOCK];
    let mut left = 0;
    for _ in 0..100 {
        advise(&file, libc::POSIX_FADV_DONTNEED);
        for b in (0..32).step_by(2) {
            file.read_exact_at(&mut buf[..BLOCK], b * BLOCK as u64).unwrap();
        }
        left = reader.read(fd, &mut buf, ranges.iter().copied(), &mut results, UNREAD).expect("read");
        if left == 16 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(left, 16, "{results:?}");
    for (b, &result) in results.iter().enumerate() {
        if b % 2 == 0 {
            assert_eq!(result, BLOCK as i32);
            assert!(buf[b * BLOCK..(b + 1) * BLOCK].iter().all(|&x| x == b as u8));
        } else {
            assert_eq!(result, UNREAD, "block {b} was not cached");
        }
    }
}

#[test]
fn the_helper_starts_for_a_large_batch_and_stop_joins_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 16);
    let before = thread_count();
    let mut reader = CachedBatchReader::new();
    let mut buf = vec![0u8; 16 * BLOCK];
    let small: Vec<(u64, usize)> = (0..SHARED_FROM as u64 - 1).map(|b| (b * BLOCK as u64, BLOCK)).collect();
    let mut results = vec![0i32; small.len()];
    assert_eq!(reader.read(file.as_raw_fd(), &mut buf, small.iter().copied(), &mut results, UNREAD).unwrap(), 0);
    assert!(!reader.helping(), "a small batch is read by the calling thread alone");
    assert_eq!(thread_count(), before);
    let large: Vec<(u64, usize)> = (0..16).map(|b| (b * BLOCK as u64, BLOCK)).collect();
    let mut results = vec![0i32; 16];
    assert_eq!(reader.read(file.as_raw_fd(), &mut buf, large.iter().copied(), &mut results, UNREAD).unwrap(), 0);
    let helpers = usize::from(two_cores());
    assert_eq!(reader.helping(), helpers == 1);
    assert_eq!(threads_settle_at(before + helpers), before + helpers, "one helper thread");
    reader.stop();
    assert!(!reader.helping());
    assert_eq!(threads_settle_at(before), before, "stop joined it");
    // Stopped for good: later batches are read on the calling thread alone, and still right.
    buf.fill(0);
    assert_eq!(reader.read(file.as_raw_fd(), &mut buf, large.iter().copied(), &mut results, UNREAD).unwrap(), 0);
    assert!(!reader.helping() && results.iter().all(|&r| r == BLOCK as i32));
    assert!(buf.chunks(BLOCK).enumerate().all(|(b, block)| block.iter().all(|&x| x == b as u8)));
    // Dropping a reader joins its helper too.
    let mut dropped = CachedBatchReader::new();
    dropped.read(file.as_raw_fd(), &mut buf, large.iter().copied(), &mut results, UNREAD).unwrap();
    assert_eq!(threads_settle_at(before + helpers), before + helpers);
    drop(dropped);
    assert_eq!(threads_settle_at(before), before);
    // A reader made without a helper never starts one.
    let mut alone = CachedBatchReader::without_helper();
    assert_eq!(alone.read(file.as_raw_fd(), &mut buf, large.iter().copied(), &mut results, UNREAD).unwrap(), 0);
    assert!(!alone.helping() && results.iter().all(|&r| r == BLOCK as i32));
    assert_eq!(threads_settle_at(before), before);
}

#[test]
fn with_one_core_to_run_on_no_helper_starts() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 16);
    // This thread may run on one CPU only; the helper would take it from the thread it helps.
    // SAFETY: `cpu_set_t` is plain data, and the calls read and set this thread's own mask.
    let saved = unsafe {
        let mut saved: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut saved), 0);
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        let first = (0..libc::CPU_SETSIZE as usize).find(|&cpu| libc::CPU_ISSET(cpu, &saved)).unwrap();
        libc::CPU_SET(first, &mut one);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one), 0);
        saved
    };
    let mut reader = CachedBatchReader::new();
    let ranges: Vec<(u64, usize)> = (0..16).map(|b| (b * BLOCK as u64, BLOCK)).collect();
    let mut buf = vec![0u8; 16 * BLOCK];
    let mut results = vec![0i32; 16];
    let left = reader.read(file.as_raw_fd(), &mut buf, ranges.iter().copied(), &mut results, UNREAD);
    // SAFETY: as above; `saved` is the mask this thread had.
    assert_eq!(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &saved) }, 0);
    assert_eq!(left.unwrap(), 0);
    assert!(!reader.helping(), "no helper on one core");
    assert!(buf.chunks(BLOCK).enumerate().all(|(b, block)| block.iter().all(|&x| x == b as u8)));
}

#[test]
fn a_batch_that_does_not_fit_is_refused_before_any_read() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 16);
    let mut reader = CachedBatchReader::new();
    let ranges: Vec<(u64, usize)> = (0..16).map(|b| (b * BLOCK as u64, BLOCK)).collect();
    let mut buf = vec![0xaau8; 16 * BLOCK - 1];
    let mut results = vec![7i32; 16];
    let refused = |r: Result<u32, EngineError>| matches!(r, Err(EngineError::InvalidArgument(_)));
    assert!(refused(reader.read(file.as_raw_fd(), &mut buf, ranges.iter().copied(), &mut results, UNREAD)), "one byte short");
    assert!(refused(reader.read(file.as_raw_fd(), &mut buf, ranges[..2].iter().copied(), &mut results, UNREAD)), "a slot per range");
    assert!(refused(reader.read(file.as_raw_fd(), &mut buf, [(0, usize::MAX), (0, 2)], &mut results[..2], UNREAD)), "lengths that overflow");
    let too_many = vec![(0u64, 0usize); MAX_RANGES + 1];
    let mut slots = vec![7i32; MAX_RANGES + 1];
    assert!(refused(reader.read(file.as_raw_fd(), &mut buf, too_many.iter().copied(), &mut slots, UNREAD)), "more ranges than a claim counts");
    assert!(slots.iter().all(|&r| r == 7));
    assert!(buf.iter().all(|&b| b == 0xaa) && results.iter().all(|&r| r == 7), "nothing was read or written");
}
