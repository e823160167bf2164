//! Whether a file system whose open waits for a daemon or a server is mounted where this process
//! can see it (FUSE, NFS, SMB, Ceph, 9p, AFS: `REMOTE`), and where: while one is, an open through
//! a ring that may reach it goes to a kernel worker (IOSQE_ASYNC; `State::insert`).
//!
//! io_uring tries an open without blocking first, but that try only keeps the path walk to the
//! dentry cache: the open of the file the walk found then runs as it would for open(2), in the
//! thread that submits it, which on an inline flush is the JavaScript thread. FUSE's sends
//! FUSE_OPEN and waits for the daemon (tests/fuse_files.rs holds one); NFS's asks the server
//! (an NFSv4 OPEN, or the attributes close-to-open consistency revalidates). A slow or hung
//! daemon or server stalled the event loop with it. Which file system a path leads to is known
//! only once it is walked, symlinks and all, so the engine cannot tell such an open apart before
//! the kernel does; it tells whether one is possible. On a machine with no such mount (most
//! servers) opens keep their inline path. With one, a plain open of a path that lies, by name,
//! under none of their mount points (nor those of overlays stacked on them) keeps it too, walked
//! with no symlink followed (`outside_remote`; one it meets sends it to a worker, `reap`): every
//! other open goes to a worker.
//!
//! The mount table is read once as the first ring starts, and again each time it changes: a
//! thread of the process (`remote-mounts`, not a ring's) waits in `poll` on `/proc/self/mountinfo`,
//! which wakes it with POLLPRI on every mount and unmount in the namespace. Until the first read,
//! and for good if the table cannot be read or followed, every open takes the worker path: a
//! slower open is the cost of not knowing, a stalled event loop never is.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

/// The file system types (before any `.subtype`) whose open may wait for a daemon or a server.
/// `fusectl`, FUSE's control file system, is not one.
const REMOTE: [&[u8]; 18] = [
    b"fuse", b"fuseblk", b"virtiofs", b"nfs", b"nfs4", b"cifs", b"smb3", b"ceph", b"9p", b"afs", b"coda", b"orangefs",
    b"lustre", b"gpfs", b"beegfs", b"gfs2", b"ocfs2", b"vboxsf",
];

/// A `REMOTE` file system is mounted, or the mount table could not be read or followed.
static PRESENT: AtomicBool = AtomicBool::new(true);
/// The table is read and followed: `POINTS` is current.
static FOLLOWED: AtomicBool = AtomicBool::new(false);
static WATCH: Once = Once::new();
/// Where the `REMOTE` file systems are mounted, each mount point as its path's components.
static POINTS: Mutex<Vec<Vec<Vec<u8>>>> = Mutex::new(Vec::new());

/// Whether opens through the rings may go to kernel workers: a file system whose open waits for a
/// daemon or a server is mounted (or the engine cannot tell). One load; true until a ring has started.
pub fn present() -> bool {
    PRESENT.load(Ordering::Acquire)
}

/// Whether a plain open of `path` (an absolute one, or relative to the working directory) goes to
/// a kernel worker now: such a file system is mounted and `path` may lead onto it.
pub fn path_present(path: &CStr) -> bool {
    present() && !outside_remote(libc::AT_FDCWD, path)
}

/// Reads the mount table and starts following it, once per process (every ring calls it).
pub(crate) fn watch() {
    WATCH.call_once(|| {
        let Ok(mut table) = File::open("/proc/self/mountinfo") else { return };
        if !rescan(&mut table) {
            return give_up();
        }
        // Before the thread starts: one that fails at once clears it for good.
        FOLLOWED.store(true, Ordering::Relaxed);
        let thread = std::thread::Builder::new().name("remote-mounts".into()).stack_size(64 * 1024);
        if thread.spawn(move || follow(table)).is_err() {
            give_up();
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
            return give_up();
        }
    }
}

/// The table can no longer be followed: for good, no path is vouched for and every open may
/// reach a remote mount.
fn give_up() {
    FOLLOWED.store(false, Ordering::Relaxed);
    PRESENT.store(true, Ordering::Release);
}

/// Reads the whole table from its start and records its `REMOTE` mount points. False if it could
/// not be read.
fn rescan(table: &mut File) -> bool {
    let mut text = Vec::new();
    if table.seek(SeekFrom::Start(0)).is_err() || table.read_to_end(&mut text).is_err() {
        return false;
    }
    let points = remote_mount_points(&text);
    // Set before the flag, and released with it: an open that sees the flag (`present`, an
    // acquire) sees these mount points or newer ones.
    let present = !points.is_empty();
    *POINTS.lock().unwrap_or_else(|poison| poison.into_inner()) = points;
    PRESENT.store(present, Ordering::Release);
    true
}

/// Whether an open of `path` from `dirfd` that follows no symlink stays off every `REMOTE` mount:
/// the table is followed, and the path made absolute (from the working directory for `AT_FDCWD`;
/// any other `dirfd` cannot be vouched for) and its `.` and `..` resolved by name lies under none
/// of their mount points. Without symlinks, the kernel's walk goes exactly where the name says.
pub(crate) fn outside_remote(dirfd: RawFd, path: &CStr) -> bool {
    if !FOLLOWED.load(Ordering::Relaxed) {
        return false;
    }
    let path = path.to_bytes();
    let mut from = Vec::new();
    if !path.starts_with(b"/") {
        if dirfd != libc::AT_FDCWD {
            return false;
        }
        match std::env::current_dir() {
            Ok(cwd) => from = cwd.into_os_string().into_vec(),
            Err(_) => return false,
        }
    }
    let mut walked: Vec<&[u8]> = Vec::new();
    components(&from, &mut walked);
    components(path, &mut walked);
    !under_any(&POINTS.lock().unwrap_or_else(|poison| poison.into_inner()), &walked)
}

/// Appends `path`'s components to `walked`, `.` and `..` resolved by name (`..` of the root is the root).
fn components<'a>(path: &'a [u8], walked: &mut Vec<&'a [u8]>) {
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                walked.pop();
            }
            name => walked.push(name),
        }
    }
}

