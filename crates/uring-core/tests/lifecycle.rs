//! Back-pressure, slot reuse, cancellation, shutdown, configuration and refused arguments.
mod common;

use std::time::{Duration, Instant};

use common::*;
use uring_core::{EngineError, Memory, Op, Ring, RingConfig, Target};

fn small_ring(entries: u32) -> TestRing {
    TestRing::with(RingConfig { entries, ..RingConfig::default() })
}

/// `count` 8-byte reads of `fifo`, which block until it is written; their users, in order.
fn blocked_reads(ring: &TestRing, fifo: i32, count: usize) -> Vec<u64> {
    (0..count).map(|_| ring.submit(Op::read(Target::Fd(fifo), Memory::zeroed(8), 0)).0).collect()
}

/// Waits for each of `users` and checks it completed as cancelled.
fn all_cancelled(ring: &TestRing, users: Vec<u64>) {
    for user in users {
        assert_eq!(ring.wait(user).result, -libc::ECANCELED);
    }
}

#[test]
fn more_ops_than_the_completion_queue_holds_all_complete() {
    let _serial = serial();
    // 8 entries: the kernel gives a 16-entry completion queue; 20,000 reads wait their turn.
    let ring = small_ring(8);
    assert!(ring.ring.cq_entries() <= 16);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let fd = open_fd(&ring, &path, libc::O_RDONLY, 0);
    let users: Vec<(u64, u64)> = (0..20_000u64)
        .map(|i| {
            let offset = (i * 4096) % 65536;
            (ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(16), offset)).0, offset)
        })
        .collect();
    for (user, offset) in users {
        let c = ring.wait(user);
        assert_eq!(c.result, 16);
        assert_eq!(c.output.unwrap(), data[offset as usize..offset as usize + 16]);
    }
    assert_eq!(ring.ring.in_flight(), 0);
    // Delivery is batched: far fewer crossings than operations.
    assert!(ring.batches() < 20_000, "batches: {}", ring.batches());
}

#[test]
fn registered_slots_are_reused_100k_times() {
    let _serial = serial();
    let ring = TestRing::with(RingConfig { registered_files: 4, ..RingConfig::default() });
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    for _ in 0..100_000 {
        let slot = ring.run(Op::register_file(fd));
        assert!((0..4).contains(&slot), "slot {slot}");
        assert_eq!(ring.run(Op::unregister_file(slot as u32)), 0);
    }
    assert_eq!(ring.ring.registered_in_use(), 0);
    // The table fills up: a typed error, not a panic; releasing one frees a slot for reuse.
    let slots: Vec<i32> = (0..4).map(|_| ring.run(Op::register_file(fd))).collect();
    assert_eq!(ring.ring.submit(1, Op::register_file(fd)), Err(EngineError::TableFull));
    assert_eq!(ring.run(Op::unregister_file(slots[2] as u32)), 0);
    assert_eq!(ring.run(Op::register_file(fd)), slots[2]);
}

#[test]
fn cancelling_an_abandoned_op_completes_it_and_keeps_its_memory_until_then() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let (fd, _fifo) = blocking_fifo(dir.path(), "fifo");
    let (user, key) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(64), 0));
    assert!(ring.wait_for(user, Duration::from_millis(100)).is_none(), "a FIFO read blocks");
    assert_eq!(ring.ring.in_flight(), 1);
    ring.ring.cancel(key);
    let c = ring.wait(user);
    assert_eq!(c.result, -libc::ECANCELED);
    assert_eq!(ring.ring.in_flight(), 0);
    // A stale key (its op completed) is ignored.
    ring.ring.cancel(key);
}

#[test]
fn an_op_abandoned_while_queued_behind_a_full_kernel_budget_completes_at_once() {
    let _serial = serial();
    let ring = small_ring(8);
    let dir = tempfile::tempdir().unwrap();
    let (fifo, _keep) = blocking_fifo(dir.path(), "fifo");
    // Fill the kernel budget with reads that never complete on their own.
    let blocked: Vec<(u64, u64)> = (0..ring.ring.cq_entries()).map(|_| ring.submit(Op::read(Target::Fd(fifo), Memory::zeroed(8), 0))).collect();
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    use std::os::fd::AsRawFd;
    let (_, _) = ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(8), 0));
    let (queued, key) = ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(8), 0));
    std::thread::sleep(Duration::from_millis(50));
    ring.ring.cancel(key);
    let c = ring.wait_for(queued, Duration::from_secs(2)).expect("the abandoned queued op completed");
    assert_eq!(c.result, -libc::ECANCELED);
    for (_, key) in blocked {
        ring.ring.cancel(key);
    }
}

