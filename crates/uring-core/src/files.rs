//! The registered-file table: which slots of the kernel's sparse table are in use, the raw fd
//! behind each (statx and the `*at` calls have no fixed-file form), what kind of file each holds,
//! how many ops in flight name each slot, and a free-list so that released slots are reused.

use std::mem::MaybeUninit;
use std::os::fd::RawFd;

use crate::cached;
use crate::error::EngineError;
use crate::op::Target;

const FREE: RawFd = -1;
/// An unregister is in flight: the slot is not usable and not yet reusable.
const RELEASING: RawFd = -2;
/// Unregistered in the kernel, but ops in flight still name the slot (the rest of a short
/// transfer is submitted again by slot): reusable once the last of them completes.
const DRAINING: RawFd = -3;

/// What the engine knows of the file in a slot, asked once as the slot is reserved. The slot
/// holds that file until it is released, while the number it was registered by may be closed
/// by its owner and name another file, or none, long before.
#[derive(Clone, Copy)]
struct SlotFile {
    /// On FUSE (`handed::on_fuse`): its reads and writes are copied off the ring, through `own`.
    fuse: bool,
    /// A regular file or a block device (`reap::completes_in_parts`).
    in_parts: bool,
    /// The engine's own duplicate of a FUSE file's fd, or -1: the off-ring threads copy by
    /// number, and only a number the engine holds is sure to name the slot's file.
    own: RawFd,
}

const NO_FILE: SlotFile = SlotFile { fuse: false, in_parts: false, own: -1 };

pub(crate) struct FileTable {
    raw: Vec<RawFd>,
    files: Vec<SlotFile>,
    /// Ops in the slab that target each slot.
    users: Vec<u32>,
    free: Vec<u32>,
}

impl FileTable {
    pub(crate) fn new(capacity: u32) -> Self {
        FileTable {
            raw: vec![FREE; capacity as usize],
            files: vec![NO_FILE; capacity as usize],
            users: vec![0; capacity as usize],
            free: (0..capacity).rev().collect(),
        }
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.raw.len() as u32
    }

    /// Takes a free slot for `fd`, lowest index first, and asks what kind of file it is while the
    /// caller's number surely names it (an fd the caller opened itself is registered by number
    /// too, and the engine knows no other way). Keeps a duplicate of a FUSE file's fd; refused
    /// (`TableFull`) when no slot or no fd for that duplicate is left.
    pub(crate) fn reserve(&mut self, fd: RawFd) -> Result<u32, EngineError> {
        // A slot first: closing a duplicate made for nothing would flush a FUSE file under the
        // state lock, and wait for its daemon there.
        let Some(&slot) = self.free.last() else { return Err(EngineError::TableFull) };
        let fuse = cached::on_fuse(fd);
        let own = if fuse { duplicate(fd).ok_or(EngineError::TableFull)? } else { -1 };
        self.free.pop();
        self.raw[slot as usize] = fd;
        self.files[slot as usize] = SlotFile { fuse, in_parts: regular_or_block(fd), own };
        Ok(slot)
    }

    /// Whether the file registered in `slot` is on FUSE.
    pub(crate) fn on_fuse(&self, slot: u32) -> bool {
        self.raw_fd(slot).is_some() && self.files.get(slot as usize).is_some_and(|file| file.fuse)
    }

    /// Whether `target` is open on a regular file or a block device (`reap::completes_in_parts`):
    /// an fd is asked now (its owner keeps it open while an op names it), a slot answers what was
    /// asked as it was reserved, until it is free again.
    pub(crate) fn in_parts(&self, target: Target) -> bool {
        match target {
            Target::Fd(fd) => regular_or_block(fd),
            // A free slot's entry is `NO_FILE` (`free_slot`).
            Target::Fixed(slot) => self.files.get(slot as usize).is_some_and(|file| file.in_parts),
        }
    }

    /// The number an off-ring thread copies `target` by: the fd itself, or the engine's own
    /// duplicate of the FUSE file in a slot (`None` for any other slot, whose copies stay on the
    /// ring), never the number the slot was registered by.
    pub(crate) fn copy_fd(&self, target: Target) -> Option<RawFd> {
        match target {
            Target::Fd(fd) => Some(fd),
            Target::Fixed(slot) => Some(self.files.get(slot as usize)?.own).filter(|fd| *fd >= 0),
        }
    }

    /// The raw fd of a registered slot.
    pub(crate) fn raw_fd(&self, slot: u32) -> Option<RawFd> {
        self.raw.get(slot as usize).copied().filter(|fd| *fd >= 0)
    }

    /// An op naming `slot` entered the slab.
    pub(crate) fn add_user(&mut self, slot: u32) {
        if let Some(users) = self.users.get_mut(slot as usize) {
            *users += 1;
        }
    }

    /// An op naming `slot` left the slab; the last one out frees a slot already unregistered.
    /// Returns the engine's own fd for the slot's file, to close outside the state lock.
    #[must_use]
    pub(crate) fn remove_user(&mut self, slot: u32) -> Option<RawFd> {
        let users = self.users.get_mut(slot as usize)?;
        *users = users.saturating_sub(1);
        if *users == 0 && self.raw[slot as usize] == DRAINING {
            return self.free_slot(slot);
        }
        None
    }

