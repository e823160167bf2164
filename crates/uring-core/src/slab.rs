//! Slot table with a free-list. A key is `generation << 32 | index`, so a stale key (a slot since
//! reused) never reaches the new occupant. Generations use 20 bits: keys stay below 2^52 and
//! cross into JavaScript as exact numbers, and below every reserved `user_data` tag (bit 63).

/// Identifies an operation in the ring; doubles as the entry's `user_data`.
pub type OpKey = u64;

const GEN_MASK: u32 = (1 << 20) - 1;

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

fn split(key: OpKey) -> (usize, u32) {
    ((key & 0xffff_ffff) as usize, (key >> 32) as u32)
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab { slots: Vec::new(), free: Vec::new(), len: 0 }
    }

    pub(crate) fn insert(&mut self, value: T) -> OpKey {
        self.len += 1;
        let index = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.value = Some(value);
                index
            }
            None => {
                self.slots.push(Slot { generation: 1, value: Some(value) });
                (self.slots.len() - 1) as u32
            }
        };
        (u64::from(self.slots[index as usize].generation) << 32) | u64::from(index)
    }

    pub(crate) fn get(&self, key: OpKey) -> Option<&T> {
        let (index, generation) = split(key);
        match self.slots.get(index) {
            Some(slot) if slot.generation == generation => slot.value.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: OpKey) -> Option<&mut T> {
        let (index, generation) = split(key);
        match self.slots.get_mut(index) {
            Some(slot) if slot.generation == generation => slot.value.as_mut(),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: OpKey) -> Option<T> {
        let (index, generation) = split(key);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        // Generation 0 is never used, so a zeroed key matches nothing.
        slot.generation = (slot.generation % GEN_MASK) + 1;
        self.free.push(index as u32);
        self.len -= 1;
        Some(value)
    }

    /// The keys of the occupied slots whose value passes `keep`.
    pub(crate) fn keys_where<'a>(&'a self, keep: impl Fn(&T) -> bool + 'a) -> impl Iterator<Item = OpKey> + 'a {
        self.slots.iter().enumerate().filter_map(move |(index, slot)| {
            slot.value.as_ref().filter(|value| keep(value)).map(|_| (u64::from(slot.generation) << 32) | index as u64)
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many slots exist (occupied or free): the slab's high-water mark.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_miss_reused_slots() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff, "the free slot is reused");
        assert_ne!(a, b, "with a new generation");
        assert_eq!(slab.get_mut(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get_mut(b).copied(), Some("b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn keys_where_names_the_current_occupants_that_pass() {
        let mut slab = Slab::new();
        let keys: Vec<OpKey> = (0..6).map(|n| slab.insert(n)).collect();
        slab.remove(keys[2]);
        let reused = slab.insert(8);
        let even: Vec<OpKey> = slab.keys_where(|n| n % 2 == 0).collect();
        assert_eq!(even, vec![keys[0], reused, keys[4]]);
        assert!(even.iter().all(|&key| slab.get(key).is_some_and(|n| n % 2 == 0)));
    }

    #[test]
    fn generations_wrap_without_zero_and_keys_stay_exact_in_f64() {
        let mut slab = Slab::new();
        let mut last = 0;
        for _ in 0..(GEN_MASK as usize + 5) {
            let key = slab.insert(());
            assert!(key >> 32 != 0 && key < (1u64 << 52));
            slab.remove(key);
            last = key;
        }
        assert_eq!(slab.capacity(), 1);
        assert!(last >> 32 <= u64::from(GEN_MASK));
    }
}