#[test]
fn abandoned_opens_never_leak_their_fd() {
    let _serial = serial();
    let ring = TestRing::new();
    let before = fd_count();
    let mut opened = Vec::new();
    for _ in 0..2000 {
        let (user, key) = ring.submit(Op::OpenAt { dirfd: libc::AT_FDCWD, path: c"/proc/self/exe".into(), flags: libc::O_RDONLY | libc::O_CLOEXEC, mode: 0 });
        ring.ring.cancel(key);
        let res = ring.wait(user).result;
        assert!(res >= 0 || res == -libc::ECANCELED, "{res}");
        if res >= 0 {
            opened.push(res);
        }
    }
    // Every fd reported is a real one the caller must close; every other was closed by the engine.
    assert_eq!(fd_count(), before + opened.len());
    for fd in opened {
        assert_eq!(ring.run(Op::Close { fd }), 0);
    }
    assert_eq!(fd_count(), before);
}

#[test]
fn close_with_thousands_in_flight_cancels_waits_and_joins() {
    let _serial = serial();
    let threads_before = thread_count();
    let ring = TestRing::new();
    assert_eq!(threads_settle_at(threads_before + 2), threads_before + 2);
    let dir = tempfile::tempdir().unwrap();
    let (fd, _fifo) = blocking_fifo(dir.path(), "fifo");
    let users = blocked_reads(&ring, fd, 3000);
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    assert!(ring.ring.close(), "every op completed");
    assert!(started.elapsed() < Duration::from_secs(5), "closed in {:?}", started.elapsed());
    all_cancelled(&ring, users);
    assert_eq!(thread_count(), threads_before, "no thread survives a closed ring");
    assert_eq!(ring.ring.submit(1, Op::Close { fd: 1000 }), Err(EngineError::Closed));
    assert!(ring.ring.close(), "close is idempotent");
}

#[test]
fn a_clean_close_releases_the_ring_and_its_eventfd_while_the_ring_is_still_held() {
    let _serial = serial();
    let (rings, mappings, eventfds) = (anon_fds("io_uring"), anon_mappings("io_uring"), anon_fds("eventfd"));
    let ring = TestRing::with(RingConfig { inline_submit: true, caller_reaps: true, ..RingConfig::default() });
    assert!(ring.ring.ready_fd().is_some(), "this kernel registers an eventfd");
    assert_eq!((anon_fds("io_uring"), anon_fds("eventfd")), (rings + 1, eventfds + 1));
    assert!(anon_mappings("io_uring") > mappings, "the ring's queues are mapped");
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    use std::os::fd::AsRawFd;
    let read = || Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(16), 0);
    let (user, key) = ring.submit(read());
    assert_eq!(ring.wait(user).result, 16);

    assert!(ring.ring.close());
    // Not dropped: a JS object holding the ring waits for the garbage collector.
    assert_eq!(anon_fds("io_uring"), rings, "the ring's fd is closed when a clean close returns");
    assert_eq!(anon_mappings("io_uring"), mappings, "its queues are unmapped");
    assert_eq!(anon_fds("eventfd"), eventfds, "its eventfd is closed");
    // Every later call finds the ring closed and touches nothing released.
    assert_eq!(ring.ring.submit(1, read()), Err(EngineError::Closed));
    let mut out = Vec::new();
    ring.ring.submit_and_reap_settled(&mut out, usize::MAX);
    ring.ring.reap_ready_into(&mut out);
    assert!(out.is_empty());
    ring.ring.flush();
    ring.ring.cancel(key);
    ring.ring.stop_caller_reaping();
    assert!(ring.ring.close() && ring.ring.close_waiting(), "the first close's answer");
    assert_eq!((ring.ring.in_flight(), ring.ring.ready_fd()), (0, None));
}

#[test]
fn close_with_the_kernel_full_of_blocked_reads_is_clean() {
    let _serial = serial();
    // More blocked reads than the kernel budget (about the completion queue's size) holds: one
    // cancel-everything entry took the kernel 25 s over 32k of them, past the shutdown timeout.
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let (fd, _fifo) = blocking_fifo(dir.path(), "fifo");
    let count = ring.ring.cq_entries() as usize + 5000;
    let users = blocked_reads(&ring, fd, count);
    std::thread::sleep(Duration::from_millis(200));
    assert!(ring.ring.close(), "every op completed within the shutdown timeout");
    all_cancelled(&ring, users);
}

