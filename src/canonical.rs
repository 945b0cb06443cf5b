//! Canonical request paths: one form used both to match routes and to forward upstream.
//!
//! Rules (documented in SECURITY.md):
//! - the path must be origin-form (`/...`); the query never takes part in matching;
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded once;
//!   other escapes stay encoded with upper-case hex;
//! - refused (400): encoded `/` `\` `%` `;`, control bytes raw or encoded, invalid escapes,
//!   escapes that do not decode to UTF-8, raw `\` `;` `#`, spaces and other characters RFC 3986
//!   does not allow in a path, and `..` that would climb above the root;
//! - `.` segments and empty segments (`//`) are removed, `..` removes the segment before it,
//!   and a trailing `/` is dropped (`/` itself stays).

use std::borrow::Cow;
use std::fmt;

/// Why a path has no canonical form. Every variant means 400 Bad Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (`*`, empty, or no leading `/`).
    NotOriginForm,
    /// `%` not followed by two hex digits.
    InvalidEscape,
    /// `%2F` or `%5C`: an encoded path separator.
    EncodedSeparator,
    /// `%25`: an encoded percent sign (double encoding).
    EncodedPercent,
    /// A control byte, raw or encoded.
    ControlByte,
    /// `;` (path parameters), raw or encoded.
    Semicolon,
    /// A character RFC 3986 does not allow in a path (space, `#`, `\`, `"`, `<`, `{`, non-ASCII, ...).
    InvalidCharacter,
    /// Escapes that do not decode to UTF-8.
    InvalidUtf8,
    /// `..` above the root.
    AboveRoot,
}

impl PathError {
    /// A short stable name, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            PathError::NotOriginForm => "not_origin_form",
            PathError::InvalidEscape => "invalid_escape",
            PathError::EncodedSeparator => "encoded_separator",
            PathError::EncodedPercent => "encoded_percent",
            PathError::ControlByte => "control_byte",
            PathError::Semicolon => "semicolon",
            PathError::InvalidCharacter => "invalid_character",
            PathError::InvalidUtf8 => "invalid_utf8",
            PathError::AboveRoot => "above_root",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            PathError::NotOriginForm => "the request target must be a path starting with `/`",
            PathError::InvalidEscape => "a `%` is not followed by two hex digits",
            PathError::EncodedSeparator => "encoded `/` or `\\` is not accepted in paths",
            PathError::EncodedPercent => "encoded `%` (double encoding) is not accepted in paths",
            PathError::ControlByte => "control characters are not accepted in paths",
            PathError::Semicolon => "`;` path parameters are not accepted",
            PathError::InvalidCharacter => "the path has a character that must be percent-encoded",
            PathError::InvalidUtf8 => "the path's escapes do not decode to UTF-8",
            PathError::AboveRoot => "`..` climbs above the root",
        };
        f.write_str(s)
    }
}

impl std::error::Error for PathError {}

#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters allowed raw in a canonical path besides unreserved ones: `/`, sub-delims but `;`, `:` and `@`.
#[inline]
fn is_raw_ok(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'/' | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Returns the canonical form of `path` (the part of the request target before `?`).
/// Borrows when the path is already canonical, which is the common case.
pub fn canonicalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    if is_canonical(bytes)? {
        return Ok(Cow::Borrowed(path));
    }
    // Pass 1: escapes and characters -> a path whose only escapes are kept reserved bytes.
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathError::InvalidEscape);
            };
            let v = h << 4 | l;
            match v {
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                b'%' => return Err(PathError::EncodedPercent),
                b';' => return Err(PathError::Semicolon),
                0..=0x1f | 0x7f => return Err(PathError::ControlByte),
                v if is_unreserved(v) => decoded.push(v as char),
                v => {
                    decoded.push('%');
                    decoded.push(
                        char::from_digit(u32::from(v >> 4), 16)
                            .unwrap_or('0')
                            .to_ascii_uppercase(),
                    );
                    decoded.push(
                        char::from_digit(u32::from(v & 15), 16)
                            .unwrap_or('0')
                            .to_ascii_uppercase(),
                    );
                }
            }
            i += 3;
        } else {
            check_raw(b)?;
            decoded.push(b as char);
            i += 1;
        }
    }
    if percent_encoding::percent_decode_str(&decoded)
        .decode_utf8()
        .is_err()
    {
        return Err(PathError::InvalidUtf8);
    }
    // Pass 2: segments.
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => out.push(s),
        }
    }
    let mut canonical = String::with_capacity(decoded.len());
    for seg in &out {
        canonical.push('/');
        canonical.push_str(seg);
    }
    if canonical.is_empty() {
        canonical.push('/');
    }
    Ok(Cow::Owned(canonical))
}

