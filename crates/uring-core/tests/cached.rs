//! `read_cached`: a read on the caller's thread of what the page cache holds, which never waits
//! for a device.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use uring_core::read_cached;

/// A synced file of `blocks` 4 KiB blocks, block `i` filled with the byte `i` (mod 256).
fn blocks_file(dir: &tempfile::TempDir, blocks: usize) -> std::fs::File {
    let path = dir.path().join("blocks");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..blocks {
        file.write_all(&[i as u8; 4096]).unwrap();
    }
    file.sync_all().unwrap();
    std::fs::File::open(&path).unwrap()
}

fn advise(file: &std::fs::File, advice: i32) {
    // SAFETY: a plain syscall on an open descriptor.
    assert_eq!(unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, advice) }, 0);
}

#[test]
fn cached_data_is_copied_and_end_of_file_is_zero() {
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
fn a_range_not_in_the_page_cache_is_eagain_and_a_partly_cached_one_is_short() {
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
fn pipes_directories_and_bad_fds_are_refused_with_their_errno() {
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
