//! Groups: ops submitted together that complete as one. Each member still is an op of its own in
//! the kernel and the slab (cancelled, budgeted and reaped as usual), but its result goes into a
//! slot of memory the caller lent, and the caller hears once, after the last member: a batch of
//! 64 reads costs one completion to deliver and dispatch instead of 64.

use crate::ring::Completion;
use crate::slab::{OpKey, Slab};

/// Where a group's members' results go: one `i32` per member (its count, fd, 0 or `-errno`),
/// memory the caller lends like a read buffer.
#[derive(Debug)]
pub struct Results {
    ptr: *mut i32,
    len: usize,
}

// SAFETY: the engine writes through the pointer only under the state lock, one member's slot at
// a time; the caller's contract keeps the memory valid across threads until the completion.
unsafe impl Send for Results {}

impl Results {
    /// # Safety
    /// `ptr..ptr+len` must stay valid and unmoved, and not be read or written by anyone else,
    /// until the group's completion has been delivered.
    pub unsafe fn borrowed(ptr: *mut i32, len: usize) -> Results {
        Results { ptr, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

struct Group {
    user: u64,
    results: Results,
    remaining: usize,
}

/// A member's place: its group, and its index there (the slot its result goes to).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    group: OpKey,
    index: usize,
}

/// The groups with members still in flight.
pub(crate) struct Groups {
    slab: Slab<Group>,
}

impl Groups {
    pub(crate) fn new() -> Self {
        Groups { slab: Slab::new() }
    }

    /// A group of `results.len()` members (at least one), whose completion goes to `user`;
    /// returns each member's place in order.
    pub(crate) fn insert(&mut self, user: u64, results: Results) -> impl Iterator<Item = Member> {
        let count = results.len();
        let group = self.slab.insert(Group { user, results, remaining: count });
        (0..count).map(move |index| Member { group, index })
    }

    /// Records a member's result. Returns the group's completion, whose result is its member
    /// count, once this was the last member to finish.
    pub(crate) fn record(&mut self, member: Member, result: i32) -> Option<Completion> {
        let group = self.slab.get_mut(member.group)?;
        if member.index < group.results.len {
            // SAFETY: in bounds (checked), and the memory is lent until the group's completion,
            // which has not been delivered: this member had not finished, so the group is alive.
            unsafe { group.results.ptr.add(member.index).write(result) };
        }
        group.remaining -= 1;
        if group.remaining > 0 {
            return None;
        }
        let group = self.slab.remove(member.group)?;
        Some(Completion { user: group.user, result: i32::try_from(group.results.len).unwrap_or(i32::MAX), output: None })
    }
}
