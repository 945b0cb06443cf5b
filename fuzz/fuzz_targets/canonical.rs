//! The path canonicalizer: never panics, and what it returns is canonical (a fixed point with
//! no dot segments, empty segments, separators in escapes, or `;`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolegate::canonical::canonicalize;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    let Ok(c) = canonicalize(path) else { return };
    assert!(c.starts_with('/'), "{c:?}");
    assert!(!c.contains("//") && !c.contains(';'), "{c:?}");
    assert!(c == "/" || !c.ends_with('/'), "{c:?}");
    for seg in c.split('/').skip(1) {
        assert!(seg != "." && seg != "..", "{c:?}");
    }
    let upper = c.to_ascii_uppercase();
    assert!(!upper.contains("%2F") && !upper.contains("%5C") && !upper.contains("%25"), "{c:?}");
    assert_eq!(canonicalize(&c).as_deref(), Ok(&*c), "not a fixed point: {path:?} -> {c:?}");
});
