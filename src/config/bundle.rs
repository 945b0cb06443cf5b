//! Policy bundles: configuration documents included by URL, fetched at load and polled with ETag.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::model::FileModel;
use crate::fetch::Fetched;

/// Largest policy bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// A document included by URL, as the load that used it fetched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleState {
    /// The URL as the `include` entry wrote it.
    pub url: String,
    /// The ETag the server sent with it, for the next conditional GET.
    pub etag: Option<String>,
    /// Hex SHA-256 of the document, to tell a changed bundle from a server without ETags.
    pub sha256: String,
}

/// True when an `include` entry names a URL rather than a file.
pub fn is_url(entry: &str) -> bool {
    let lower = entry.get(..8).unwrap_or(entry).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Bundles follow no redirects: the URL `check_url` accepted is the only place a policy comes from
/// (a redirect could lead a loopback URL to a plain-http host elsewhere).
const BUNDLE_REDIRECTS: u32 = 0;

/// Refuses URLs a policy must not come from: anything but `https://`, except `http://` to a
/// loopback host (a sidecar in the same pod), since a policy sent in the clear can be rewritten
/// on the way.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "`{url}`: a policy bundle over plain http is accepted only from a loopback host; use https"
        )),
        _ => Err(format!("`{url}` is not an http(s) URL with a host")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// GETs a bundle (blocking): its text and the state to poll it with.
pub fn fetch(url: &str) -> Result<(String, BundleState), String> {
    match crate::fetch::get_if_none_match(url, MAX_BUNDLE_BYTES, None, BUNDLE_REDIRECTS)? {
        Fetched::Body { bytes, etag } => {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("GET {url}: the bundle is not UTF-8 text"))?;
            Ok((
                text,
                BundleState {
                    url: url.to_string(),
                    etag,
                    sha256,
                },
            ))
        }
        Fetched::NotModified => Err(format!("GET {url}: 304 to an unconditional GET")),
    }
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// The server answered 304, or sent the same bytes again.
    Unchanged,
    /// The document differs from the one serving: reload. Holds the state that was fetched.
    Changed(BundleState),
}

/// Asks the server (blocking) whether `state`'s document changed, with `If-None-Match`.
pub fn poll(state: &BundleState) -> Result<Poll, String> {
    match crate::fetch::get_if_none_match(
        &state.url,
        MAX_BUNDLE_BYTES,
        state.etag.as_deref(),
        BUNDLE_REDIRECTS,
    )? {
        Fetched::NotModified => Ok(Poll::Unchanged),
        Fetched::Body { bytes, etag } => {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            if sha256 == state.sha256 {
                return Ok(Poll::Unchanged);
            }
            Ok(Poll::Changed(BundleState {
                url: state.url.clone(),
                etag,
                sha256,
            }))
        }
    }
}

/// The sections a bundle may not set (they name local files or need a restart), with the first
/// one found; a bundle holds `actions`, `roles`, `routes`, `tenants` and `claims`.
pub fn forbidden_section(file: &FileModel) -> Option<&'static str> {
    if !file.include.is_empty() {
        Some("include")
    } else if file.gateway.is_some() {
        Some("gateway")
    } else if file.auth.is_some() {
        Some("auth")
    } else if !file.upstreams.0.is_empty() {
        Some("upstreams")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_files() {
        for url in ["https://p.example/x.yaml", "HTTP://127.0.0.1/x", "http://h"] {
            assert!(is_url(url), "{url}");
        }
        for file in ["roles.yaml", "https/roles.yaml", "./http://x", "h"] {
            assert!(!is_url(file), "{file}");
        }
    }

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        for ok in [
            "https://policy.example.com/palette.yaml",
            "http://127.0.0.1:8181/bundle.yaml",
            "http://localhost/bundle.yaml",
            "http://[::1]:9000/b",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("http://policy.example.com/p.yaml", "loopback"),
            ("http://10.0.0.1/p.yaml", "loopback"),
            ("https:///p.yaml", "not"),
            ("ftp://h/p.yaml", "not an http(s) URL"),
        ] {
            let err = check_url(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
