//! The registered-file table: which slots of the kernel's sparse table are in use, the raw fd
//! behind each (statx and the `*at` calls have no fixed-file form), how many ops in flight name
//! each slot, and a free-list so that released slots are reused.

use std::os::fd::RawFd;

use crate::cached;
use crate::op::Target;

const FREE: RawFd = -1;
/// An unregister is in flight: the slot is not usable and not yet reusable.
const RELEASING: RawFd = -2;
/// Unregistered in the kernel, but ops in flight still name the slot (the rest of a short
/// transfer is submitted again by slot): reusable once the last of them completes.
const DRAINING: RawFd = -3;

pub(crate) struct FileTable {
    raw: Vec<RawFd>,
    /// The file in each slot is on FUSE (`handed::on_fuse`), asked as the slot is reserved.
    fuse: Vec<bool>,
    /// Ops in the slab that target each slot.
    users: Vec<u32>,
    free: Vec<u32>,
}

impl FileTable {
    pub(crate) fn new(capacity: u32) -> Self {
        FileTable {
            raw: vec![FREE; capacity as usize],
            fuse: vec![false; capacity as usize],
            users: vec![0; capacity as usize],
            free: (0..capacity).rev().collect(),
        }
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.raw.len() as u32
    }

    /// Takes a free slot for `fd`, lowest index first, noting whether its file is on FUSE: an fd
    /// the caller opened itself is registered by number too, and the engine knows no other way.
    pub(crate) fn reserve(&mut self, fd: RawFd) -> Option<u32> {
        let slot = self.free.pop()?;
        self.raw[slot as usize] = fd;
        self.fuse[slot as usize] = cached::on_fuse(fd);
        Some(slot)
    }

    /// Whether the file registered in `slot` is on FUSE.
    pub(crate) fn on_fuse(&self, slot: u32) -> bool {
        self.raw_fd(slot).is_some() && self.fuse.get(slot as usize).copied().unwrap_or(false)
    }

    /// The raw fd an op on `target` names: the fd itself, or the one registered in the slot.
    pub(crate) fn fd_of(&self, target: Target) -> Option<RawFd> {
        match target {
            Target::Fd(fd) => Some(fd),
            Target::Fixed(slot) => self.raw_fd(slot),
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
    pub(crate) fn remove_user(&mut self, slot: u32) {
        let Some(users) = self.users.get_mut(slot as usize) else { return };
        *users = users.saturating_sub(1);
        if *users == 0 && self.raw[slot as usize] == DRAINING {
            self.free_slot(slot);
        }
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
    /// so the rest of a transfer submitted again by slot never reaches another file.
    pub(crate) fn release(&mut self, slot: u32) {
        let Some(fd) = self.raw.get_mut(slot as usize) else { return };
        if *fd == FREE || *fd == DRAINING {
            return;
        }
        if self.users[slot as usize] > 0 {
            *fd = DRAINING;
        } else {
            self.free_slot(slot);
        }
    }

    fn free_slot(&mut self, slot: u32) {
        self.raw[slot as usize] = FREE;
        self.free.push(slot);
    }

    pub(crate) fn in_use(&self) -> usize {
        self.raw.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_after_release_and_never_double_freed() {
        let mut table = FileTable::new(2);
        let a = table.reserve(10).expect("slot");
        let b = table.reserve(11).expect("slot");
        assert_eq!(table.reserve(12), None);
        assert!(table.begin_release(a));
        assert!(!table.begin_release(a));
        assert_eq!(table.raw_fd(a), None);
        table.release(a);
        table.release(a);
        assert_eq!(table.in_use(), 1);
        assert_eq!(table.reserve(13), Some(a));
        assert_eq!(table.raw_fd(b), Some(11));
        assert_eq!(table.reserve(14), None);
    }

    #[test]
    fn a_released_slot_waits_for_the_ops_that_still_name_it() {
        let mut table = FileTable::new(1);
        let slot = table.reserve(10).expect("slot");
        table.add_user(slot);
        assert!(table.begin_release(slot));
        table.release(slot);
        assert_eq!(table.reserve(11), None, "an op in flight still names the slot");
        assert_eq!(table.raw_fd(slot), None);
        table.remove_user(slot);
        assert_eq!(table.reserve(11), Some(slot));
        table.remove_user(slot);
        assert_eq!(table.in_use(), 1);
    }
}
