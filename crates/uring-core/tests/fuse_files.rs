//! Reads and writes of a file on FUSE that the ring opened are copied by its off-ring thread with
//! `pread`/`pwrite` (`off_ring.rs`), not by io_uring, which gets two things wrong there. A read
//! that meets the end of a file opened for direct I/O is read again from its first offset into the
//! rest of the buffer and reported whole (Linux 6.18.44); a short write of such a file opened with
//! O_DIRECT is written again at its first offset. And the kernel does a direct-I/O FUSE
//! read in the thread that submits it, however nonblocking io_uring's try, so a read a daemon is
//! slow to answer would hold a caller's inline flush (the JavaScript thread) until it did. Staged
//! with a daemon that answers at once, or holds every read (tests/fuse). Needs root (mount), as
//! CI has.

mod common;
mod fuse;

use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use common::{cstr, serial, TestRing};
use fuse::{byte_at, Mount, Overlay, Serving, FILL};
use uring_core::{Completion, Memory, Op, RingConfig, Target};

/// `f`: one page, opened for direct I/O, every read held until released.
fn held() -> Mount {
    Mount::serving(Serving { direct_io: true, ..Serving::default() })
}

/// `f` of `mount` opened through `ring` (which so knows it is on FUSE) with `flags`.
fn open_fuse_file(ring: &TestRing, mount: &Mount, flags: i32) -> i32 {
    let fd = ring.run(Op::OpenAt { dirfd: libc::AT_FDCWD, path: cstr(&mount.dir().join("f")), flags: flags | libc::O_CLOEXEC, mode: 0 });
    assert!(fd >= 0, "open: {fd}");
    fd
}

/// The bytes a read at `offset` handed back are `serving`'s file's.
fn check_bytes(read: &Completion, serving: &Serving, offset: u64) {
    let bytes = read.output.as_ref().expect("the bytes read");
    let wrong = (0..bytes.len()).find(|&i| bytes[i] != byte_at(serving, offset + i as u64));
    assert_eq!(wrong, None, "the first byte that is not the file's");
}

#[test]
fn reads_that_meet_the_end_of_a_fuse_file_opened_for_direct_io_count_it_once() {
    let _serial = serial();
    const SIZE: u64 = 16 * 4096;
    let serving = Serving { size: SIZE, held: 0..0, direct_io: true, numbered: true, ..Serving::default() };
    let mount = Mount::serving(serving.clone());
    let ring = TestRing::new();
    let fd = open_fuse_file(&ring, &mount, libc::O_RDONLY);
    let slot = u32::try_from(ring.run(Op::register_file(fd))).expect("a registered slot");
    // An fd the engine did not hand out: asked of its mount at each read by number, and once as
    // it is registered.
    let own = mount.open_file();
    let own_slot = u32::try_from(ring.run(Op::register_file(own))).expect("a registered slot");
    for target in [Target::Fd(fd), Target::Fixed(slot), Target::Fd(own), Target::Fixed(own_slot)] {
        for (len, offset) in [(2 * SIZE, 0), (SIZE, 10 * 4096), (SIZE, 100), (SIZE, SIZE)] {
            let read = ring.run_full(Op::read(target, Memory::zeroed(len as usize), offset));
            assert_eq!(read.result as u64, SIZE - offset, "{target:?}: {len} bytes at {offset}");
            check_bytes(&read, &serving, offset);
        }
    }
    // A whole-file read, with room to spare.
    let read = ring.run_full(Op::read_file(libc::AT_FDCWD, cstr(&mount.dir().join("f")), Memory::zeroed(2 * SIZE as usize)));
    assert_eq!(read.result as u64, SIZE);
    check_bytes(&read, &serving, 0);
    assert_eq!(ring.run(Op::Close { fd }), 0);
    assert!(ring.ring.close());
    // SAFETY: the test's own fd, closed once, after the ring that used it.
    unsafe { libc::close(own) };
}

