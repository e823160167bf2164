//! Every operation once against real files, and kernel errors coming back as -errno.
mod common;

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use common::*;
use uring_core::{Memory, Op, Target, FD_BYTES, MAX_RW_COUNT};

const CWD: i32 = libc::AT_FDCWD;

#[test]
fn write_then_read_at_offsets() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let fd = open_fd(&ring, &path, libc::O_RDWR | libc::O_CREAT, 0o644);

    assert_eq!(ring.run(Op::write(Target::Fd(fd), Memory::from_vec(b"hello world".to_vec()), 0)), 11);
    assert_eq!(ring.run(Op::write(Target::Fd(fd), Memory::from_vec(b"WORLD".to_vec()), 6)), 5);

    let c = ring.run_full(Op::read(Target::Fd(fd), Memory::zeroed(64), 0));
    assert_eq!(c.result, 11);
    assert_eq!(c.output.as_deref(), Some(&b"hello WORLD"[..]));

    let c = ring.run_full(Op::read(Target::Fd(fd), Memory::zeroed(4), 6));
    assert_eq!(c.output.as_deref(), Some(&b"WORL"[..]));
    assert_eq!(std::fs::read(&path).unwrap(), b"hello WORLD");

    // A caller-owned buffer is filled in place.
    let mut mine = vec![0u8; 5];
    // SAFETY: `mine` outlives the op, which is waited for below.
    let borrowed = unsafe { Memory::borrowed(mine.as_mut_ptr(), mine.len()) };
    assert_eq!(ring.run(Op::read(Target::Fd(fd), borrowed, 0)), 5);
    assert_eq!(&mine, b"hello");
    assert_eq!(ring.run(Op::Close { fd }), 0);
}

/// A whole write that fails after writing part of its data reports that part, as write(2) does,
/// and the next write reports the error: a caller can say how much landed. A 64 KiB tmpfs takes
/// a short write and then refuses the rest with `ENOSPC`. Needs root (mount), as CI has.
#[test]
fn write_all_reports_what_it_wrote_before_an_error() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let target = cstr(dir.path());
    // SAFETY: NUL-terminated strings that outlive the call.
    let mounted = unsafe { libc::mount(c"tmpfs".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, c"size=64k".as_ptr().cast()) };
    assert_eq!(mounted, 0, "mount: {}", std::io::Error::last_os_error());
    let _unmount = Unmount(target);
    let fd = open_fd(&ring, &dir.path().join("full"), libc::O_WRONLY | libc::O_CREAT, 0o644);
    let written = ring.run(Op::write_all(Target::Fd(fd), Memory::from_vec(vec![7u8; 1 << 20]), 0));
    let size = std::fs::metadata(dir.path().join("full")).unwrap().len();
    assert!(written > 0 && written < 1 << 20, "wrote {written}");
    assert_eq!(written as u64, size);
    let rest = ring.run(Op::write_all(Target::Fd(fd), Memory::from_vec(vec![7u8; 4096]), written as u64));
    assert_eq!(rest, -libc::ENOSPC);
    ring.run(Op::Close { fd });
}

/// Detaches a mount when dropped, also when its test fails.
struct Unmount(std::ffi::CString);

impl Drop for Unmount {
    fn drop(&mut self) {
        // SAFETY: a NUL-terminated path that outlives the call.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn read_exact_and_write_all() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let fd = open_fd(&ring, &path, libc::O_RDWR | libc::O_CREAT, 0o644);
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(ring.run(Op::write_all(Target::Fd(fd), Memory::from_vec(data.clone()), 0)), data.len() as i32);

    let c = ring.run_full(Op::read_exact(Target::Fd(fd), Memory::zeroed(data.len()), 0));
    assert_eq!(c.result, data.len() as i32);
    assert_eq!(c.output.unwrap(), data);

    // At end of file an exact read stops short: the caller sees fewer bytes than asked.
    let c = ring.run_full(Op::read_exact(Target::Fd(fd), Memory::zeroed(100), data.len() as u64 - 40));
    assert_eq!(c.result, 40);
    assert_eq!(c.output.unwrap(), data[data.len() - 40..]);
    ring.run(Op::Close { fd });
}

#[test]
fn reads_past_the_per_op_limit_are_split() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    let file = std::fs::File::create(&path).unwrap();
    // Above the per-op limit, within what one whole op reports (i32::MAX).
    let len = MAX_RW_COUNT + 4000;
    file.set_len(i32::MAX as u64 + 8192).unwrap();
    let fd = open_fd(&ring, &path, libc::O_RDONLY, 0);
    // An exact read is split into several kernel reads; so is a plain one, whose first step the
    // kernel cuts at a page boundary (`reap::cut_read_goes_on`).
    for op in [Op::read_exact(Target::Fd(fd), Memory::zeroed(len), 0), Op::read(Target::Fd(fd), Memory::zeroed(len), 0)] {
        let c = ring.run_full(op);
        assert_eq!(c.result, len as i32);
        assert_eq!(c.output.unwrap().len(), len);
    }
    // A plain read larger than a completion counts is clamped to the kernel's limit: a short
    // count, never an error.
    let c = ring.run_full(Op::read(Target::Fd(fd), Memory::zeroed(i32::MAX as usize + 4096), 0));
    assert_eq!(c.result, MAX_RW_COUNT as i32);
    ring.run(Op::Close { fd });
}

