//! The verified-token cache: bounded, keyed by a seeded hash of the token, entries die at `exp`.

use std::hash::BuildHasher;
use std::sync::Arc;

/// One cached verification.
struct Entry<T> {
    token: Box<str>,
    value: Arc<T>,
    expires_at: u64,
    generation: u64,
}

/// A bounded map from token to verified value. A hit needs the stored token to be byte-equal
/// (a hash collision can never return another caller), unexpired, and verified under the
/// current key generation.
pub struct TokenCache<T> {
    map: quick_cache::sync::Cache<u64, Arc<Entry<T>>>,
    hasher: foldhash::fast::RandomState,
}

impl<T: Send + Sync + 'static> TokenCache<T> {
    /// A cache holding at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            map: quick_cache::sync::Cache::new(capacity.max(1)),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The cached value for `token`, if still valid at `now` under key `generation`.
    #[inline]
    pub fn get(&self, token: &str, now: u64, generation: u64) -> Option<Arc<T>> {
        let e = self.map.get(&self.hasher.hash_one(token))?;
        (e.token.as_ref() == token && now < e.expires_at && e.generation == generation)
            .then(|| e.value.clone())
    }

    /// Caches `value` for `token` until `expires_at`.
    pub fn insert(&self, token: &str, value: Arc<T>, expires_at: u64, generation: u64) {
        self.map.insert(
            self.hasher.hash_one(token),
            Arc::new(Entry {
                token: token.into(),
                value,
                expires_at,
                generation,
            }),
        );
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_need_same_token_unexpired_and_current_generation() {
        let c: TokenCache<u32> = TokenCache::new(8);
        c.insert("tok-a", Arc::new(1), 100, 1);
        assert_eq!(c.get("tok-a", 50, 1).as_deref(), Some(&1));
        assert!(c.get("tok-a", 100, 1).is_none(), "expired at exp");
        assert!(c.get("tok-a", 50, 2).is_none(), "keys rotated");
        assert!(c.get("tok-b", 50, 1).is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let c: TokenCache<u32> = TokenCache::new(16);
        for i in 0..1000 {
            c.insert(&format!("t{i}"), Arc::new(i), u64::MAX, 1);
        }
        assert!(c.len() <= 32, "{}", c.len());
    }
}