/// The mount points of the `REMOTE` file systems in `mountinfo` text, as components, and of the
/// overlays stacked on them. A line names one when the type after the optional fields' " - ", its
/// subtype aside (`fuse.sshfs`), is in `REMOTE`. The mount point is the fifth field, with space,
/// tab, newline and backslash escaped in octal (`\040`).
///
/// An overlay's open opens the file of its upper or lower layer, through that layer's file
/// system: one with a layer under a remote mount point (or one given as a relative path, which
/// cannot be placed) counts as remote, and so, in turn, does one stacked on it.
fn remote_mount_points(mountinfo: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut points = Vec::new();
    let mut overlays = Vec::new();
    for line in mountinfo.split(|&b| b == b'\n') {
        let Some(at) = line.windows(3).position(|w| w == b" - ") else { continue };
        let mut described = line[at + 3..].split(|&b| b == b' ');
        let Some(kind) = described.next() else { continue };
        let options = described.nth(1).unwrap_or_default();
        let Some(point) = line.split(|&b| b == b' ').nth(4) else { continue };
        let point = owned_components(&unescape(point));
        if REMOTE.contains(&kind.split(|&b| b == b'.').next().unwrap_or(kind)) {
            points.push(point);
        } else if kind == b"overlay" {
            overlays.push((point, overlay_layers(options)));
        }
    }
    loop {
        let (stacked, rest): (Vec<_>, Vec<_>) = overlays.into_iter().partition(|(_, layers)| {
            layers.iter().any(|layer| layer.as_ref().is_none_or(|layer| under_any(&points, layer)))
        });
        if stacked.is_empty() || points.is_empty() {
            return points;
        }
        points.extend(stacked.into_iter().map(|(point, _)| point));
        overlays = rest;
    }
}

/// The upper and lower layers named in an overlay's mount options (`lowerdir=a:b::c`,
/// `lowerdir+=`, `datadir+=`, `upperdir=`), each as components, `None` for a relative path. A
/// layer is shown as given, octal-escaped, with the giver's own backslash escapes (`\:`, `\,`)
/// where the option takes them. A kernel that shows a layer's `:` escaped (`\072`) has it
/// split there: the relative part cannot be placed, so the overlay counts as remote whenever
/// any remote mount exists, the safe side.
fn overlay_layers(options: &[u8]) -> Vec<Option<Vec<Vec<u8>>>> {
    let mut layers = Vec::new();
    for option in options.split(|&b| b == b',') {
        let option = unescape(option);
        let Some(eq) = option.iter().position(|&b| b == b'=') else { continue };
        let (key, value) = (&option[..eq], &option[eq + 1..]);
        let joined = key == b"lowerdir";
        // `lowerdir+` and `datadir+` take one path each, as given, with no escapes.
        let escaped = joined || key == b"upperdir";
        if !(escaped || key == b"lowerdir+" || key == b"datadir+") {
            continue;
        }
        // The giver's separators (`:`, `::` before data-only layers) and backslash escapes.
        let (mut parts, mut part) = (Vec::new(), Vec::new());
        let mut bytes = value.iter();
        while let Some(&byte) = bytes.next() {
            match byte {
                b'\\' if escaped => part.extend(bytes.next()),
                b':' if joined => parts.push(std::mem::take(&mut part)),
                byte => part.push(byte),
            }
        }
        parts.push(part);
        let named = parts.into_iter().filter(|part| !part.is_empty());
        layers.extend(named.map(|part| part.starts_with(b"/").then(|| owned_components(&part))));
    }
    layers
}