#[test]
fn a_shutdown_timeout_beyond_any_instant_means_no_deadline() {
    let _serial = serial();
    let threads_before = thread_count();
    let ring = TestRing::with(RingConfig { shutdown_timeout: Duration::MAX, ..RingConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let (fd, _fifo) = blocking_fifo(dir.path(), "fifo");
    let users = blocked_reads(&ring, fd, 1);
    assert!(ring.ring.close(), "closed clean, without overflowing the deadline");
    all_cancelled(&ring, users);
    assert_eq!(thread_count(), threads_before, "both threads joined");
}

#[test]
fn dropping_the_ring_shuts_down_the_same_way() {
    let _serial = serial();
    let threads_before = thread_count();
    let dir = tempfile::tempdir().unwrap();
    let (fd, _fifo) = blocking_fifo(dir.path(), "fifo");
    let ring = TestRing::new();
    let users = blocked_reads(&ring, fd, 500);
    let TestRing { ring: engine, collector, .. } = ring;
    drop(engine);
    assert_eq!(thread_count(), threads_before, "no thread survives a dropped ring");
    for user in users {
        assert_eq!(collector.take(user).map(|c| c.result), Some(-libc::ECANCELED));
    }
}

#[test]
fn queued_ops_complete_as_cancelled_at_close() {
    let _serial = serial();
    // More ops than the kernel may hold: the rest are queued and must still complete.
    let ring = small_ring(4);
    let dir = tempfile::tempdir().unwrap();
    let (fd, _fifo) = blocking_fifo(dir.path(), "fifo");
    let users = blocked_reads(&ring, fd, 100);
    assert!(ring.ring.close());
    all_cancelled(&ring, users);
}

#[test]
fn configuration_is_checked() {
    let _serial = serial();
    let refuse = |config: RingConfig| match Ring::new(config, NullSink) {
        Err(EngineError::InvalidConfig(why)) => why,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("accepted"),
    };
    assert!(refuse(RingConfig { defer_taskrun: true, ..RingConfig::default() }).contains("completion thread"));
    assert!(refuse(RingConfig { entries: 0, ..RingConfig::default() }).contains("entries"));
    assert!(refuse(RingConfig { entries: 1 << 20, ..RingConfig::default() }).contains("entries"));
    // Clamped, not refused: the kernel grants its maximum.
    let ring = Ring::new(RingConfig { entries: 32768, ..RingConfig::default() }, NullSink).unwrap();
    assert_eq!(ring.sq_entries(), 32768);
    // Clamped to the soft fd limit, which the kernel enforces for the table.
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    let expected = limit.rlim_cur.min(4096) as u32;
    assert_eq!(Ring::new(RingConfig::default(), NullSink).unwrap().registered_capacity(), expected);
}

#[test]
fn coop_taskrun_and_sqpoll_rings_work() {
    let _serial = serial();
    for config in [
        RingConfig { coop_taskrun: true, ..RingConfig::default() },
        RingConfig { sqpoll_idle_ms: Some(10), ..RingConfig::default() },
    ] {
        let ring = TestRing::with(config);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let fd = open_fd(&ring, &path, libc::O_RDONLY, 0);
        for _ in 0..100 {
            assert_eq!(ring.run_full(Op::read(Target::Fd(fd), Memory::zeroed(3), 0)).output.as_deref(), Some(&b"abc"[..]));
        }
        ring.run(Op::Close { fd });
    }
}

#[test]
fn arguments_the_kernel_must_not_see_are_refused() {
    let _serial = serial();
    let ring = TestRing::new();
    let invalid = |op: Op| matches!(ring.ring.submit(1, op), Err(EngineError::InvalidArgument(_)));
    assert!(invalid(Op::read(Target::Fixed(3), Memory::zeroed(1), 0)), "unregistered slot");
    assert!(invalid(Op::read(Target::Fixed(1 << 30), Memory::zeroed(1), 0)), "slot beyond the table");
    assert!(invalid(Op::unregister_file(5)));
    assert!(invalid(Op::read(Target::Fd(0), Memory::zeroed(1), u64::MAX - 4)), "offset beyond 2^63");
    assert!(invalid(Op::Ftruncate { target: Target::Fd(0), len: 1 << 63 }));
    assert!(invalid(Op::Fadvise { target: Target::Fd(0), offset: 0, len: -1, advice: 0 }));
    // The entry holds 32 bits of length: 2^32 + 8192 would advise on 8192 bytes.
    assert!(invalid(Op::Fadvise { target: Target::Fd(0), offset: 0, len: (1 << 32) + 8192, advice: 0 }));
    assert!(invalid(Op::read(Target::Fd(-3), Memory::zeroed(1), 0)), "negative fd");
    assert!(invalid(Op::UnlinkAt { dirfd: -5, path: c"x".into(), flags: 0 }), "negative dirfd");
    assert!(invalid(Op::register_file(-1)));
    let mut small = [0u8; 16];
    // SAFETY: never submitted (refused), so never used after this scope.
    let out = unsafe { Memory::borrowed(small.as_mut_ptr(), small.len()) };
    assert!(invalid(Op::Statx { dirfd: libc::AT_FDCWD, path: c"/".into(), flags: 0, mask: 0, out }), "statx output too small");
    assert_eq!(ring.ring.in_flight(), 0);
}

struct NullSink;
impl uring_core::CompletionSink for NullSink {
    fn deliver(&self, _: Vec<uring_core::Completion>) {}
}

#[test]
fn with_deferred_wakeups_one_flush_submits_everything_queued() {
    let _serial = serial();
    let ring = TestRing::deferred(RingConfig::default());
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    use std::os::fd::AsRawFd;
    let users: Vec<u64> = (0..100).map(|i| ring.submit(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(8), i * 8)).0).collect();
    assert!(ring.wait_for(users[0], Duration::from_millis(100)).is_none(), "nothing moves before the flush");
    ring.ring.flush();
    for user in users {
        assert_eq!(ring.wait(user).result, 8);
    }
}

#[test]
fn an_idle_iopoll_ring_does_not_spin_and_still_completes_and_closes() {
    let _serial = serial();
    let ring = TestRing::with(RingConfig { iopoll: true, ..RingConfig::default() });
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    use std::os::fd::AsRawFd;
    // Buffered files cannot be polled: the kernel says so instead of hanging.
    assert_eq!(ring.run(Op::read(Target::Fd(file.as_raw_fd()), Memory::zeroed(8), 0)), -libc::EOPNOTSUPP);
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu();
    std::thread::sleep(Duration::from_millis(500));
    // Clock ticks (100 per second): a completion thread busy-polling would use about 50 here.
    assert!(cpu() - before < 10, "an idle ring used {} ticks in 0.5 s", cpu() - before);
    assert!(ring.ring.close());
}

/// Whether `fd` is open in this process.
fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags >= 0
}

