//! Groups: many ops submitted as one, each result written to lent memory, one completion.
mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use common::*;
use uring_core::{EngineError, Memory, Op, Results, Target};

/// Reads of `len` bytes at `offsets` into consecutive ranges of `buf`, as ops for a group.
fn reads(target: Target, buf: &mut [u8], offsets: &[u64], len: usize) -> Vec<Op> {
    assert!(buf.len() >= offsets.len() * len);
    offsets
        .iter()
        .enumerate()
        // SAFETY: each range lies inside `buf`, which every test declares before its ring, so it
        // stays alive until the ring has waited for its ops, and leaves untouched until then.
        .map(|(i, &offset)| Op::read(target, unsafe { Memory::borrowed(buf.as_mut_ptr().add(i * len), len) }, offset))
        .collect()
}

/// `results` as a group's result slots.
fn slots(results: &mut [i32]) -> Results {
    // SAFETY: every test declares `results` before its ring (so it outlives the ring's wait for
    // its ops) and reads it only after the group's completion has arrived.
    unsafe { Results::borrowed(results.as_mut_ptr(), results.len()) }
}

#[test]
fn a_group_reads_every_range_and_completes_once() {
    let _serial = serial();
    // More members than the kernel holds at once: some wait in the queue for room. Memory lent
    // to the kernel is declared before the ring, so a failing assertion drops the ring (which
    // waits for its ops) first.
    let offsets: Vec<u64> = (0..5000u64).map(|i| i * 199 % (1 << 20)).collect();
    let mut buf = vec![0u8; offsets.len() * 64];
    let mut results = vec![i32::MIN; offsets.len()];
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g");
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let mut ops = reads(Target::Fd(file.as_raw_fd()), &mut buf, &offsets, 64);
    let before = ring.collector.delivered();
    ring.ring.submit_group(42, &mut ops, slots(&mut results)).expect("group");
    assert!(ops.is_empty() && ops.capacity() >= offsets.len(), "the ops were taken, their room left for the next group");
    let c = ring.wait(42);
    assert_eq!(c.result, offsets.len() as i32);
    assert!(c.output.is_none());
    // The members' own completions never reach the sink: the group's was the only one.
    assert_eq!(ring.collector.delivered() - before, 1);
    assert_eq!((ring.ring.in_flight(), ring.ring.groups_in_flight()), (0, 0));
    for (i, &offset) in offsets.iter().enumerate() {
        let at = offset as usize;
        let expected = &data[at..(at + 64).min(data.len())];
        assert_eq!(results[i], expected.len() as i32, "range {i}");
        assert_eq!(&buf[i * 64..i * 64 + expected.len()], expected, "range {i}");
    }
}

#[test]
fn a_group_on_a_registered_slot_keeps_the_slot_until_its_last_member() {
    let _serial = serial();
    // Lent to the kernel, so declared before the ring (as in every test here).
    let mut buf = [0u8; 2 * 4];
    let mut results = vec![i32::MIN; 2];
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let (fifo, mut writer) = blocking_fifo(dir.path(), "fifo");
    let slot = ring.run(Op::register_file(fifo));
    assert!(slot >= 0);
    let mut ops = reads(Target::Fixed(slot as u32), &mut buf, &[0, 0], 4);
    ring.ring.submit_group(5, &mut ops, slots(&mut results)).expect("group");
    // Unregistered in the kernel at once; the slot stays taken while members name it.
    assert_eq!(ring.run(Op::unregister_file(slot as u32)), 0);
    assert_eq!(ring.ring.registered_in_use(), 1);
    use std::io::Write;
    writer.write_all(b"abcdefgh").unwrap();
    assert_eq!(ring.wait(5).result, 2);
    assert_eq!(results, [4, 4]);
    let mut got = buf.to_vec();
    got.sort_unstable();
    assert_eq!(got, b"abcdefgh", "each member read its own four bytes of the pipe");
    assert_eq!(ring.ring.registered_in_use(), 0);
}

#[test]
fn a_group_is_refused_whole() {
    let _serial = serial();
    let ring = TestRing::new();
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let fd = file.as_raw_fd();
    let mut buf = vec![0u8; 64];
    let mut results = vec![0i32; 2];
    // A refused group's ops are dropped too: the caller's list is empty either way.
    let refused = |mut ops: Vec<Op>, results: Results| {
        let refused = matches!(ring.ring.submit_group(1, &mut ops, results), Err(EngineError::InvalidArgument(_)));
        refused && ops.is_empty()
    };
    // One member names an unregistered slot: nothing of the group is queued.
    let mut ops = reads(Target::Fd(fd), &mut buf, &[0], 32);
    // SAFETY: inside `buf`, which outlives the refused call.
    ops.push(Op::read(Target::Fixed(77), unsafe { Memory::borrowed(buf.as_mut_ptr().add(32), 32) }, 0));
    assert!(refused(ops, slots(&mut results)));
    // A member whose output would be owned memory: a group hands no output back.
    let ops = vec![Op::read(Target::Fd(fd), Memory::zeroed(8), 0), Op::read(Target::Fd(fd), Memory::zeroed(8), 8)];
    assert!(refused(ops, slots(&mut results)));
    assert!(refused(vec![Op::register_file(fd), Op::register_file(fd)], slots(&mut results)));
    // A result slot per member, and at least one member.
    assert!(refused(reads(Target::Fd(fd), &mut buf, &[0], 8), slots(&mut results)));
    assert!(refused(Vec::new(), slots(&mut results[..0])));
    assert_eq!((ring.ring.in_flight(), ring.ring.groups_in_flight()), (0, 0));
    assert_eq!(results, [0, 0], "nothing was written");
}

