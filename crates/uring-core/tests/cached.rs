//! `read_cached`: a read on the caller's thread of what the page cache holds, which never waits
//! for a device; `read_range_cached`, which says whether that was a batch range's whole answer;
//! `read_file_cached`: a whole file opened and read the same way, as far as the
//! dentry and page caches hold it.

use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

mod common;

use common::{advise, blocks_file, cstr, fd_count, serial};
use uring_core::{read_cached, read_file_cached, read_range_cached};

#[test]
fn cached_data_is_copied_and_end_of_file_is_zero() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 4);
    let mut whole = vec![0u8; 4 * 4096];
    file.read_exact_at(&mut whole, 0).unwrap();

    let mut buf = vec![0xaa; 8192];
    assert_eq!(read_cached(file.as_raw_fd(), &mut buf, 4096), 8192);
    assert!(buf[..4096].iter().all(|&b| b == 1) && buf[4096..].iter().all(|&b| b == 2));
    assert_eq!(read_cached(file.as_raw_fd(), &mut buf, 3 * 4096), 4096, "short where the file ends");
    assert!(buf[..4096].iter().all(|&b| b == 3));
    assert_eq!(read_cached(file.as_raw_fd(), &mut buf, 4 * 4096), 0, "end of file");
    assert_eq!(read_cached(file.as_raw_fd(), &mut buf, u64::MAX), -libc::EINVAL, "an offset off_t cannot hold");
}

#[test]
fn an_offset_past_four_gib_reads_what_is_written_there() {
    // The offset reaches the kernel whole, its high half included (a sparse file: one page).
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::options().read(true).write(true).create_new(true).open(dir.path().join("far")).unwrap();
    let far = (5u64 << 32) + 3 * 4096;
    file.write_all_at(&[9u8; 4096], far).unwrap();
    let mut buf = vec![0u8; 4096];
    assert_eq!(read_cached(file.as_raw_fd(), &mut buf, far), 4096);
    assert!(buf.iter().all(|&b| b == 9));
    assert_eq!(read_cached(file.as_raw_fd(), &mut buf, far + 4096), 0, "end of file");
}