#[test]
fn a_close_runs_even_when_cancelled_or_caught_queued_by_shutdown() {
    let _serial = serial();
    let ring = TestRing::deferred(RingConfig::default());
    // Queued, not yet flushed: a cancel that swept it out would leave the fd open while its
    // caller counts it as closed.
    use std::os::fd::IntoRawFd;
    let open = || std::fs::File::open("/proc/self/exe").unwrap().into_raw_fd();
    let fd = open();
    let (user, key) = ring.submit(Op::Close { fd });
    ring.ring.cancel(key);
    ring.ring.flush();
    assert_eq!(ring.wait(user).result, 0);
    assert!(!is_open(fd), "the cancelled close still closed fd {fd}");

    // Queued when the ring closes: discarded unrun, but the fd is closed all the same.
    let fd = open();
    let (user, _) = ring.submit(Op::Close { fd });
    assert!(ring.ring.close());
    assert_eq!(ring.wait(user).result, 0);
    assert!(!is_open(fd), "the close queued at shutdown still closed fd {fd}");
}

#[test]
fn a_released_slot_is_not_reused_while_an_op_still_names_it() {
    let _serial = serial();
    let ring = TestRing::with(RingConfig { registered_files: 1, ..RingConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let (fifo, mut writer) = blocking_fifo(dir.path(), "fifo");
    let slot = ring.run(Op::register_file(fifo));
    assert_eq!(slot, 0);
    // A whole read that gets half its bytes: the rest is submitted again by slot number.
    let (user, _) = ring.submit(Op::read_exact(Target::Fixed(0), Memory::zeroed(8), 0));
    use std::io::Write;
    writer.write_all(b"head").unwrap();
    use std::os::fd::AsRawFd;
    let unread = || {
        let mut bytes: libc::c_int = 0;
        // SAFETY: FIONREAD writes the FIFO's unread byte count into `bytes`.
        assert_eq!(unsafe { libc::ioctl(writer.as_raw_fd(), libc::FIONREAD, &mut bytes) }, 0);
        bytes
    };
    wait_until("the read to take the first half", || unread() == 0);
    assert!(ring.wait_for(user, Duration::from_millis(50)).is_none(), "the read waits for its other half");
    assert_eq!(ring.run(Op::unregister_file(0)), 0);
    // Were the slot free again, this file would take it and the read's rest would go to it.
    let other = std::fs::File::open("/proc/self/exe").unwrap();
    assert_eq!(ring.ring.submit(99, Op::register_file(other.as_raw_fd())), Err(EngineError::TableFull));
    writer.write_all(b"tail").unwrap();
    let c = ring.wait(user);
    assert_eq!(c.result, 8);
    assert_eq!(c.output.unwrap(), b"headtail");
    assert_eq!(ring.run(Op::register_file(other.as_raw_fd())), 0, "the slot is free once the read is done");
}