/// A slot holds the file it was registered with, while the number it was registered by may be
/// closed and name another file: copies by slot go off the ring by the engine's own fd, and read
/// the FUSE file. By the registered number, they read whatever file the number names by then.
#[test]
fn a_slots_copies_reach_its_fuse_file_after_its_number_names_another() {
    let _serial = serial();
    const SIZE: u64 = 4 * 4096;
    let serving = Serving { size: SIZE, held: 0..0, numbered: true, ..Serving::default() };
    let mount = Mount::serving(serving.clone());
    let ring = TestRing::new();
    let number = mount.open_file();
    let slot = u32::try_from(ring.run(Op::register_file(number))).expect("a registered slot");
    let other = tempfile::tempfile().expect("a temporary file");
    std::os::unix::fs::FileExt::write_all_at(&other, &[0xEE; SIZE as usize], 0).expect("the other file written");
    // SAFETY: both fds are open; `number` is the test's and now names the other file.
    assert_eq!(unsafe { libc::dup2(other.as_raw_fd(), number) }, number);
    for offset in [0, 100, SIZE - 4096] {
        let read = ring.run_full(Op::read(Target::Fixed(slot), Memory::zeroed(SIZE as usize), offset));
        assert_eq!(read.result as u64, SIZE - offset, "{offset}");
        check_bytes(&read, &serving, offset);
    }
    assert_eq!(ring.run(Op::unregister_file(slot)), 0);
    assert!(ring.ring.close());
    // SAFETY: the test's fd, closed once, after the ring that used it.
    unsafe { libc::close(number) };
}

/// Opened with O_DIRECT, a FUSE file opened for direct I/O is written through the same kernel path
/// as its reads: io_uring wrote the second part again at the first's offset, and the fourth at the
/// third's, leaving two pages never written.
#[test]
fn a_whole_write_the_daemon_takes_in_parts_goes_on_where_each_part_ended() {
    let _serial = serial();
    let serving = Serving { held: 0..0, direct_io: true, write_at_most: 4096, ..Serving::default() };
    let mount = Mount::serving(serving);
    let ring = TestRing::new();
    let flags = libc::O_WRONLY | libc::O_DIRECT | libc::O_CLOEXEC;
    let fd = open_fuse_file(&ring, &mount, flags);
    // And a number the engine did not hand out, asked of its mount at each write.
    let path = cstr(&mount.dir().join("f"));
    // SAFETY: a NUL-terminated path; the daemon answers the open.
    let own = unsafe { libc::open(path.as_ptr(), flags) };
    assert!(own >= 0, "open: {}", std::io::Error::last_os_error());
    for target in [fd, own] {
        assert_eq!(ring.run(Op::write_all(Target::Fd(target), Memory::from_vec(vec![1; 16384]), 8192)), 16384);
        let writes: Vec<(u64, u64)> = mount.writes.try_iter().collect();
        assert_eq!(writes, [(8192, 4096), (12288, 4096), (16384, 4096), (20480, 4096)], "fd {target}");
    }
    assert_eq!(ring.run(Op::Close { fd }), 0);
    assert!(ring.ring.close());
    // SAFETY: the test's own fd, closed once, after the ring that used it.
    unsafe { libc::close(own) };
}

#[test]
fn held_reads_of_a_fuse_file_wait_for_the_daemon_side_by_side() {
    let _serial = serial();
    let mut mount = held();
    let ring = TestRing::new();
    let fd = open_fuse_file(&ring, &mount, libc::O_RDONLY);
    let users: Vec<u64> = (0..3).map(|_| ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(4096), 0)).0).collect();
    for n in 0..users.len() {
        mount.reads.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("read {n} reached the daemon"));
    }
    mount.release();
    for user in users {
        assert_eq!(ring.wait(user).result, 4096);
    }
    assert_eq!(ring.run(Op::Close { fd }), 0);
    assert!(ring.ring.close());
}

