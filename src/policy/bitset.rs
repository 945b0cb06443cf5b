//! Fixed-width action sets: one bit per catalog action.

/// A set of action indices, sized to the catalog it was built for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ActionSet {
    words: Box<[u64]>,
}

impl ActionSet {
    /// An empty set able to hold `len` actions.
    pub fn empty(len: usize) -> Self {
        ActionSet {
            words: vec![0u64; len.div_ceil(64)].into_boxed_slice(),
        }
    }

    /// Adds action `idx`.
    pub fn insert(&mut self, idx: u32) {
        let i = idx as usize;
        self.words[i >> 6] |= 1u64 << (i & 63);
    }

    /// True when action `idx` is in the set. Hot path: one load and a mask.
    #[inline]
    pub fn contains(&self, idx: u32) -> bool {
        let i = idx as usize;
        match self.words.get(i >> 6) {
            Some(w) => w & (1u64 << (i & 63)) != 0,
            None => false,
        }
    }

    /// Adds every action of `other`.
    pub fn union_with(&mut self, other: &ActionSet) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a |= *b;
        }
    }

    /// Number of actions in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when no action is in the set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// The action indices in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            (0..64u32).filter_map(move |b| (w & (1u64 << b) != 0).then_some(wi as u32 * 64 + b))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_union() {
        let mut a = ActionSet::empty(130);
        a.insert(0);
        a.insert(129);
        assert!(a.contains(0) && a.contains(129) && !a.contains(64));
        assert!(!a.contains(100_000), "out of range is never contained");
        let mut b = ActionSet::empty(130);
        b.insert(64);
        b.union_with(&a);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert_eq!(b.len(), 3);
    }
}