#[test]
fn sync_allocate_advise_truncate() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let fd = open_fd(&ring, &path, libc::O_RDWR | libc::O_CREAT, 0o600);
    assert_eq!(ring.run(Op::write(Target::Fd(fd), Memory::from_vec(vec![7; 4096]), 0)), 4096);
    assert_eq!(ring.run(Op::Fsync { target: Target::Fd(fd), datasync: false }), 0);
    assert_eq!(ring.run(Op::Fsync { target: Target::Fd(fd), datasync: true }), 0);
    assert_eq!(ring.run(Op::Fallocate { target: Target::Fd(fd), offset: 0, len: 1 << 20, mode: 0 }), 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
    assert_eq!(ring.run(Op::Fadvise { target: Target::Fd(fd), offset: 0, len: 0, advice: libc::POSIX_FADV_SEQUENTIAL }), 0);
    assert_eq!(ring.run(Op::Ftruncate { target: Target::Fd(fd), len: 100 }), 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
    // Punch a hole while keeping the size.
    let keep_punch = libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE;
    assert_eq!(ring.run(Op::Fallocate { target: Target::Fd(fd), offset: 0, len: 50, mode: keep_punch }), 0);
    let c = ring.run_full(Op::read(Target::Fd(fd), Memory::zeroed(100), 0));
    assert_eq!(&c.output.unwrap()[..], &[&[0u8; 50][..], &[7u8; 50][..]].concat()[..]);
    ring.run(Op::Close { fd });
}

#[test]
fn statx_by_fd_by_path_and_of_a_registered_file() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    std::fs::write(&path, vec![1u8; 12345]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let expect = (meta.mode() as u16, meta.size(), meta.ino(), meta.nlink() as u32);

    let fd = open_fd(&ring, &path, libc::O_RDONLY, 0);
    let c = ring.run_full(Op::fstat(Target::Fd(fd), libc::STATX_BASIC_STATS | libc::STATX_BTIME));
    assert_eq!(c.result, 0);
    assert_eq!(statx_fields(&c.output.unwrap()), expect);

    let c = ring.run_full(Op::statx(CWD, cstr(&path), 0, libc::STATX_BASIC_STATS));
    assert_eq!(c.result, 0);
    let out = c.output.unwrap();
    assert_eq!(statx_fields(&out), expect);
    // mtime seconds and nanoseconds as the kernel keeps them.
    assert_eq!(u64_at(&out, 112) as i64, meta.mtime());
    assert_eq!(u32_at(&out, 120) as i64, meta.mtime_nsec());

    // Relative to a directory fd, without following a symlink.
    let link = dir.path().join("l");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let dfd = open_fd(&ring, dir.path(), libc::O_RDONLY | libc::O_DIRECTORY, 0);
    let c = ring.run_full(Op::statx(dfd, c"l".into(), libc::AT_SYMLINK_NOFOLLOW, libc::STATX_BASIC_STATS));
    assert_eq!(c.result, 0);
    assert_eq!(u16::from_le_bytes([c.output.as_ref().unwrap()[28], c.output.as_ref().unwrap()[29]]) as u32 & libc::S_IFMT, libc::S_IFLNK);

    let slot = ring.run(Op::register_file(fd));
    assert!(slot >= 0);
    let c = ring.run_full(Op::fstat(Target::Fixed(slot as u32), libc::STATX_BASIC_STATS));
    assert_eq!(c.result, 0);
    assert_eq!(statx_fields(&c.output.unwrap()), expect);
    assert_eq!(ring.run(Op::unregister_file(slot as u32)), 0);
    ring.run(Op::Close { fd });
    ring.run(Op::Close { fd: dfd });
}

#[test]
fn registered_files_read_and_write() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    let fd = open_fd(&ring, &path, libc::O_RDWR | libc::O_CREAT, 0o600);
    let slot = ring.run(Op::register_file(fd)) as u32;
    let fixed = Target::Fixed(slot);
    assert_eq!(ring.run(Op::write_all(fixed, Memory::from_vec(b"fixed!".to_vec()), 0)), 6);
    assert_eq!(ring.run(Op::Fsync { target: fixed, datasync: true }), 0);
    let c = ring.run_full(Op::read(fixed, Memory::zeroed(6), 0));
    assert_eq!(c.output.as_deref(), Some(&b"fixed!"[..]));
    assert_eq!(ring.run(Op::unregister_file(slot)), 0);
    // A released slot is refused before reaching the kernel.
    assert!(ring.ring.submit(0, Op::read(fixed, Memory::zeroed(1), 0)).is_err());
    ring.run(Op::Close { fd });
}

