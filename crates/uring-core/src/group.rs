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
    /// Each member's slab key while it is unfinished, 0 once finished (no key is 0): a finished
    /// member's key is never cancelled, whatever op its slot holds by then.
    keys: Vec<OpKey>,
    /// The result slot of each member, in order; empty when member `i` writes slot `i`.
    slots: Vec<u32>,
}

/// Identifies a group while any of its members is unfinished; cancels it.
pub type GroupKey = u64;

/// A member's place: its group, and its index there (the slot its result goes to).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    group: GroupKey,
    index: usize,
}

impl Member {
    /// Member `index` of `group`: its result goes to slot `index`.
    pub(crate) fn new(group: GroupKey, index: usize) -> Member {
        Member { group, index }
    }
}

/// Finished groups' lists kept for reuse, up to this many (one per group in flight at once),
/// each only if it holds no more than `SPARE_KEYS_MAX` entries: a rare huge group keeps no memory.
const SPARE_KEY_LISTS: usize = 16;
const SPARE_KEYS_MAX: usize = 1024;

/// A group's member lists, kept together for reuse.
type Lists = (Vec<OpKey>, Vec<u32>);

/// The groups with members still in flight.
pub(crate) struct Groups {
    slab: Slab<Group>,
    /// Emptied lists of finished groups: a group of the usual size allocates none.
    spare: Vec<Lists>,
}

impl Groups {
    pub(crate) fn new() -> Self {
        Groups { slab: Slab::new(), spare: Vec::new() }
    }

    /// A group whose completion goes to `user`: of `results.len()` members (at least one), member
    /// `i` writing slot `i`, or with `slots`, of one member per slot named there, in order (the
    /// caller checked each is inside `results`). Each member then joins it with `join`, in order.
    pub(crate) fn insert(&mut self, user: u64, results: Results, slots: Option<&[u32]>) -> GroupKey {
        let count = slots.map_or(results.len(), <[u32]>::len);
        let (mut keys, mut own_slots) = self.spare.pop().unwrap_or_default();
        keys.reserve(count);
        own_slots.extend_from_slice(slots.unwrap_or_default());
        self.slab.insert(Group { user, results, remaining: count, keys, slots: own_slots })
    }

    /// Records the slab key of `group`'s next member, so that cancelling the group reaches it.
    pub(crate) fn join(&mut self, group: GroupKey, key: OpKey) {
        if let Some(group) = self.slab.get_mut(group) {
            group.keys.push(key);
        }
    }

    /// The keys of `group`'s unfinished members (none for a stale key).
    pub(crate) fn unfinished(&self, group: GroupKey) -> impl Iterator<Item = OpKey> + '_ {
        self.slab.get(group).into_iter().flat_map(|g| g.keys.iter().copied().filter(|&key| key != 0))
    }

    /// Records a member's result. Returns the group's completion, whose result is its member
    /// count, once this was the last member to finish.
    pub(crate) fn record(&mut self, member: Member, result: i32) -> Option<Completion> {
        let group = self.slab.get_mut(member.group)?;
        if let Some(key) = group.keys.get_mut(member.index) {
            *key = 0;
        }
        let slot = group.slots.get(member.index).map_or(member.index, |&slot| slot as usize);
        if slot < group.results.len {
            // SAFETY: in bounds (checked), and the memory is lent until the group's completion,
            // which has not been delivered: this member had not finished, so the group is alive.
            unsafe { group.results.ptr.add(slot).write(result) };
        }
        group.remaining -= 1;
        if group.remaining > 0 {
            return None;
        }
        let mut group = self.slab.remove(member.group)?;
        let members = group.keys.len();
        if self.spare.len() < SPARE_KEY_LISTS && group.keys.capacity().max(group.slots.capacity()) <= SPARE_KEYS_MAX {
            group.keys.clear();
            group.slots.clear();
            self.spare.push((group.keys, group.slots));
        }
        Some(Completion { user: group.user, result: i32::try_from(members).unwrap_or(i32::MAX), output: None })
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_member_is_no_longer_cancelled_and_the_last_ends_the_group() {
        let mut results = [i32::MIN; 3];
        let mut groups = Groups::new();
        // SAFETY: `results` outlives `groups`, and is read only after the group's completion.
        let group = groups.insert(9, unsafe { Results::borrowed(results.as_mut_ptr(), 3) }, None);
        let members: Vec<Member> = [11, 12, 13]
            .iter()
            .enumerate()
            .map(|(index, &key)| {
                groups.join(group, key);
                Member::new(group, index)
            })
            .collect();
        assert!(groups.record(members[1], 5).is_none());
        assert_eq!(groups.unfinished(group).collect::<Vec<_>>(), [11, 13]);
        assert!(groups.record(members[0], -4).is_none());
        let done = groups.record(members[2], 7).expect("the last member ends the group");
        assert_eq!((done.user, done.result), (9, 3));
        assert_eq!(groups.len(), 0);
        assert_eq!(groups.unfinished(group).count(), 0, "a stale group key names nothing");
        assert_eq!(results, [-4, 5, 7]);
        // The next group takes the finished one's key list instead of allocating one.
        assert_eq!(groups.spare.len(), 1);
        // SAFETY: as above.
        let next = groups.insert(10, unsafe { Results::borrowed(results.as_mut_ptr(), 3) }, None);
        assert!(groups.spare.is_empty());
        assert!(groups.slab.get(next).is_some_and(|g| g.keys.is_empty() && g.keys.capacity() >= 3));
    }

    #[test]
    fn members_with_slots_write_only_their_slots() {
        let mut results = [7; 5];
        let mut groups = Groups::new();
        // SAFETY: `results` outlives `groups`, and is read only after the group's completion.
        let group = groups.insert(3, unsafe { Results::borrowed(results.as_mut_ptr(), 5) }, Some(&[1, 4]));
        groups.join(group, 21);
        groups.join(group, 22);
        assert!(groups.record(Member::new(group, 1), -5).is_none());
        assert_eq!(groups.unfinished(group).collect::<Vec<_>>(), [21]);
        let done = groups.record(Member::new(group, 0), 4096).expect("two members, both finished");
        assert_eq!((done.user, done.result), (3, 2), "the completion counts the members, not the slots");
        assert_eq!(results, [7, 4096, 7, 7, -5], "slots without a member keep what they held");
        // The spare lists come back empty: the next group without slots writes slot i again.
        // SAFETY: as above.
        let next = groups.insert(4, unsafe { Results::borrowed(results.as_mut_ptr(), 1) }, None);
        groups.join(next, 23);
        assert!(groups.record(Member::new(next, 0), 1).is_some());
        assert_eq!(results[0], 1);
    }

    #[test]
    fn a_huge_groups_key_list_is_not_kept() {
        let mut results = vec![0; SPARE_KEYS_MAX + 1];
        let mut groups = Groups::new();
        // SAFETY: `results` outlives `groups`.
        let group = groups.insert(1, unsafe { Results::borrowed(results.as_mut_ptr(), results.len()) }, None);
        for index in 0..results.len() {
            groups.join(group, index as OpKey + 1);
        }
        let done = (0..results.len()).filter_map(|index| groups.record(Member::new(group, index), 0)).count();
        assert_eq!((done, groups.spare.len()), (1, 0));
    }
}