#[test]
fn a_close_that_gives_up_on_a_held_fuse_read_hears_of_it_once_answered() {
    let _serial = serial();
    let mut mount = held();
    let ring = TestRing::with(RingConfig { shutdown_timeout: Duration::from_millis(100), ..RingConfig::default() });
    let fd = open_fuse_file(&ring, &mount, libc::O_RDONLY);
    let (user, _) = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(4096), 0));
    mount.reads.recv_timeout(Duration::from_secs(5)).expect("the read reached the daemon");
    assert!(!ring.ring.close(), "the daemon holds the read: the close gives up on it");
    // A caller about to free what it lent waits for the read, which the daemon answers meanwhile.
    let (waited_tx, waited) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            ring.ring.close_waiting();
            let _ = waited_tx.send(());
        });
        mount.release();
        let returned = waited.recv_timeout(Duration::from_secs(10)).is_ok();
        if !returned {
            fuse::abort_connection(&mount.connection);
        }
        assert!(returned, "close_waiting returned once the read was answered");
    });
    // Asked to stop (its ring closing), a read of a regular file reports the cancel.
    assert_eq!(ring.wait(user).result, -libc::ECANCELED);
    ring.ring.forget_fd(fd);
    // SAFETY: the test's fd, closed once; the ring that opened it is closed and forgot it.
    unsafe { libc::close(fd) };
}

/// A ring as the library runs it: queued ops wait for the caller's inline flush, which also
/// reaps, and queues and submits a whole-file op's next step.
fn inline_ring() -> TestRing {
    TestRing::deferred(RingConfig { inline_submit: true, caller_reaps: true, ..RingConfig::default() })
}

/// `user`'s completion, flushing and reaping on this thread as the event loop would until it comes.
fn flushed_until_done(ring: &TestRing, user: u64) -> Completion {
    for _ in 0..500 {
        if let Some(done) = ring.flush_inline().into_iter().find(|done| done.user == user) {
            return done;
        }
        ring.ring.reap_ready();
        if let Some(done) = ring.wait_for(user, Duration::from_millis(10)) {
            return done;
        }
    }
    panic!("op {user} did not complete")
}

/// Closes `fd` through the caller's flush, or waits for the close it handed on: it succeeds.
fn close_inline(ring: &TestRing, fd: i32) {
    let (closing, _) = ring.submit(Op::Close { fd });
    assert_eq!(ring.completion_in(ring.flush_inline(), closing).result, 0);
}

/// Runs `flushes` while a watchdog waits: if they have not returned within ten seconds, it
/// answers the daemon's held reads, so a flush stuck on one returns and the test fails instead
/// of hanging. Returns whether the flushes returned with the reads still held.
fn returned_while_held(release: Option<mpsc::Sender<()>>, flushes: impl FnOnce()) -> bool {
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let held_throughout = finished.recv_timeout(Duration::from_secs(10)).is_ok();
        drop(release);
        held_throughout
    });
    flushes();
    let _ = done.send(());
    watchdog.join().expect("the watchdog")
}

#[test]
fn a_held_read_of_a_fuse_file_the_ring_opened_leaves_an_inline_flush_at_once() {
    let _serial = serial();
    let mut mount = held();
    let ring = inline_ring();
    let (opening, _) = ring.submit(Op::OpenAt {
        dirfd: libc::AT_FDCWD,
        path: cstr(&mount.dir().join("f")),
        flags: libc::O_RDONLY | libc::O_CLOEXEC,
        mode: 0,
    });
    let fd = ring.completion_in(ring.flush_inline(), opening).result;
    assert!(fd >= 0, "open: {fd}");
    let mut user = 0;
    let returned = returned_while_held(mount.release.take(), || {
        user = ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(4096), 0)).0;
        ring.flush_inline();
        mount.reads.recv_timeout(Duration::from_secs(5)).expect("the read reached the daemon");
    });
    assert!(returned, "the flush waited for the daemon");
    let read = ring.wait(user);
    assert_eq!(read.result, 4096);
    assert!(read.output.expect("the bytes read").iter().all(|&b| b == FILL));
    close_inline(&ring, fd);
    assert!(ring.ring.close());
}

/// Mounts on this machine, other than the tests', of file systems whose open waits for a daemon or
/// a server (`remote_mounts.rs` reads the same table for the same types).
fn other_remote_mounts() -> bool {
    const REMOTE: [&str; 18] = [
        "fuse", "fuseblk", "virtiofs", "nfs", "nfs4", "cifs", "smb3", "ceph", "9p", "afs", "coda", "orangefs", "lustre", "gpfs",
        "beegfs", "gfs2", "ocfs2", "vboxsf",
    ];
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("the mount table");
    table
        .lines()
        .filter_map(|line| line.split(" - ").nth(1)?.split(' ').next()?.split('.').next())
        .any(|kind| REMOTE.contains(&kind))
}