#[test]
fn an_fstat_queued_before_its_slots_unregister_stats_the_registered_file() {
    let _serial = serial();
    // One flush for both, as the JavaScript client sends a turn's ops.
    let ring = TestRing::deferred(uring_core::RingConfig::default());
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    use std::os::fd::AsRawFd;
    let (register, _) = ring.submit(Op::register_file(file.as_raw_fd()));
    ring.ring.flush();
    let slot = ring.wait(register).result as u32;
    let (fstat, _) = ring.submit(Op::fstat(Target::Fixed(slot), libc::STATX_BASIC_STATS));
    let (unregister, _) = ring.submit(Op::unregister_file(slot));
    ring.ring.flush();
    let c = ring.wait(fstat);
    assert_eq!(c.result, 0, "the slot was registered when the fstat was accepted");
    assert_eq!(u64_at(&c.output.unwrap(), 40), file.metadata().unwrap().size());
    assert_eq!(ring.wait(unregister).result, 0);
}

#[test]
fn open_flags_modes_and_dirfds() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let dfd = open_fd(&ring, dir.path(), libc::O_RDONLY | libc::O_DIRECTORY, 0);
    let fd = ring.run(Op::OpenAt { dirfd: dfd, path: c"made".into(), flags: libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL, mode: 0o604 });
    assert!(fd >= 0);
    assert_eq!(std::fs::metadata(dir.path().join("made")).unwrap().mode() & 0o777, 0o604 & !umask());
    // O_EXCL on an existing file.
    let again = ring.run(Op::OpenAt { dirfd: dfd, path: c"made".into(), flags: libc::O_CREAT | libc::O_EXCL, mode: 0o600 });
    assert_eq!(again, -libc::EEXIST);
    assert_eq!(ring.run(Op::OpenAt { dirfd: CWD, path: cstr(&dir.path().join("nope")), flags: 0, mode: 0 }), -libc::ENOENT);
    assert_eq!(ring.run(Op::Close { fd }), 0);
    assert_eq!(ring.run(Op::Close { fd }), -libc::EBADF);
    ring.run(Op::Close { fd: dfd });
}

fn umask() -> u32 {
    // SAFETY: umask only swaps a process setting; restored at once.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    }
}

#[test]
fn openat2_resolves_beneath_only() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inside"), b"x").unwrap();
    let dfd = open_fd(&ring, dir.path(), libc::O_RDONLY | libc::O_DIRECTORY, 0);
    let how = |resolve| Box::new(io_uring::types::OpenHow::new().flags(libc::O_RDONLY as u64 | libc::O_CLOEXEC as u64).resolve(resolve));
    let beneath = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    let fd = ring.run(Op::OpenAt2 { dirfd: dfd, path: c"inside".into(), how: how(beneath) });
    assert!(fd >= 0);
    ring.run(Op::Close { fd });
    assert_eq!(ring.run(Op::OpenAt2 { dirfd: dfd, path: c"../etc/passwd".into(), how: how(beneath) }), -libc::EXDEV);
    assert_eq!(ring.run(Op::OpenAt2 { dirfd: dfd, path: c"/etc/passwd".into(), how: how(beneath) }), -libc::EXDEV);
    ring.run(Op::Close { fd: dfd });
}

