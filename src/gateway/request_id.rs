//! Request ids: a random per-process prefix and a counter, unique and cheap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static COUNTER: AtomicU64 = AtomicU64::new(0);
static PREFIX: OnceLock<u32> = OnceLock::new();

/// A new request id such as `9f3a61c2-00000000002a`.
pub fn next() -> String {
    let prefix = *PREFIX.get_or_init(rand::random::<u32>);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}-{n:012x}")
}