/// The engine follows the mount table: opens go to kernel workers from the moment a FUSE file
/// system is mounted, and back to the submitting thread's inline path once none is.
#[test]
fn opens_go_to_kernel_workers_while_a_fuse_file_system_is_mounted() {
    let _serial = serial();
    let ring = TestRing::new();
    // The earlier tests' mounts are gone; one of the machine's own keeps the flag up throughout.
    let others = other_remote_mounts();
    common::wait_until("the engine to see the mount table", || uring_core::opens_on_kernel_workers() == others);
    let mount = Mount::serving(Serving { held: 0..0, ..Serving::default() });
    common::wait_until("the engine to see the FUSE mount", uring_core::opens_on_kernel_workers);
    drop(mount);
    common::wait_until("the engine to see it unmounted", || uring_core::opens_on_kernel_workers() == others);
    assert!(ring.ring.close());
}

/// With a FUSE file system mounted, a plain open whose path lies, by name, under no FUSE mount
/// point keeps its inline path, walked with no symlink followed (`remote_mounts::outside_remote`):
/// done inside the flush. One that meets a symlink, or names its way into the mount with `..`,
/// goes to a kernel worker, so the daemon holding the FUSE file's open holds no flush; a caller's
/// own ELOOP still comes back, and a symlink to a local file still opens.
#[test]
fn opens_off_fuse_stay_inline_and_the_rest_go_to_a_worker() {
    let _serial = serial();
    let ring = inline_ring();
    let others = other_remote_mounts();
    if !others {
        common::wait_until("the earlier tests' mounts gone", || !uring_core::opens_on_kernel_workers());
    }
    let mut mount = Mount::serving(Serving { held: 0..0, hold_opens: true, ..Serving::default() });
    if others {
        // The flag stays up: give the engine time to read the new mount point.
        std::thread::sleep(Duration::from_millis(500));
    } else {
        common::wait_until("the engine to see the FUSE mount", uring_core::opens_on_kernel_workers);
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let local = dir.path().join("local");
    std::fs::write(&local, b"x").expect("a local file");
    let into_fuse = dir.path().join("into-fuse");
    std::os::unix::fs::symlink(mount.dir().join("f"), &into_fuse).expect("a symlink into the mount");
    let to_local = dir.path().join("to-local");
    std::os::unix::fs::symlink(&local, &to_local).expect("a symlink to the local file");
    let open = |path: &std::path::Path, flags: i32| {
        let op = Op::OpenAt { dirfd: libc::AT_FDCWD, path: cstr(path), flags: flags | libc::O_CLOEXEC, mode: 0 };
        ring.submit(op).0
    };
    // An op sent back to the queue (a retry on a worker) waits for the caller's next flush.
    let result = |user: u64| flushed_until_done(&ring, user).result;

    // Off FUSE, by an absolute path and by one relative to the working directory (the crate's).
    for path in [local.as_path(), std::path::Path::new("Cargo.toml")] {
        let user = open(path, libc::O_RDONLY);
        let opened = ring.flush_inline().into_iter().find(|done| done.user == user);
        let fd = opened.unwrap_or_else(|| panic!("{path:?}: the open completed inside the flush")).result;
        assert!(fd >= 0, "{path:?}: {fd}");
        close_inline(&ring, fd);
    }
    // Symlinks: one to the local file opens (its retry on a worker), one the caller refuses fails ELOOP.
    let fd = result(open(&to_local, libc::O_RDONLY));
    assert!(fd >= 0, "through a symlink: {fd}");
    close_inline(&ring, fd);
    assert_eq!(result(open(&into_fuse, libc::O_RDONLY | libc::O_NOFOLLOW)), -libc::ELOOP);

    // Into the mount through a symlink and through `..`: held by the daemon, not by the flush.
    let name = mount.dir().file_name().expect("the mount's name").to_owned();
    let dotted = mount.dir().join("..").join(name).join("f");
    let mut users = Vec::new();
    let returned = returned_while_held(mount.release.take(), || {
        for path in [&into_fuse, &dotted] {
            users.push(open(path, libc::O_RDONLY));
            ring.flush_inline();
            mount.reads.recv_timeout(Duration::from_secs(5)).expect("the open reached the daemon");
        }
    });
    assert!(returned, "a flush waited for the daemon");
    for user in users {
        let fd = result(user);
        assert!(fd >= 0, "open: {fd}");
        close_inline(&ring, fd);
    }
    assert!(ring.ring.close());
}

/// The kernel takes a closed fd out of the table before it flushes the file, so a close whose
/// flush fails (here the daemon answers ECANCELED, as a plain close(2) then reports) has closed
/// its fd all the same: the engine reports the flush's error and closes nothing more. Before, it
/// took the ECANCELED for a close the kernel never ran and closed the number again: by then
/// another file's, opened while the flush waited.
#[test]
fn a_close_whose_flush_fails_ecanceled_closes_its_number_once() {
    let _serial = serial();
    let mut mount = Mount::serving(Serving { held: 0..0, held_flush: Some(-libc::ECANCELED), ..Serving::default() });
    let ring = TestRing::new();
    let other = std::fs::File::open("/proc/self/exe").expect("another file");
    let fd = open_fuse_file(&ring, &mount, libc::O_RDONLY);
    let (closing, _) = ring.submit(Op::Close { fd });
    mount.reads.recv_timeout(Duration::from_secs(5)).expect("the close's flush reached the daemon");
    // The number is free while the flush waits: another file takes it.
    // SAFETY: F_DUPFD_CLOEXEC duplicates an open fd onto the lowest free number from `fd` up.
    let taken = unsafe { libc::fcntl(other.as_raw_fd(), libc::F_DUPFD_CLOEXEC, fd) };
    assert_eq!(taken, fd, "the close left its number free as it flushed");
    mount.release();
    assert_eq!(ring.wait(closing).result, -libc::ECANCELED);
    // The engine closes fds after it delivers: give a second close time to happen.
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: F_GETFD only reads the descriptor's flags.
    assert!(unsafe { libc::fcntl(taken, libc::F_GETFD) } >= 0, "the number was closed a second time");
    // SAFETY: the test's own fd, closed once.
    unsafe { libc::close(taken) };
    assert!(ring.ring.close());
}

/// A FUSE file's slot keeps a duplicate of its fd, whose close flushes the file and waits for the
/// daemon: a registration the full table refuses makes none, so no flush holds the engine's lock.
/// Before, it made one, then closed it under the lock while the daemon held the flush.
#[test]
fn a_fuse_file_the_full_table_refuses_sends_no_flush() {
    let _serial = serial();
    let mut mount = Mount::serving(Serving { held: 0..0, held_flush: Some(0), ..Serving::default() });
    let ring = TestRing::with(RingConfig { registered_files: 1, ..RingConfig::default() });
    let local = std::fs::File::open("/proc/self/exe").expect("a local file");
    assert_eq!(ring.run(Op::register_file(local.as_raw_fd())), 0);
    let fd = mount.open_file();
    let mut refused = Ok(0);
    let returned = returned_while_held(mount.release.take(), || refused = ring.ring.submit(1, Op::register_file(fd)));
    assert!(returned, "the refusal waited for the daemon");
    assert_eq!(refused, Err(uring_core::EngineError::TableFull));
    assert!(mount.reads.try_recv().is_err(), "a flush reached the daemon");
    assert_eq!(ring.run(Op::unregister_file(0)), 0);
    assert!(ring.ring.close());
    // SAFETY: the test's own fd, closed once, after the ring.
    unsafe { libc::close(fd) };
}

/// FUSE's open waits for the daemon in the thread that submits it, whatever io_uring's
/// nonblocking try, so while a FUSE file system is mounted every open goes to a kernel worker
/// (`remote_mounts.rs`): a caller's inline flush returns while the daemon holds an open, by path or
/// as a whole-file read's first step. Before, the flush waited for the daemon's answer.
#[test]
fn a_held_open_of_a_fuse_file_leaves_inline_flushes_at_once() {
    let _serial = serial();
    let mut mount = Mount::serving(Serving { held: 0..0, hold_opens: true, ..Serving::default() });
    let ring = inline_ring();
    let path = cstr(&mount.dir().join("f"));
    let (mut opening, mut reading) = (0, 0);
    let returned = returned_while_held(mount.release.take(), || {
        let open = Op::OpenAt { dirfd: libc::AT_FDCWD, path: path.clone(), flags: libc::O_RDONLY | libc::O_CLOEXEC, mode: 0 };
        opening = ring.submit(open).0;
        ring.flush_inline();
        mount.reads.recv_timeout(Duration::from_secs(5)).expect("the open reached the daemon");
        reading = ring.submit(Op::read_file(libc::AT_FDCWD, path.clone(), Memory::zeroed(8192))).0;
        ring.flush_inline();
        mount.reads.recv_timeout(Duration::from_secs(5)).expect("the whole-file read's open reached the daemon");
    });
    assert!(returned, "a flush waited for the daemon");
    // Answered: the whole-file read's transfer, queued as its open completes, waits for a flush.
    let read = flushed_until_done(&ring, reading);
    assert_eq!(read.result, 4096);
    assert!(read.output.expect("the bytes read").iter().all(|&b| b == FILL));
    let fd = ring.wait(opening).result;
    assert!(fd >= 0, "open: {fd}");
    close_inline(&ring, fd);
    assert!(ring.ring.close());
}

/// An overlay whose lower layer is on FUSE opens its files with FUSE's open, so its mount point
/// counts as FUSE's (`remote_mounts.rs`): an open under it goes to a kernel worker, and the daemon
/// holding that open holds no flush. Before, its path was vouched for as local and the open ran
/// in the flush, waiting for the daemon.
#[test]
fn a_held_open_through_an_overlay_on_fuse_leaves_inline_flushes_at_once() {
    let _serial = serial();
    let mut mount = Mount::serving(Serving { held: 0..0, hold_opens: true, ..Serving::default() });
    let overlay = Overlay::over(&mount);
    let ring = inline_ring();
    // Looked up first, as a file opened before is: io_uring's nonblocking try of the open then
    // passes the walk and waits in the overlay's open of the FUSE file.
    assert_eq!(std::fs::metadata(overlay.dir().join("f")).expect("the file through the overlay").len(), 4096);
    let path = cstr(&overlay.dir().join("f"));
    common::wait_until("the engine to see the overlay", || uring_core::path_opens_on_kernel_workers(&path));
    let mut opening = 0;
    let returned = returned_while_held(mount.release.take(), || {
        opening = ring.submit(Op::OpenAt { dirfd: libc::AT_FDCWD, path: path.clone(), flags: libc::O_RDONLY | libc::O_CLOEXEC, mode: 0 }).0;
        ring.flush_inline();
        mount.reads.recv_timeout(Duration::from_secs(5)).expect("the open reached the daemon");
    });
    assert!(returned, "a flush waited for the daemon");
    let fd = flushed_until_done(&ring, opening).result;
    assert!(fd >= 0, "open: {fd}");
    let read = flushed_until_done(&ring, ring.submit(Op::read(Target::Fd(fd), Memory::zeroed(8192), 0)).0);
    assert_eq!(read.result, 4096);
    assert!(read.output.expect("the bytes read").iter().all(|&b| b == FILL));
    close_inline(&ring, fd);
    assert!(ring.ring.close());
}

#[test]
fn a_held_whole_file_read_of_a_fuse_file_leaves_inline_flushes_at_once() {
    let _serial = serial();
    let mut mount = held();
    let ring = inline_ring();
    let mut user = 0;
    let returned = returned_while_held(mount.release.take(), || {
        user = ring.submit(Op::read_file(libc::AT_FDCWD, cstr(&mount.dir().join("f")), Memory::zeroed(4096))).0;
        // The open first, then the transfer its completion queues, reaped and submitted on this
        // thread as the event loop does on the ring's eventfd: until the daemon holds it.
        let mut held = false;
        for _ in 0..500 {
            ring.flush_inline();
            ring.ring.reap_ready();
            if mount.reads.try_recv().is_ok() {
                held = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(held, "the whole-file read reached the daemon");
    });
    assert!(returned, "a flush waited for the daemon");
    let read = ring.wait(user);
    assert_eq!(read.result, 4096);
    assert!(read.output.expect("the bytes read").iter().all(|&b| b == FILL));
    assert!(ring.ring.close());
}