#[inline]
fn check_raw(b: u8) -> Result<(), PathError> {
    match b {
        0..=0x1f | 0x7f => Err(PathError::ControlByte),
        b';' => Err(PathError::Semicolon),
        b if is_raw_ok(b) => Ok(()),
        _ => Err(PathError::InvalidCharacter),
    }
}

/// One scan: true when the path needs no rewriting; errors on bytes that are never acceptable.
#[inline]
fn is_canonical(bytes: &[u8]) -> Result<bool, PathError> {
    let mut prev = 0u8;
    let mut seg_start = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' {
            return Ok(false);
        }
        check_raw(b)?;
        if b == b'/' {
            if prev == b'/' || is_dot_segment(&bytes[seg_start..i]) {
                return Ok(false);
            }
            seg_start = i + 1;
        }
        prev = b;
    }
    let last = &bytes[seg_start..];
    Ok(!(is_dot_segment(last) || (bytes.len() > 1 && prev == b'/')))
}

#[inline]
fn is_dot_segment(seg: &[u8]) -> bool {
    seg == b"." || seg == b".."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> String {
        canonicalize(p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .into_owned()
    }

    #[test]
    fn canonical_paths_borrow() {
        assert!(matches!(
            canonicalize("/v1/clusters/abc"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(canonicalize("/"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn dot_and_empty_segments_resolve() {
        assert_eq!(ok("/public/../admin"), "/admin");
        assert_eq!(ok("/public/%2e%2e/admin"), "/admin");
        assert_eq!(ok("/public/%2E%2E/admin"), "/admin");
        assert_eq!(ok("/a/./b"), "/a/b");
        assert_eq!(ok("//admin/x"), "/admin/x");
        assert_eq!(ok("/admin//x"), "/admin/x");
        assert_eq!(ok("/admin/"), "/admin");
        assert_eq!(ok("/a/b/.."), "/a");
        assert_eq!(ok("/a/.."), "/");
    }

    #[test]
    fn unreserved_escapes_decode_once_others_stay() {
        assert_eq!(ok("/%61dmin"), "/admin");
        assert_eq!(ok("/x%3Fy"), "/x%3Fy");
        assert_eq!(ok("/x%3fy"), "/x%3Fy");
        assert_eq!(ok("/x%23y"), "/x%23y");
        assert_eq!(ok("/caf%C3%A9"), "/caf%C3%A9");
    }

    #[test]
    fn dangerous_forms_are_refused() {
        for (p, e) in [
            ("/a%2Fb", PathError::EncodedSeparator),
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%5Cb", PathError::EncodedSeparator),
            ("/a%252Fb", PathError::EncodedPercent),
            ("/a%00", PathError::ControlByte),
            ("/a%0A", PathError::ControlByte),
            ("/a%", PathError::InvalidEscape),
            ("/a%zz", PathError::InvalidEscape),
            ("/a%C3", PathError::InvalidUtf8),
            ("/admin;x", PathError::Semicolon),
            ("/admin/%3bp", PathError::Semicolon),
            ("/a/..;/admin", PathError::Semicolon),
            ("/admin#x", PathError::InvalidCharacter),
            ("/a\\b", PathError::InvalidCharacter),
            ("/a b", PathError::InvalidCharacter),
            ("/..", PathError::AboveRoot),
            ("/a/../..", PathError::AboveRoot),
            ("*", PathError::NotOriginForm),
            ("", PathError::NotOriginForm),
            ("http://x/admin", PathError::NotOriginForm),
        ] {
            assert_eq!(canonicalize(p), Err(e), "{p}");
        }
    }

    #[test]
    fn case_is_kept() {
        assert_eq!(ok("/ADMIN"), "/ADMIN");
    }
}
