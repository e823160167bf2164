//! The engine's steady state allocates nothing per op: reads into lent memory, one by one and as
//! groups, submitted and reaped on the caller's thread as the JavaScript client does, make no heap
//! allocation once the engine's tables have grown to size. Counted by this binary's allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use common::TestRing;
use uring_core::{Completion, Memory, Op, Results, RingConfig, Target};

/// Counts every allocation and reallocation of the process, on any thread.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the count has no effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `GlobalAlloc::alloc`'s, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`; `ptr` came from this allocator, which is the system's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RANGES: usize = 64;
const BLOCK: usize = 4096;

#[test]
fn reads_and_groups_in_steady_state_allocate_nothing() {
    // Lent memory first, so it outlives the ring (which waits for its ops when dropped).
    let mut buf = vec![0u8; RANGES * BLOCK];
    let mut results = vec![0i32; RANGES];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..RANGES {
        file.write_all(&[i as u8; BLOCK]).unwrap();
    }
    // Just written, so cached: every read completes inside `submit_and_reap`.
    let file = std::fs::File::open(&path).unwrap();
    let fd = Target::Fd(file.as_raw_fd());
    let ring = TestRing::deferred(RingConfig { inline_submit: true, ..RingConfig::default() });
    let mut out: Vec<Completion> = Vec::with_capacity(RANGES);
    let mut ops: Vec<Op> = Vec::with_capacity(RANGES);
    let base = buf.as_mut_ptr();
    let mut round = |ring: &TestRing, results: &mut [i32]| {
        for i in 0..RANGES {
            // SAFETY: block `i` of `buf`, which outlives the ring and is read only after the
            // round's completions.
            let memory = unsafe { Memory::borrowed(base.add(i * BLOCK), BLOCK) };
            ring.ring.submit(i as u64 + 1, Op::read(fd, memory, (i * BLOCK) as u64)).expect("read");
        }
        ring.ring.submit_and_reap(&mut out, usize::MAX);
        assert_eq!(out.len(), RANGES, "every single read completed inline");
        assert!(out.iter().all(|c| c.result == BLOCK as i32));
        out.clear();
        for i in 0..RANGES {
            // SAFETY: as above, in reverse block order.
            let memory = unsafe { Memory::borrowed(base.add(i * BLOCK), BLOCK) };
            ops.push(Op::read(fd, memory, ((RANGES - 1 - i) * BLOCK) as u64));
        }
        // SAFETY: `results` outlives the ring and is read only after the group's completion.
        let slots = unsafe { Results::borrowed(results.as_mut_ptr(), results.len()) };
        ring.ring.submit_group(1000, &mut ops, slots).expect("group");
        ring.ring.submit_and_reap(&mut out, usize::MAX);
        assert_eq!(out.len(), 1, "the group completed inline, once");
        assert_eq!(out[0].result, RANGES as i32);
        assert!(results.iter().all(|&r| r == BLOCK as i32));
        out.clear();
    };
    let before_warm_up = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..100 {
        round(&ring, &mut results);
    }
    let batches = ring.batches();
    let warm = ALLOCATIONS.load(Ordering::Relaxed);
    assert!(warm > before_warm_up, "the counter sees the engine's tables grow");
    for _ in 0..1000 {
        round(&ring, &mut results);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - warm;
    assert_eq!(ring.batches(), batches, "nothing went through the completion thread");
    assert_eq!(allocations, 0, "{allocations} allocations in 128,000 reads");
    // The group's reads came last, in reverse block order.
    assert_eq!((buf[0], buf[(RANGES - 1) * BLOCK]), (RANGES as u8 - 1, 0));
}