#[test]
fn rename_unlink_mkdir_symlink_link() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| cstr(&dir.path().join(n));
    std::fs::write(dir.path().join("a"), b"A").unwrap();
    std::fs::write(dir.path().join("b"), b"B").unwrap();

    let rename = |from: &str, to: &str, flags| Op::RenameAt { old_dirfd: CWD, old_path: p(from), new_dirfd: CWD, new_path: p(to), flags };
    assert_eq!(ring.run(rename("a", "b", libc::RENAME_NOREPLACE)), -libc::EEXIST);
    assert_eq!(ring.run(rename("a", "b", libc::RENAME_EXCHANGE)), 0);
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"B");
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"A");
    assert_eq!(ring.run(rename("a", "c", 0)), 0);
    assert!(!dir.path().join("a").exists());
    assert_eq!(ring.run(rename("missing", "d", 0)), -libc::ENOENT);

    assert_eq!(ring.run(Op::MkdirAt { dirfd: CWD, path: p("sub"), mode: 0o755 }), 0);
    assert!(dir.path().join("sub").is_dir());
    assert_eq!(ring.run(Op::MkdirAt { dirfd: CWD, path: p("sub"), mode: 0o755 }), -libc::EEXIST);
    std::fs::write(dir.path().join("sub/f"), b"").unwrap();
    assert_eq!(ring.run(Op::UnlinkAt { dirfd: CWD, path: p("sub"), flags: libc::AT_REMOVEDIR }), -libc::ENOTEMPTY);
    assert_eq!(ring.run(Op::UnlinkAt { dirfd: CWD, path: p("sub"), flags: 0 }), -libc::EISDIR);
    assert_eq!(ring.run(Op::UnlinkAt { dirfd: CWD, path: p("sub/f"), flags: 0 }), 0);
    assert_eq!(ring.run(Op::UnlinkAt { dirfd: CWD, path: p("sub"), flags: libc::AT_REMOVEDIR }), 0);
    assert!(!dir.path().join("sub").exists());

    assert_eq!(ring.run(Op::SymlinkAt { target: c"c".into(), new_dirfd: CWD, link_path: p("sym") }), 0);
    assert_eq!(std::fs::read_link(dir.path().join("sym")).unwrap().to_str(), Some("c"));
    assert_eq!(std::fs::read(dir.path().join("sym")).unwrap(), b"B");
    assert_eq!(ring.run(Op::LinkAt { old_dirfd: CWD, old_path: p("c"), new_dirfd: CWD, new_path: p("hard"), flags: 0 }), 0);
    assert_eq!(std::fs::metadata(dir.path().join("c")).unwrap().nlink(), 2);
    assert_eq!(ring.run(Op::LinkAt { old_dirfd: CWD, old_path: p("c"), new_dirfd: CWD, new_path: p("hard"), flags: 0 }), -libc::EEXIST);
    assert_eq!(ring.run(Op::UnlinkAt { dirfd: CWD, path: p("nothing"), flags: 0 }), -libc::ENOENT);
}

#[test]
fn bad_descriptors_come_back_as_errno() {
    let _serial = serial();
    let ring = TestRing::new();
    assert_eq!(ring.run(Op::read(Target::Fd(987_654), Memory::zeroed(8), 0)), -libc::EBADF);
    assert_eq!(ring.run(Op::Fsync { target: Target::Fd(987_654), datasync: false }), -libc::EBADF);
    // Writing to a read-only fd.
    let fd = open_fd(&ring, std::path::Path::new("/proc/self/exe"), libc::O_RDONLY, 0);
    assert_eq!(ring.run(Op::write(Target::Fd(fd), Memory::from_vec(vec![0; 4]), 0)), -libc::EBADF);
    ring.run(Op::Close { fd });
}

#[test]
fn read_file_opens_reads_and_closes_in_one_op() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    let before = fd_count();
    let c = ring.run_full(Op::read_file(CWD, cstr(&dir.path().join("f")), Memory::zeroed(65536)));
    assert_eq!(c.result, data.len() as i32);
    assert_eq!(c.output.unwrap(), data);
    // A buffer smaller than the file: filled, and the caller sees it is full.
    let c = ring.run_full(Op::read_file(CWD, cstr(&dir.path().join("f")), Memory::zeroed(100)));
    assert_eq!(c.output.unwrap(), data[..100]);
    assert_eq!(ring.run(Op::read_file(CWD, cstr(&dir.path().join("empty")), Memory::zeroed(16))), 0);
    assert_eq!(ring.run(Op::read_file(CWD, cstr(&dir.path().join("missing")), Memory::zeroed(16))), -libc::ENOENT);
    assert_eq!(ring.run(Op::read_file(CWD, cstr(dir.path()), Memory::zeroed(16))), -libc::EISDIR);
    assert_eq!(fd_count(), before, "every step closed its fd");
}

