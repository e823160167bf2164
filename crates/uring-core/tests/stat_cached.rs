//! `stat_cached`: a statx by path on the caller's thread, answered from the dentry cache on file
//! systems that keep attributes in memory; everything else is left to the ring.

use std::os::unix::fs::MetadataExt;

mod common;
mod fuse;

use common::{cstr, fd_count, serial, statx_fields};
use uring_core::{read_file_cached, stat_cached, FD_BYTES};

const STATX_SIZE: usize = std::mem::size_of::<libc::statx>();
const MASK: u32 = libc::STATX_BASIC_STATS;

/// `stat_cached` of `path` with `flags`: the result and the statx fields the tests compare.
fn stat(path: &std::path::Path, flags: i32) -> (i32, (u16, u64, u64, u32)) {
    let mut out = vec![0u8; STATX_SIZE];
    let result = stat_cached(libc::AT_FDCWD, &cstr(path), flags, MASK, &mut out);
    (result, statx_fields(&out))
}

/// What std's stat says, as the same fields.
fn expected(meta: &std::fs::Metadata) -> (u16, u64, u64, u32) {
    (meta.mode() as u16, meta.size(), meta.ino(), meta.nlink() as u32)
}

#[test]
fn a_looked_up_path_is_stated_here_as_stat_would() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, vec![7u8; 5000]).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let fifo = dir.path().join("fifo");
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(cstr(&fifo).as_ptr(), 0o644) }, 0);
    let before = fd_count();
    for path in [&file, &link, &fifo, &dir.path().to_path_buf()] {
        // Looked up once, so the dentry cache holds every step (a new symlink's too).
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(stat(path, 0), (0, expected(&meta)), "{path:?}");
    }
    // The link itself, not followed: the FIFO was never opened either, or this would block.
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert_eq!(stat(&link, libc::AT_SYMLINK_NOFOLLOW), (0, expected(&meta)));
    assert_eq!(fd_count(), before);
}

#[test]
fn a_cached_missing_name_is_enoent_and_a_name_never_looked_up_is_the_rings() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert_eq!(stat(&missing, 0).0, -libc::EAGAIN);
    assert!(std::fs::metadata(&missing).is_err());
    assert_eq!(stat(&missing, 0).0, -libc::ENOENT);
}

#[test]
fn other_file_systems_flags_and_an_empty_path_are_left_to_the_ring() {
    let _serial = serial();
    let before = fd_count();
    // procfs computes attributes on demand: not trusted here.
    let status = std::path::Path::new("/proc/self/status");
    std::fs::metadata(status).unwrap();
    assert_eq!(stat(status, 0).0, -libc::EAGAIN);
    // tmpfs keeps them in memory.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let file = shm.path().join("file");
    std::fs::write(&file, b"abc").unwrap();
    assert_eq!(stat(&file, 0), (0, expected(&std::fs::metadata(&file).unwrap())));
    assert_eq!(stat(&file, libc::AT_NO_AUTOMOUNT).0, -libc::EAGAIN);
    assert_eq!(stat(std::path::Path::new(""), 0).0, -libc::EAGAIN);
    let mut small = vec![0u8; STATX_SIZE - 1];
    assert_eq!(stat_cached(libc::AT_FDCWD, &cstr(&file), 0, MASK, &mut small), -libc::EINVAL);
    assert_eq!(fd_count(), before);
}

/// Which file system a path is on is asked of its mount, never of the file system: `fstatfs`
/// waits for a FUSE daemon (or an NFS server), and this one holds statfs requests. The mount's
/// root, and its file once looked up, resolve from the dentry cache, so only that check stands
/// between them and the daemon.
/// Needs root (mount), as CI has.
#[test]
fn a_fuse_daemon_that_never_answers_statfs_holds_up_neither_stats_nor_whole_file_reads() {
    let _serial = serial();
    let mut mount = fuse::Mount::serving(fuse::Serving { hold_statfs: true, ..fuse::Serving::default() });
    // The file's entry is cached for a minute once looked up (its attributes are not).
    let file = mount.dir().join("f");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 4096);
    let paths = [cstr(mount.dir()), cstr(&file)];
    let (done, results) = std::sync::mpsc::channel();
    let asker = std::thread::spawn(move || {
        for path in &paths {
            let mut out = vec![0u8; STATX_SIZE];
            let stat = stat_cached(libc::AT_FDCWD, path, 0, MASK, &mut out);
            let mut buf = vec![0u8; 64];
            let mut kept = [0u8; FD_BYTES];
            let read = read_file_cached(libc::AT_FDCWD, path, &mut buf, &mut kept);
            let _ = done.send((stat, read));
        }
    });
    let timeout = std::time::Duration::from_secs(5);
    let answered = [results.recv_timeout(timeout), results.recv_timeout(timeout)];
    // Answers the held statfs, if one was sent, so the thread ends either way.
    mount.release();
    asker.join().unwrap();
    assert_eq!(answered, [Ok((-libc::EAGAIN, -libc::EAGAIN)), Ok((-libc::EAGAIN, -libc::EAGAIN))]);
}
