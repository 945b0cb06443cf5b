//! Bounded HTTP(S) GETs made at load time (JWKS documents, OIDC discovery, policy bundles),
//! never on the request path.

use std::io::Read;
use std::time::Duration;

/// How long one fetch may take, connect included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What a conditional GET brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the document is still the one named by the ETag sent.
    NotModified,
    /// 200: the document, with its ETag when the server sent one.
    Body {
        /// The body, at most the size asked for.
        bytes: Vec<u8>,
        /// The `ETag` response header.
        etag: Option<String>,
    },
}

/// Redirects a plain GET (JWKS documents, OIDC discovery) follows.
const GET_REDIRECTS: u32 = 3;

/// GETs `url` (blocking) and returns at most `max_bytes` of body; an error names the URL.
pub fn get(url: &str, max_bytes: usize) -> Result<Vec<u8>, String> {
    match get_if_none_match(url, max_bytes, None, GET_REDIRECTS)? {
        Fetched::Body { bytes, .. } => Ok(bytes),
        Fetched::NotModified => Err(format!(
            "GET {url}: 304 Not Modified to an unconditional GET"
        )),
    }
}

/// GETs `url` (blocking) with `If-None-Match: etag` when one is given, following at most
/// `redirects` redirects (a redirect not followed is an error naming its status).
pub fn get_if_none_match(
    url: &str,
    max_bytes: usize,
    etag: Option<&str>,
    redirects: u32,
) -> Result<Fetched, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .max_redirects(redirects)
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(tag) = etag {
        req = req.header("if-none-match", tag);
    }
    let resp = req.call().map_err(|e| format!("GET {url}: {e}"))?;
    match resp.status().as_u16() {
        304 if etag.is_some() => return Ok(Fetched::NotModified),
        200 => {}
        s => return Err(format!("GET {url}: answered {s}, expected 200")),
    }
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut bytes = Vec::new();
    resp.into_body()
        .into_reader()
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("GET {url}: {e}"))?;
    if bytes.len() > max_bytes {
        return Err(format!(
            "GET {url}: the document is larger than {} KiB",
            max_bytes / 1024
        ));
    }
    Ok(Fetched::Body { bytes, etag })
}