/// `read_file_keeping` of `path` into `len` owned bytes, the fd kept into `kept`.
fn keeping(path: &std::path::Path, len: usize, kept: &mut [u8; FD_BYTES]) -> Op {
    // SAFETY: every caller declares `kept` before its ring and reads it only after the op's completion.
    Op::read_file_keeping(CWD, cstr(path), Memory::zeroed(len), unsafe { Memory::borrowed(kept.as_mut_ptr(), FD_BYTES) })
}

#[test]
fn read_file_keeping_leaves_a_full_files_fd_to_the_caller() {
    let _serial = serial();
    let mut kept = [0u8; FD_BYTES];
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    // A FIFO's data can be read only once: the first read's must not be lost.
    let fifo = dir.path().join("fifo");
    // SAFETY: a valid C path.
    assert_eq!(unsafe { libc::mkfifo(cstr(&fifo).as_ptr(), 0o600) }, 0);
    let before = fd_count();
    let writer = std::thread::spawn({
        let (fifo, data) = (fifo.clone(), data.clone());
        move || std::fs::write(fifo, data)
    });
    let c = ring.run_full(keeping(&fifo, 16_384, &mut kept));
    assert_eq!(c.result, 16_384);
    let fd = i32::from_le_bytes(kept);
    let mut got = c.output.unwrap();
    loop {
        // A stream has no offsets: io_uring reads on from where the last read ended.
        let c = ring.run_full(Op::read(Target::Fd(fd), Memory::zeroed(65_536), got.len() as u64));
        assert!(c.result >= 0, "{}", c.result);
        if c.result == 0 {
            break;
        }
        got.extend(c.output.unwrap());
    }
    writer.join().unwrap().unwrap();
    assert_eq!(got, data);
    assert_eq!(ring.run(Op::Close { fd }), 0);
    // Not full: closed, as by `read_file`, and `kept` left alone.
    let small = dir.path().join("small");
    std::fs::write(&small, vec![7u8; 4096]).unwrap();
    kept = [0xff; FD_BYTES];
    assert_eq!(ring.run(keeping(&small, 8192, &mut kept)), 4096);
    assert_eq!(kept, [0xff; FD_BYTES]);
    assert_eq!(fd_count(), before);
    // Given up on at random points: an fd kept for a caller that left is closed by the engine.
    for _ in 0..500 {
        let (user, key) = ring.submit(keeping(&small, 4096, &mut kept));
        ring.ring.cancel(key);
        match ring.wait(user).result {
            4096 => assert_eq!(ring.run(Op::Close { fd: i32::from_le_bytes(kept) }), 0),
            res => assert_eq!(res, -libc::ECANCELED),
        }
    }
    assert_eq!(fd_count(), before, "every fd kept was closed once");
    // Where the fd goes must hold one, and be the caller's: owned memory is not handed back.
    let mut two = [0u8; 2];
    // SAFETY: refused before the kernel sees it.
    let short = Op::read_file_keeping(CWD, cstr(&small), Memory::zeroed(8), unsafe { Memory::borrowed(two.as_mut_ptr(), 2) });
    assert!(matches!(ring.ring.submit(1 << 40, short), Err(uring_core::EngineError::InvalidArgument(_))));
    let owned = Op::read_file_keeping(CWD, cstr(&small), Memory::zeroed(8), Memory::zeroed(FD_BYTES));
    assert!(matches!(ring.ring.submit(1 << 40, owned), Err(uring_core::EngineError::InvalidArgument(_))));
}

