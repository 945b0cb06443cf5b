//! Verification keys, each pinned to the algorithms its key type allows.

use std::path::Path;
use std::str::FromStr;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use super::error::TokenError;

/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One verification key and the algorithms it may verify.
#[derive(Clone)]
pub struct Key {
    /// Key id, if the source gave one.
    pub kid: Option<String>,
    /// Algorithms this key verifies (never empty).
    pub algs: Vec<Algorithm>,
    /// The key.
    pub key: DecodingKey,
}

/// The keys of one issuer.
#[derive(Clone, Default)]
pub struct KeySet {
    /// Keys in source order.
    pub keys: Vec<Key>,
}

fn family_algs(f: AlgorithmFamily) -> &'static [Algorithm] {
    use Algorithm::*;
    match f {
        AlgorithmFamily::Hmac => &[HS256, HS384, HS512],
        AlgorithmFamily::Rsa => &[RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmFamily::Ec => &[ES256, ES384],
        AlgorithmFamily::Ed => &[EdDSA],
    }
}

/// Parses the configured algorithm allow-list.
pub fn parse_algorithms(names: &[String], issuer: &str) -> Result<Vec<Algorithm>, String> {
    names
        .iter()
        .map(|n| {
            Algorithm::from_str(n).map_err(|_| {
                format!("issuer `{issuer}`: unknown algorithm `{n}` (use RS256, ES256, EdDSA, HS256, ...)")
            })
        })
        .collect()
}

/// The algorithms a key of `family` may verify under `allowed` (empty = any of the family) and
/// the key's own `alg` (if it names one).
fn pin(family: AlgorithmFamily, allowed: &[Algorithm], own: Option<Algorithm>) -> Vec<Algorithm> {
    family_algs(family)
        .iter()
        .copied()
        .filter(|a| allowed.is_empty() || allowed.contains(a))
        .filter(|a| own.is_none_or(|o| o == *a))
        .collect()
}

impl KeySet {
    /// The key for a token: by `kid` when given, else the only key that allows `alg`.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&Key, TokenError> {
        match kid {
            Some(k) => {
                let key = self
                    .keys
                    .iter()
                    .find(|key| key.kid.as_deref() == Some(k))
                    .ok_or(TokenError::UnknownKey)?;
                if key.algs.contains(&alg) {
                    Ok(key)
                } else {
                    Err(TokenError::AlgNotAllowed)
                }
            }
            None => {
                let mut usable = self.keys.iter().filter(|key| key.algs.contains(&alg));
                match (usable.next(), usable.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) if self.keys.is_empty() => Err(TokenError::UnknownKey),
                    (None, _) => Err(TokenError::AlgNotAllowed),
                    (Some(_), Some(_)) => Err(TokenError::UnknownKey),
                }
            }
        }
    }

    /// True when there is at least one key.
    pub fn is_usable(&self) -> bool {
        !self.keys.is_empty()
    }

    /// A fingerprint of the key ids and algorithms (changes when keys rotate).
    pub fn describe(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("{}:{:?}", k.kid.as_deref().unwrap_or("-"), k.algs))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Reads a PEM public key (RSA, EC or Ed25519).
pub fn pem_key(path: &Path, allowed: &[Algorithm], issuer: &str) -> Result<Key, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "issuer `{issuer}`: cannot read PEM file `{}`: {e}",
            path.display()
        )
    })?;
    let key = DecodingKey::from_rsa_pem(&bytes)
        .or_else(|_| DecodingKey::from_ec_pem(&bytes))
        .or_else(|_| DecodingKey::from_ed_pem(&bytes))
        .map_err(|_| {
            format!(
                "issuer `{issuer}`: `{}` is not an RSA, EC or Ed25519 public key in PEM",
                path.display()
            )
        })?;
    let algs = pin(key.family(), allowed, None);
    if algs.is_empty() {
        return Err(format!(
            "issuer `{issuer}`: key `{}` allows none of the configured algorithms",
            path.display()
        ));
    }
    let kid = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    Ok(Key { kid, algs, key })
}

/// An HMAC secret as a key.
pub fn hmac_key(secret: &[u8], allowed: &[Algorithm], kid: Option<String>) -> Key {
    let algs = pin(AlgorithmFamily::Hmac, allowed, None);
    Key {
        kid,
        algs,
        key: DecodingKey::from_secret(secret),
    }
}

fn jwk_alg(a: &KeyAlgorithm) -> Option<Algorithm> {
    Algorithm::from_str(&a.to_string()).ok()
}

/// Parses a JWKS document; unusable keys are skipped, an empty result is an error.
pub fn jwks(bytes: &[u8], allowed: &[Algorithm], source: &str) -> Result<KeySet, String> {
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(format!("{source}: the JWKS is larger than 1 MiB"));
    }
    let set: JwkSet = serde_json::from_slice(bytes)
        .map_err(|e| format!("{source}: not a JWKS document ({e})"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            tracing::warn!(target: "rolegate::auth", source, kid = jwk.common.key_id.as_deref(), "skipping unusable JWK");
            continue;
        };
        let own = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(a), _) => jwk_alg(a),
            (None, AlgorithmParameters::EllipticCurve(ec)) => match ec.curve {
                EllipticCurve::P256 => Some(Algorithm::ES256),
                EllipticCurve::P384 => Some(Algorithm::ES384),
                _ => None,
            },
            (None, AlgorithmParameters::OctetKeyPair(_)) => Some(Algorithm::EdDSA),
            _ => None,
        };
        if jwk.common.key_algorithm.is_some() && own.is_none() {
            continue;
        }
        let algs = pin(key.family(), allowed, own);
        if algs.is_empty() {
            continue;
        }
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            algs,
            key,
        });
    }
    if keys.is_empty() {
        return Err(format!(
            "{source}: the JWKS has no usable key for the allowed algorithms"
        ));
    }
    Ok(KeySet { keys })
}