#[test]
fn a_range_not_in_the_page_cache_is_eagain_and_a_partly_cached_one_is_short() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 2048);
    let mut buf = vec![0u8; 512 * 4096];
    // No readahead: a refused read then brings in just its own page (without waiting for it).
    advise(&file, libc::POSIX_FADV_RANDOM);
    // DONTNEED skips pages something else holds for a moment (a busy machine), page 0 or any of the
    // rest: try again until a round drops page 0 and some page after it.
    let (mut first, mut n) = (0, 0);
    for _ in 0..100 {
        advise(&file, libc::POSIX_FADV_DONTNEED);
        first = read_cached(file.as_raw_fd(), &mut buf[..4096], 0);
        if first == -libc::EAGAIN {
            file.read_exact_at(&mut buf[..4096], 0).unwrap();
            n = read_cached(file.as_raw_fd(), &mut buf, 0);
            if (n as usize) < buf.len() {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(first, -libc::EAGAIN, "not cached: no wait for the disk");
    assert!(n >= 4096 && (n as usize) < buf.len() && n % 4096 == 0, "the cached prefix only, got {n}");
    assert!(buf[..n as usize].chunks(4096).enumerate().all(|(i, block)| block.iter().all(|&b| b == i as u8)));
}

#[test]
fn a_range_is_answered_here_only_when_all_of_it_or_the_end_of_the_file_was_read() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let blocks = blocks_file(&dir, 3);
    // Ends 100 bytes into its fourth page.
    let path = dir.path().join("tail");
    std::fs::write(&path, vec![9u8; 3 * 4096 + 100]).unwrap();
    let tail = std::fs::File::open(&path).unwrap();
    let mut whole = vec![0u8; 4 * 4096];
    blocks.read_exact_at(&mut whole[..3 * 4096], 0).unwrap();
    tail.read_exact_at(&mut whole[..3 * 4096 + 100], 0).unwrap();
    let (fd, tail_fd) = (blocks.as_raw_fd(), tail.as_raw_fd());

    let mut buf = vec![0u8; 2 * 4096];
    assert_eq!(read_range_cached(fd, &mut buf, 4096), Some(8192), "all of it");
    assert!(buf[..4096].iter().all(|&b| b == 1) && buf[4096..].iter().all(|&b| b == 2));
    assert_eq!(read_range_cached(tail_fd, &mut buf, 2 * 4096), Some(4196), "short inside a page: the end of the file");
    assert_eq!(read_range_cached(tail_fd, &mut buf, 4 * 4096), Some(0), "past the end of the file");
    assert_eq!(read_range_cached(fd, &mut buf[..0], 4096), Some(0), "an empty range");
    // Short at a page boundary: the file may end there, or only its cached part: the ring reads it.
    assert_eq!(read_cached(fd, &mut buf, 2 * 4096), 4096);
    assert_eq!(read_range_cached(fd, &mut buf, 2 * 4096), None);
    // Errors are the ring's to meet and report.
    assert_eq!(read_range_cached(-1, &mut buf, 0), None);
    assert_eq!(read_range_cached(fd, &mut buf, u64::MAX), None);

    // Not cached: EAGAIN, left to the ring. DONTNEED skips pages something holds for a moment.
    advise(&blocks, libc::POSIX_FADV_RANDOM);
    let mut dropped = false;
    for _ in 0..100 {
        advise(&blocks, libc::POSIX_FADV_DONTNEED);
        if read_cached(fd, &mut buf[..4096], 0) == -libc::EAGAIN {
            dropped = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(dropped, "page 0 left the page cache");
    assert_eq!(read_range_cached(fd, &mut buf[..4096], 0), None);
}

#[test]
fn pipes_directories_and_bad_fds_are_refused_with_their_errno() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut buf = vec![0u8; 16];
    assert_eq!(read_cached(fds[0], &mut buf, 0), -libc::ESPIPE);
    let directory = std::fs::File::open(dir.path()).unwrap();
    assert_eq!(read_cached(directory.as_raw_fd(), &mut buf, 0), -libc::EOPNOTSUPP, "directories cannot promise not to wait");
    assert_eq!(read_cached(-1, &mut buf, 0), -libc::EBADF);
    // SAFETY: closing the two descriptors pipe(2) gave this test.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

/// What `read_file_cached` left in its fd slot.
fn kept_fd(kept: &[u8; 4]) -> i32 {
    i32::from_le_bytes(*kept)
}

fn nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL on a descriptor this test holds.
    unsafe { libc::fcntl(fd, libc::F_GETFL) & libc::O_NONBLOCK != 0 }
}

fn close_fd(fd: i32) {
    // SAFETY: closes a descriptor read_file_cached handed to this test.
    assert_eq!(unsafe { libc::close(fd) }, 0);
}

#[test]
fn a_cached_file_is_read_whole_and_closed_or_its_fd_kept_for_the_rest() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, [7u8; 5000]).unwrap();
    std::fs::write(dir.path().join("empty"), []).unwrap();
    let large = blocks_file(&dir, 8);
    let mut whole = vec![0u8; 8 * 4096];
    large.read_exact_at(&mut whole, 0).unwrap();
    std::fs::read(&small).unwrap();
    let fds = fd_count();
    let mut buf = vec![0u8; 16 * 1024];
    let mut kept = [0u8; 4];

    assert_eq!(read_file_cached(libc::AT_FDCWD, &cstr(&small), &mut buf, &mut kept), 5000);
    assert!(buf[..5000].iter().all(|&b| b == 7));
    assert_eq!(kept_fd(&kept), -1, "the whole file: closed");
    assert_eq!(read_file_cached(libc::AT_FDCWD, &cstr(&dir.path().join("empty")), &mut buf, &mut kept), 0);
    assert_eq!(kept_fd(&kept), -1);
    assert_eq!(fd_count(), fds);

    // Larger than the buffer: it is filled, and the fd stays open to read on from.
    let n = read_file_cached(libc::AT_FDCWD, &cstr(&dir.path().join("blocks")), &mut buf, &mut kept);
    assert_eq!(n as usize, buf.len());
    assert_eq!(buf[..], whole[..buf.len()]);
    let fd = kept_fd(&kept);
    assert!(fd >= 0 && !nonblocking(fd), "kept open, blocking again: {fd}");
    let mut rest = vec![0u8; whole.len() - buf.len()];
    // SAFETY: reads into `rest` from the descriptor kept for this test.
    let got = unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), buf.len() as i64) };
    assert_eq!(got as usize, rest.len());
    assert_eq!(rest[..], whole[buf.len()..]);
    close_fd(fd);
    assert_eq!(fd_count(), fds);
}