#[test]
fn a_group_in_slots_fills_only_its_members_slots() {
    let _serial = serial();
    let mut buf = vec![0u8; 4 * 16];
    let mut results = vec![-7i32; 5];
    let ring = TestRing::new();
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let fd = Target::Fd(file.as_raw_fd());
    // Two members, writing slots 1 and 4; slots 0, 2 and 3 hold what the caller found itself.
    let mut ops = reads(fd, &mut buf[16..48], &[100, 200], 16);
    ring.ring.submit_group_in_slots(11, &mut ops, &[1, 4], slots(&mut results)).expect("group");
    assert_eq!(ring.wait(11).result, 2, "the completion counts the members");
    assert_eq!(results, [-7, 16, -7, -7, 16]);
    let exe = std::fs::read("/proc/self/exe").unwrap();
    assert_eq!((&buf[16..32], &buf[32..48]), (&exe[100..116], &exe[200..216]));
    assert_eq!((ring.ring.in_flight(), ring.ring.groups_in_flight()), (0, 0));

    // Slots must rise strictly, lie inside the results, and be one per member: else nothing is queued.
    let mut refused = |slot_list: &[u32], results: Results| {
        let mut ops = reads(fd, &mut buf, &[0, 0], 16);
        matches!(ring.ring.submit_group_in_slots(1, &mut ops, slot_list, results), Err(EngineError::InvalidArgument(_))) && ops.is_empty()
    };
    let mut spare = vec![-7i32; 5];
    assert!(refused(&[2, 2], slots(&mut spare)));
    assert!(refused(&[3, 1], slots(&mut spare)));
    assert!(refused(&[1, 5], slots(&mut spare)));
    assert!(refused(&[1], slots(&mut spare)));
    assert!(refused(&[], slots(&mut spare[..0])));
    assert_eq!((ring.ring.in_flight(), ring.ring.groups_in_flight()), (0, 0));
    assert_eq!(spare, [-7; 5], "nothing was written");
}

#[test]
fn cancelling_a_group_cancels_its_unfinished_members_only() {
    let _serial = serial();
    let mut buf = [0u8; 3 * 16];
    let mut results = vec![i32::MIN; 3];
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let (fifo, _keep) = blocking_fifo(dir.path(), "fifo");
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let mut ops = reads(Target::Fd(file.as_raw_fd()), &mut buf[..32], &[0, 100], 16);
    ops.extend(reads(Target::Fd(fifo), &mut buf[32..], &[0], 16));
    let group = ring.ring.submit_group(7, &mut ops, slots(&mut results)).expect("group");
    assert!(ring.wait_for(7, Duration::from_millis(100)).is_none(), "the FIFO member holds the group");
    assert_eq!((ring.ring.in_flight(), ring.ring.groups_in_flight()), (1, 1));
    // An unrelated op, likely in a slot a finished member left: cancelling the group spares it.
    let (other, other_key) = ring.submit(Op::read(Target::Fd(fifo), Memory::zeroed(8), 0));
    ring.ring.cancel_group(group);
    assert_eq!(ring.wait(7).result, 3);
    assert_eq!(results, [16, 16, -libc::ECANCELED]);
    let exe = std::fs::read("/proc/self/exe").unwrap();
    assert_eq!(&buf[..16], &exe[..16]);
    assert_eq!(&buf[16..32], &exe[100..116]);
    assert!(ring.wait_for(other, Duration::from_millis(50)).is_none(), "the unrelated read is still waiting");
    // The group's key is stale now: cancelling it again does nothing.
    ring.ring.cancel_group(group);
    assert!(ring.wait_for(other, Duration::from_millis(50)).is_none());
    assert_eq!((ring.ring.in_flight(), ring.ring.groups_in_flight()), (1, 0));
    ring.ring.cancel(other_key);
    assert_eq!(ring.wait(other).result, -libc::ECANCELED);
}

#[test]
fn closing_ends_a_group_whose_members_are_in_the_kernel_or_queued() {
    let _serial = serial();
    // A 4-entry ring: most members wait in the queue, the rest in the kernel on a FIFO.
    let mut buf = vec![0u8; 100 * 8];
    let mut results = vec![i32::MIN; 100];
    let ring = TestRing::with(uring_core::RingConfig { entries: 4, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let (fifo, _keep) = blocking_fifo(dir.path(), "fifo");
    let offsets = vec![0u64; 100];
    ring.ring.submit_group(9, &mut reads(Target::Fd(fifo), &mut buf, &offsets, 8), slots(&mut results)).expect("group");
    assert!(ring.wait_for(9, Duration::from_millis(50)).is_none());
    assert!(ring.ring.close(), "every member completed and both threads were joined");
    assert_eq!(ring.wait(9).result, 100);
    assert!(results.iter().all(|&r| r == -libc::ECANCELED), "{results:?}");
    assert_eq!(ring.ring.groups_in_flight(), 0);
}
