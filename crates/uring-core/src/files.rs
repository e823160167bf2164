//! The registered-file table: which slots of the kernel's sparse table are in use, the raw fd
//! behind each (statx and the `*at` calls have no fixed-file form), and a free-list so that
//! released slots are reused.

use std::os::fd::RawFd;

const FREE: RawFd = -1;
/// An unregister is in flight: the slot is not usable and not yet reusable.
const RELEASING: RawFd = -2;

pub(crate) struct FileTable {
    raw: Vec<RawFd>,
    free: Vec<u32>,
}

impl FileTable {
    pub(crate) fn new(capacity: u32) -> Self {
        FileTable { raw: vec![FREE; capacity as usize], free: (0..capacity).rev().collect() }
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.raw.len() as u32
    }

    /// Takes a free slot for `fd`, lowest index first.
    pub(crate) fn reserve(&mut self, fd: RawFd) -> Option<u32> {
        let slot = self.free.pop()?;
        self.raw[slot as usize] = fd;
        Some(slot)
    }

    /// The raw fd of a registered slot.
    pub(crate) fn raw_fd(&self, slot: u32) -> Option<RawFd> {
        self.raw.get(slot as usize).copied().filter(|fd| *fd >= 0)
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

    /// Returns a slot to the free-list once the kernel no longer holds a file in it.
    pub(crate) fn release(&mut self, slot: u32) {
        if let Some(fd) = self.raw.get_mut(slot as usize) {
            if *fd != FREE {
                *fd = FREE;
                self.free.push(slot);
            }
        }
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
}