#[test]
fn read_file_abandoned_or_shut_down_mid_way_never_leaks_its_fd() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), vec![1u8; 4096]).unwrap();
    let file = cstr(&dir.path().join("f"));
    // Reads of a FIFO block after the open.
    blocked_whole_file_ops_never_leak_their_fds(
        dir.path(),
        |fifo| Op::read_file(CWD, fifo, Memory::zeroed(8)),
        |ring| {
            // Abandoned at random points of open/read/close.
            for _ in 0..500 {
                let (user, key) = ring.submit(Op::read_file(CWD, file.clone(), Memory::zeroed(4096)));
                ring.ring.cancel(key);
                let res = ring.wait(user).result;
                assert!(res == 4096 || res == -libc::ECANCELED, "{res}");
            }
        },
    );
}

/// Whole-file ops that `blocked` makes for a FIFO nobody drains block after their open, holding
/// their fd: cancelled, and then cut off by a shutdown, each reports ECANCELED and its fd is
/// closed. `between` runs on the ring between the two.
fn blocked_whole_file_ops_never_leak_their_fds(
    dir: &std::path::Path,
    blocked: impl Fn(std::ffi::CString) -> Op,
    between: impl Fn(&TestRing),
) {
    let (_fd, _fifo) = blocking_fifo(dir, "fifo");
    let fifo = cstr(&dir.join("fifo"));
    let before = fd_count();
    let ring = TestRing::new();
    let ring_fds = fd_count() - before;
    let held: Vec<(u64, u64)> = (0..50).map(|_| ring.submit(blocked(fifo.clone()))).collect();
    // Cancelled only once every op has opened its fd, so the cancel meets fds it must close.
    wait_until("50 whole-file ops to open the FIFO", || fd_count() == before + ring_fds + 50);
    for (_, key) in &held {
        ring.ring.cancel(*key);
    }
    for (user, _) in held {
        assert_eq!(ring.wait(user).result, -libc::ECANCELED);
    }
    between(&ring);
    assert_eq!(fd_count(), before + ring_fds);
    let users: Vec<u64> = (0..50).map(|_| ring.submit(blocked(fifo.clone())).0).collect();
    wait_until("50 whole-file ops to open the FIFO", || fd_count() == before + ring_fds + 50);
    assert!(ring.ring.close());
    for user in users {
        assert_eq!(ring.wait(user).result, -libc::ECANCELED);
    }
    drop(ring);
    assert_eq!(fd_count(), before);
}

#[test]
fn write_file_opens_writes_all_and_closes_in_one_op() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let create = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    let before = fd_count();
    let write = |name: &str, flags: i32, bytes: &[u8]| {
        ring.run(Op::write_file(CWD, cstr(&path(name)), flags, 0o600, Memory::from_vec(bytes.to_vec())))
    };
    assert_eq!(write("f", create, &data), data.len() as i32);
    assert_eq!(std::fs::read(path("f")).unwrap(), data);
    assert_eq!(std::fs::metadata(path("f")).unwrap().permissions().mode() & 0o777, 0o600);
    // Over a longer file: truncated first.
    assert_eq!(write("f", create, b"short"), 5);
    assert_eq!(std::fs::read(path("f")).unwrap(), b"short");
    assert_eq!(write("f", libc::O_WRONLY | libc::O_APPEND, b"+more"), 5);
    assert_eq!(std::fs::read(path("f")).unwrap(), b"short+more");
    assert_eq!(write("empty", create, b""), 0);
    assert_eq!(std::fs::read(path("empty")).unwrap(), b"");
    // No data still makes one write, as write(2) of nothing does: it fails on a file not open
    // for writing. (io_uring returns 0 for it on /dev/full, where write(2) fails with ENOSPC.)
    assert_eq!(write("empty", libc::O_RDONLY, b""), -libc::EBADF);
    assert_eq!(ring.run(Op::write_file(CWD, c"/dev/full".into(), libc::O_WRONLY, 0, Memory::from_vec(Vec::new()))), 0);
    assert_eq!(write("f", create | libc::O_EXCL, b"x"), -libc::EEXIST);
    assert_eq!(write("missing/f", create, b"x"), -libc::ENOENT);
    assert_eq!(ring.run(Op::write_file(CWD, cstr(dir.path()), create, 0o600, Memory::from_vec(vec![1]))), -libc::EISDIR);
    assert_eq!(fd_count(), before, "every step closed its fd");
}

#[test]
fn write_file_abandoned_or_shut_down_mid_way_never_leaks_its_fd() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // Writes to a FIFO block once its buffer is full.
    blocked_whole_file_ops_never_leak_their_fds(
        dir.path(),
        |fifo| Op::write_file(CWD, fifo, libc::O_WRONLY, 0, Memory::from_vec(vec![7u8; 1 << 20])),
        |_| {},
    );
}