    /// Marks a registered slot as being released; false if it is not registered.
    pub(crate) fn begin_release(&mut self, slot: u32) -> bool {
        match self.raw.get_mut(slot as usize) {
            Some(fd) if *fd >= 0 => {
                *fd = RELEASING;
                true
            }
            _ => false,
        }
    }

    /// The kernel no longer holds a file in `slot`: it is reused once no op in flight names it,
    /// so the rest of a transfer submitted again by slot never reaches another file. Returns the
    /// engine's own fd for the slot's file once nothing names it, to close outside the state lock
    /// (a FUSE file's close waits for its daemon).
    #[must_use]
    pub(crate) fn release(&mut self, slot: u32) -> Option<RawFd> {
        let fd = self.raw.get_mut(slot as usize)?;
        if *fd == FREE || *fd == DRAINING {
            return None;
        }
        if self.users[slot as usize] > 0 {
            *fd = DRAINING;
            None
        } else {
            self.free_slot(slot)
        }
    }

    fn free_slot(&mut self, slot: u32) -> Option<RawFd> {
        self.raw[slot as usize] = FREE;
        self.free.push(slot);
        let own = std::mem::replace(&mut self.files[slot as usize], NO_FILE).own;
        (own >= 0).then_some(own)
    }

    pub(crate) fn in_use(&self) -> usize {
        self.raw.len() - self.free.len()
    }
}

impl Drop for FileTable {
    /// The ring is gone, and the kernel's table with it: so are the slots' files.
    fn drop(&mut self) {
        for file in &self.files {
            close(file.own);
        }
    }
}

/// Whether `fd` is open on a regular file or a block device: false when statx cannot tell. With
/// `AT_STATX_DONT_SYNC`, so a network file system answers from what it has cached.
pub(crate) fn regular_or_block(fd: RawFd) -> bool {
    let mut stx = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd` itself; `stx` is a
    // writable `struct statx` that outlives the call.
    let done = unsafe {
        libc::statx(fd, c"".as_ptr(), libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC, libc::STATX_TYPE, stx.as_mut_ptr())
    };
    if done != 0 {
        return false;
    }
    // SAFETY: statx succeeded and filled the struct (zeroed before, so every field is initialised).
    let kind = u32::from(unsafe { stx.assume_init() }.stx_mode) & libc::S_IFMT;
    kind == libc::S_IFREG || kind == libc::S_IFBLK
}

/// A close-on-exec duplicate of `fd`, or `None` (out of fds, or `fd` not open).
fn duplicate(fd: RawFd) -> Option<RawFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int and touches no memory; a bad fd fails with EBADF.
    let own = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    (own >= 0).then_some(own)
}

fn close(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: `fd` is a duplicate this table made and nobody else holds; closed once, as its
        // slot is freed or the table dropped.
        unsafe { libc::close(fd) };
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn slots_are_reused_after_release_and_never_double_freed() {
        let mut table = FileTable::new(2);
        let a = table.reserve(10).expect("slot");
        let b = table.reserve(11).expect("slot");
        assert!(matches!(table.reserve(12), Err(EngineError::TableFull)));
        assert!(table.begin_release(a));
        assert!(!table.begin_release(a));
        assert_eq!(table.raw_fd(a), None);
        assert_eq!(table.release(a), None);
        assert_eq!(table.release(a), None);
        assert_eq!(table.in_use(), 1);
        assert_eq!(table.reserve(13).ok(), Some(a));
        assert_eq!(table.raw_fd(b), Some(11));
        assert!(table.reserve(14).is_err());
    }

    #[test]
    fn a_released_slot_waits_for_the_ops_that_still_name_it() {
        let mut table = FileTable::new(1);
        let slot = table.reserve(10).expect("slot");
        table.add_user(slot);
        assert!(table.begin_release(slot));
        assert_eq!(table.release(slot), None);
        assert!(table.reserve(11).is_err(), "an op in flight still names the slot");
        assert_eq!(table.raw_fd(slot), None);
        assert_eq!(table.remove_user(slot), None);
        assert_eq!(table.reserve(11).ok(), Some(slot));
        assert_eq!(table.remove_user(slot), None);
        assert_eq!(table.in_use(), 1);
    }

    #[test]
    fn only_regular_files_complete_in_parts() {
        let file = tempfile::tempfile().expect("a temporary file");
        assert!(regular_or_block(file.as_raw_fd()));
        let (reader, writer) = std::io::pipe().expect("a pipe");
        assert!(!regular_or_block(reader.as_raw_fd()));
        assert!(!regular_or_block(writer.as_raw_fd()));
        let (socket, _) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        assert!(!regular_or_block(socket.as_raw_fd()));
        let null = std::fs::File::open("/dev/null").expect("/dev/null");
        assert!(!regular_or_block(null.as_raw_fd()));
        // Closed: statx cannot tell, and a count is never taken away on a guess.
        let closed = file.as_raw_fd();
        drop(file);
        assert!(!regular_or_block(closed));
    }
}
