//! Token and key-loading errors: short stable reasons for metrics, sentences for people.

use std::fmt;

/// Why a token was refused. `Display` never contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Larger than `max_token_bytes`.
    TooLarge,
    /// Not three base64url segments of JSON, or a header the gateway refuses.
    Malformed(&'static str),
    /// The header's `alg` is not allowed for the key (or at all).
    AlgNotAllowed,
    /// No trusted issuer matches `iss`.
    WrongIssuer,
    /// No key matches the token's `kid` (or no kid and several keys).
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past.
    Expired,
    /// `nbf` or `iat` is in the future.
    NotYetValid,
    /// `aud` does not name a configured audience.
    WrongAudience,
    /// A registered claim has the wrong type or the lifetime is too long.
    BadClaims(&'static str),
}

impl TokenError {
    /// Stable snake_case reason (metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "too_large",
            TokenError::Malformed(_) => "malformed",
            TokenError::AlgNotAllowed => "alg_not_allowed",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::BadClaims(_) => "bad_claims",
        }
    }

    /// A sentence for `error_description` (no quotes, no control characters).
    pub fn description(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLarge => f.write_str("the token is larger than this gateway accepts"),
            TokenError::Malformed(why) => write!(f, "the token is malformed: {why}"),
            TokenError::AlgNotAllowed => {
                f.write_str("the token's algorithm is not allowed for its issuer's key")
            }
            TokenError::WrongIssuer => f.write_str("the token's issuer is not trusted"),
            TokenError::UnknownKey => f.write_str("the token's signing key is not known"),
            TokenError::BadSignature => f.write_str("the token's signature does not verify"),
            TokenError::Expired => f.write_str("the token has expired"),
            TokenError::NotYetValid => f.write_str("the token is not valid yet"),
            TokenError::WrongAudience => f.write_str("the token is not meant for this audience"),
            TokenError::BadClaims(why) => write!(f, "the token's claims are not acceptable: {why}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Why the issuers' keys could not be loaded; names the issuer and the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLoadError(pub String);

impl fmt::Display for AuthLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuthLoadError {}
