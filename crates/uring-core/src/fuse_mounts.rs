//! Whether any FUSE file system is mounted where this process can see it: while one is, every
//! open through a ring goes to a kernel worker (IOSQE_ASYNC; `State::insert`).
//!
//! io_uring tries an open without blocking first, but that try only keeps the path walk to the
//! dentry cache: FUSE's open of a file the walk found sends FUSE_OPEN and waits for the daemon,
//! in the thread that submits it, which on an inline flush is the JavaScript thread (a slow or
//! hung daemon, such as a network file system that lost its server, stalls the event loop with
//! it). Which file system a path leads to is known only once it is walked, symlinks and all, so
//! the engine cannot tell a FUSE open apart before the kernel does; it tells whether one is
//! possible. On a machine with no FUSE mount (most servers) opens keep their inline path.
//!
//! The mount table is read once as the first ring starts, and again each time it changes: a
//! thread of the process (`fuse-mounts`, not a ring's) waits in `poll` on `/proc/self/mountinfo`,
//! which wakes it with POLLPRI on every mount and unmount in the namespace. Until the first read,
//! and for good if the table cannot be read or followed, opens take the worker path: a slower open
//! is the cost of not knowing, a stalled event loop never is.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// A FUSE file system is mounted, or the mount table could not be read or followed.
static PRESENT: AtomicBool = AtomicBool::new(true);
static WATCH: Once = Once::new();

/// Whether opens through the rings go to kernel workers: a FUSE file system is mounted (or the
/// engine cannot tell), so an open may wait for a daemon. One load; true until a ring has started.
pub fn present() -> bool {
    PRESENT.load(Ordering::Relaxed)
}

/// Reads the mount table and starts following it, once per process (every ring calls it).
pub(crate) fn watch() {
    WATCH.call_once(|| {
        let Ok(mut table) = File::open("/proc/self/mountinfo") else { return };
        let followed = rescan(&mut table)
            && std::thread::Builder::new()
                .name("fuse-mounts".into())
                .stack_size(64 * 1024)
                .spawn(move || follow(table))
                .is_ok();
        if !followed {
            PRESENT.store(true, Ordering::Relaxed);
        }
    });
}

/// Waits for each change of the table and reads it again, for the life of the process.
fn follow(mut table: File) {
    loop {
        let mut changed = libc::pollfd { fd: table.as_raw_fd(), events: libc::POLLPRI, revents: 0 };
        // SAFETY: one pollfd that outlives the call.
        let ready = unsafe { libc::poll(&mut changed, 1, -1) };
        if ready < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // The mount files report a change as POLLERR | POLLPRI, once per change.
        if ready < 0 || changed.revents & (libc::POLLERR | libc::POLLPRI) == 0 || !rescan(&mut table) {
            PRESENT.store(true, Ordering::Relaxed);
            return;
        }
    }
}

/// Reads the whole table from its start and records whether a FUSE mount is in it. False if it
/// could not be read.
fn rescan(table: &mut File) -> bool {
    let mut text = Vec::new();
    if table.seek(SeekFrom::Start(0)).is_err() || table.read_to_end(&mut text).is_err() {
        return false;
    }
    PRESENT.store(has_fuse(&text), Ordering::Relaxed);
    true
}

/// Whether a line of `mountinfo` text names a FUSE file system: after the optional fields'
/// " - " comes the type, `fuse`, `fuseblk`, or either with a subtype (`fuse.sshfs`). `fusectl`,
/// the control file system, is not one.
fn has_fuse(mountinfo: &[u8]) -> bool {
    mountinfo.split(|&b| b == b'\n').any(|line| {
        let Some(at) = line.windows(3).position(|w| w == b" - ") else { return false };
        let kind = line[at + 3..].split(|&b| b == b' ').next().unwrap_or_default();
        let base = kind.split(|&b| b == b'.').next().unwrap_or_default();
        base == b"fuse" || base == b"fuseblk"
    })
}

#[cfg(test)]
mod tests {
    use super::has_fuse;

    #[test]
    fn tells_fuse_mounts_by_their_type_after_the_separator() {
        let plain = b"23 1 0:21 / /proc rw - proc proc rw\n43 23 0:40 / /sys/fs/fuse/connections rw - fusectl fusectl rw\n";
        assert!(!has_fuse(plain), "fusectl is the control file system");
        assert!(has_fuse(b"90 23 0:50 / /mnt/a rw shared:5 - fuse.sshfs host:/ rw,user_id=0\n"));
        assert!(has_fuse(b"90 23 0:50 / /mnt/b rw - fuse uring-stuck rw\n"));
        assert!(has_fuse(b"90 23 8:1 / /mnt/c rw - fuseblk /dev/sdb1 rw\n"));
        // A mount point or source named like one is not its type.
        assert!(!has_fuse(b"90 23 0:51 / /mnt/fuse rw - ext4 fuse.img rw\n"));
        assert!(!has_fuse(b"90 23 0:52 / /mnt/fuse.x rw - tmpfs fuse rw\n"));
    }
}