#[test]
fn open_path_tells_whether_a_path_exists_without_opening_the_file() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| cstr(&dir.path().join(name));
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    std::os::unix::fs::symlink("nowhere", dir.path().join("dangling")).unwrap();
    std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
    // Opening a FIFO for reading would block until a writer came; O_PATH does not open it.
    // SAFETY: a valid C path.
    assert_eq!(unsafe { libc::mkfifo(path("fifo").as_ptr(), 0o600) }, 0);
    let before = fd_count();
    for name in ["f", "fifo", ""] {
        assert_eq!(ring.run(Op::open_path(CWD, path(name))), 0, "{name}");
    }
    assert_eq!(ring.run(Op::open_path(CWD, path("missing"))), -libc::ENOENT);
    assert_eq!(ring.run(Op::open_path(CWD, path("dangling"))), -libc::ENOENT);
    assert_eq!(ring.run(Op::open_path(CWD, path("loop"))), -libc::ELOOP);
    assert_eq!(ring.run(Op::open_path(CWD, path("f/below"))), -libc::ENOTDIR);
    assert_eq!(fd_count(), before, "every probe closed its fd");
}

/// io_uring's first, non-blocking try of an open fails ENXIO on a FIFO with no reader; open(2)
/// waits for one, and so must the ring's open (plain `O_WRONLY`: `O_CREAT` or `O_TRUNC` would
/// send it to a kernel worker from the start).
#[test]
fn a_write_only_open_of_a_fifo_waits_for_a_reader_as_open_does() {
    let _serial = serial();
    let ring = TestRing::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    let c = cstr(&path);
    // SAFETY: a valid C path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let dfd = open_fd(&ring, dir.path(), libc::O_RDONLY | libc::O_DIRECTORY, 0);
    let before = fd_count();
    let wronly = libc::O_WRONLY | libc::O_CLOEXEC;
    let beneath = || {
        let how = io_uring::types::OpenHow::new().flags(wronly as u64).resolve(libc::RESOLVE_BENEATH);
        Op::OpenAt2 { dirfd: dfd, path: c"fifo".into(), how: Box::new(how) }
    };

    // Asked not to block, ENXIO at once, as open(2) gives it.
    assert_eq!(ring.run(Op::OpenAt { dirfd: CWD, path: c.clone(), flags: wronly | libc::O_NONBLOCK, mode: 0 }), -libc::ENXIO);

    for open in [Op::OpenAt { dirfd: CWD, path: c.clone(), flags: wronly, mode: 0 }, beneath()] {
        let (user, _) = ring.submit(open);
        // Still waiting for a reader, not failed.
        assert!(ring.wait_for(user, Duration::from_millis(100)).is_none(), "the open did not wait for a reader");
        let mut reader = std::fs::File::open(&path).unwrap();
        let fd = ring.wait(user).result;
        assert!(fd >= 0, "open failed: {fd}");
        assert_eq!(ring.run(Op::write(Target::Fd(fd), Memory::from_vec(b"ok".to_vec()), 0)), 2);
        assert_eq!(ring.run(Op::Close { fd }), 0);
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ok");
    }
    // The same for a whole-file write's open; its write and close then run as usual.
    let (user, _) = ring.submit(Op::write_file(CWD, c.clone(), libc::O_WRONLY, 0, Memory::from_vec(b"whole".to_vec())));
    assert!(ring.wait_for(user, Duration::from_millis(100)).is_none(), "the whole-file write did not wait for a reader");
    let mut reader = std::fs::File::open(&path).unwrap();
    assert_eq!(ring.wait(user).result, 5);
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"whole");
    drop(reader);

    // Waiting on a worker, it ends when cancelled, and leaves no fd.
    let (user, key) = ring.submit(Op::OpenAt { dirfd: CWD, path: c.clone(), flags: wronly, mode: 0 });
    assert!(ring.wait_for(user, Duration::from_millis(100)).is_none(), "the open did not wait for a reader");
    ring.ring.cancel(key);
    let res = ring.wait(user).result;
    // The kernel's -ERESTARTSYS from the interrupted worker, which must not reach a caller.
    assert_eq!(res, -libc::ECANCELED, "cancelled open");
    assert_eq!(fd_count(), before);
    assert_eq!(ring.run(Op::Close { fd: dfd }), 0);
}