#[test]
fn a_file_not_cached_is_left_to_the_ring_and_a_cached_missing_name_is_enoent() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = blocks_file(&dir, 64);
    let path = cstr(&dir.path().join("blocks"));
    let fds = fd_count();
    let mut buf = vec![0u8; 16 * 1024];
    let mut kept = [0u8; 4];
    // DONTNEED skips pages something else holds for a moment (a busy machine): try again.
    let mut n = 0;
    for _ in 0..100 {
        advise(&file, libc::POSIX_FADV_DONTNEED);
        n = read_file_cached(libc::AT_FDCWD, &path, &mut buf, &mut kept);
        if n == -libc::EAGAIN {
            break;
        }
        if n >= 0 && kept_fd(&kept) >= 0 {
            close_fd(kept_fd(&kept));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(n, -libc::EAGAIN, "the first page not cached: the ring reads it");
    assert_eq!(fd_count(), fds, "nothing left open");

    // A name never looked up has no dentry to say it is missing: the ring's lookup will. Once
    // looked up, the cached negative dentry answers here.
    let missing = cstr(&dir.path().join("missing"));
    assert!(std::fs::metadata(dir.path().join("missing")).is_err());
    assert_eq!(read_file_cached(libc::AT_FDCWD, &missing, &mut buf, &mut kept), -libc::ENOENT);
    assert_eq!(fd_count(), fds);
}

#[test]
fn a_fifo_a_directory_or_a_file_off_local_disks_is_left_to_the_ring_unopened() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let fifo = cstr(&dir.path().join("fifo"));
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // Looked up once, so the dentry cache has it.
    std::fs::metadata(dir.path().join("fifo")).unwrap();
    let fds = fd_count();
    let mut buf = vec![0u8; 16 * 1024];
    let mut kept = [0u8; 4];
    assert_eq!(read_file_cached(libc::AT_FDCWD, &fifo, &mut buf, &mut kept), -libc::EAGAIN);
    // Never opened for reading: a writer that will not wait still finds no reader.
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(dir.path().join("fifo"));
    assert_eq!(writer.map_err(|e| e.raw_os_error()).err(), Some(Some(libc::ENXIO)));
    assert_eq!(read_file_cached(libc::AT_FDCWD, &cstr(dir.path()), &mut buf, &mut kept), -libc::EAGAIN);

    // tmpfs: no RWF_NOWAIT reads there; the ring reads it (FUSE and NFS alike: their open and
    // close may wait on a daemon or a server).
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let on_tmpfs = shm.path().join("f");
    std::fs::write(&on_tmpfs, b"in memory").unwrap();
    std::fs::read(&on_tmpfs).unwrap();
    assert_eq!(read_file_cached(libc::AT_FDCWD, &cstr(&on_tmpfs), &mut buf, &mut kept), -libc::EAGAIN);
    assert_eq!(fd_count(), fds, "nothing left open");
}