/// `path`'s components, owned (see `components`).
fn owned_components(path: &[u8]) -> Vec<Vec<u8>> {
    let mut walked = Vec::new();
    components(path, &mut walked);
    walked.into_iter().map(<[u8]>::to_vec).collect()
}

/// Whether the path `walked` lies under (or is) one of `points`.
fn under_any<T: AsRef<[u8]>>(points: &[Vec<Vec<u8>>], walked: &[T]) -> bool {
    points.iter().any(|point| point.len() <= walked.len() && point.iter().zip(walked).all(|(a, b)| a == b.as_ref()))
}

/// A `mountinfo` field with its octal escapes (`\ooo`) decoded.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).filter(|digits| field[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                out.push(digits.iter().fold(0u8, |n, d| n.wrapping_mul(8).wrapping_add(d - b'0')));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{components, remote_mount_points};

    fn parts(path: &str) -> Vec<Vec<u8>> {
        let mut walked = Vec::new();
        components(path.as_bytes(), &mut walked);
        walked.into_iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn finds_remote_mount_points_by_the_type_after_the_separator() {
        let plain = b"23 1 0:21 / /proc rw - proc proc rw\n43 23 0:40 / /sys/fs/fuse/connections rw - fusectl fusectl rw\n";
        assert!(remote_mount_points(plain).is_empty(), "fusectl is the control file system");
        let table = b"90 23 0:50 / /mnt/a rw shared:5 - fuse.sshfs host:/ rw,user_id=0\n\
91 23 0:51 / /mnt/b\\040c rw - fuse uring-stuck rw\n\
92 23 8:1 / /mnt/d rw - fuseblk /dev/sdb1 rw\n\
93 23 0:52 / /mnt/fuse rw - ext4 fuse.img rw\n\
94 23 0:53 / /mnt/fuse.x rw - tmpfs fuse rw\n\
95 23 0:54 / /net/home rw - nfs4 server:/home rw\n\
96 23 0:55 / /mnt/nfsd rw - nfsd nfsd rw\n";
        // A mount point or source named like one is not its type; escapes are decoded.
        let expected = [parts("/mnt/a"), parts("/mnt/b c"), parts("/mnt/d"), parts("/net/home")];
        assert_eq!(remote_mount_points(table), expected);
    }

    #[test]
    fn counts_overlays_stacked_on_remote_mounts_as_remote() {
        let fuse = b"90 23 0:50 / /mnt/fuse rw - fuse.sshfs host:/ rw\n91 23 0:51 / /mnt/x\\134y rw - fuse f rw\n";
        let overlays: &[u8] = b"100 23 0:60 / /srv/a rw - overlay overlay rw,lowerdir=/var/l1:/mnt/fuse/layer,upperdir=/var/u,workdir=/var/w\n\
101 23 0:61 / /srv/b rw - overlay overlay ro,lowerdir=/var/l\\134:x::/var/d\n\
102 23 0:62 / /srv/c rw - overlay overlay rw,lowerdir+=/srv/a,upperdir=/var/u2,workdir=/var/w2\n\
103 23 0:63 / /srv/d rw - overlay overlay ro,lowerdir=/var/x\\134\\054y:/mnt/fuse\n\
104 23 0:64 / /srv/e rw - overlay overlay ro,lowerdir=layers/l1\n\
105 23 0:65 / /srv/f rw - overlay overlay ro,lowerdir=/var/l2,datadir+=/mnt/fuse/data\n\
107 23 0:67 / /srv/h rw - overlay overlay ro,lowerdir+=/mnt/x\\134y/l,lowerdir+=/var/l4\n\
106 23 0:66 / /srv/g rw - overlay overlay ro,lowerdir=/var/l3,upperdir=/mnt/fuse/up\n";
        // With no remote mount, no overlay counts, a relative layer's neither.
        assert!(remote_mount_points(overlays).is_empty());
        // A layer on FUSE, one stacked on that overlay, escaped separators, a relative layer
        // (which cannot be placed), a data-only and an upper layer on FUSE, and a `lowerdir+`
        // whose backslash is its path's own; `/srv/b`'s layers are `/var/l:x` and `/var/d`.
        let table = [overlays, fuse].concat();
        let expected = ["/mnt/fuse", "/mnt/x\\y", "/srv/a", "/srv/d", "/srv/e", "/srv/f", "/srv/h", "/srv/g", "/srv/c"].map(parts);
        assert_eq!(remote_mount_points(&table), expected);
    }

    #[test]
    fn resolves_dot_and_dot_dot_by_name() {
        assert_eq!(parts("/a/./b//c/../d/"), parts("/a/b/d"));
        assert_eq!(parts("/../../a"), parts("/a"));
        assert!(parts("/").is_empty());
    }
}
