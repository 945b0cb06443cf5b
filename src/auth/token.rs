//! The token front end: shape, size, base64url and JSON checks before any cryptography.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::TokenError;

/// Deepest JSON nesting accepted in a header or payload.
pub const MAX_DEPTH: usize = 16;
/// Longest `kid` accepted.
pub const MAX_KID: usize = 256;

/// A token split and parsed, not yet verified.
#[derive(Debug)]
pub struct Parsed<'t> {
    /// `alg` from the header.
    pub alg: String,
    /// `kid` from the header.
    pub kid: Option<String>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// `header.payload`, the signed message.
    pub message: &'t str,
    /// The signature segment (base64url).
    pub signature: &'t str,
}

fn segment(s: &str) -> Result<Vec<u8>, TokenError> {
    if s.is_empty() {
        return Err(TokenError::Malformed("empty segment"));
    }
    if s.bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(TokenError::Malformed(
            "segments must be base64url without padding",
        ));
    }
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenError::Malformed("segments must be base64url without padding"))
}

/// Splits and parses a compact JWS, refusing anything a strict reader would not accept.
pub fn parse(token: &str, max_bytes: usize) -> Result<Parsed<'_>, TokenError> {
    if token.len() > max_bytes {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("a token has exactly three segments"));
    };
    let header = strict_object(&segment(h)?)
        .ok_or(TokenError::Malformed("the header is not a JSON object"))?;
    let claims = strict_object(&segment(p)?)
        .ok_or(TokenError::Malformed("the payload is not a JSON object"))?;
    segment(s)?;
    if header.contains_key("crit") {
        return Err(TokenError::Malformed(
            "critical header parameters are not supported",
        ));
    }
    let alg = match header.get("alg") {
        Some(Value::String(a)) if !a.eq_ignore_ascii_case("none") => a.clone(),
        Some(Value::String(_)) => return Err(TokenError::AlgNotAllowed),
        _ => return Err(TokenError::Malformed("the header has no algorithm")),
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.len() <= MAX_KID && !k.is_empty() => Some(k.clone()),
        Some(_) => return Err(TokenError::Malformed("the key id is not a short string")),
    };
    Ok(Parsed {
        alg,
        kid,
        claims,
        message: &token[..h.len() + 1 + p.len()],
        signature: s,
    })
}

/// Parses JSON into an object, refusing duplicate keys and deep nesting.
pub fn strict_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict { depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

struct Strict {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict {
            depth: self.depth + 1,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(Strict {
                depth: self.depth + 1,
            })?;
            if out.insert(k, v).is_some() {
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn tok(h: &str, p: &str) -> String {
        format!("{}.{}.{}", b64(h), b64(p), b64("sig"))
    }

    #[test]
    fn shapes_and_headers_are_checked() {
        let ok = tok(r#"{"alg":"HS256","kid":"k"}"#, r#"{"sub":"a"}"#);
        assert!(parse(&ok, 8192).is_ok());
        assert_eq!(parse(&ok, 10).unwrap_err(), TokenError::TooLarge);
        for bad in [
            format!("{ok}.x"),
            ok.rsplit_once('.').unwrap().0.to_string(),
            tok(r#"{"alg":"HS256","alg":"RS256"}"#, "{}"),
            tok(r#"{"alg":"HS256"}"#, r#"{"sub":"a","sub":"b"}"#),
            tok(r#"{"alg":"HS256","crit":["b64"]}"#, "{}"),
            tok(r#"{"kid":"k"}"#, "{}"),
            tok(r#"{"alg":"HS256"}"#, "[1]"),
            format!("{}=.{}.{}", b64(r#"{"alg":"HS256"}"#), b64("{}"), b64("s")),
            tok(
                r#"{"alg":"HS256"}"#,
                &format!("{}1{}", "[".repeat(40), "]".repeat(40)),
            ),
        ] {
            assert!(parse(&bad, 8192).is_err(), "{bad}");
        }
        for none in ["none", "None", "NONE"] {
            let t = tok(&format!(r#"{{"alg":"{none}"}}"#), "{}");
            assert_eq!(parse(&t, 8192).unwrap_err(), TokenError::AlgNotAllowed);
        }
        let long_kid = tok(
            &format!(r#"{{"alg":"HS256","kid":"{}"}}"#, "k".repeat(300)),
            "{}",
        );
        assert!(parse(&long_kid, 8192).is_err());
    }
}
