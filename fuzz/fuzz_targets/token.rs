//! The token front end and the verifier: arbitrary bearer strings never panic and are never
//! accepted without the right signature.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rolegate::auth::{install_crypto_provider, Verifier};
use rolegate::config::{AuthSettings, ClaimMapping, IssuerSettings};

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        install_crypto_provider();
        std::env::set_var("ROLEGATE_FUZZ_SECRET", "fuzz-secret-that-no-input-knows");
        let settings = AuthSettings {
            issuers: vec![IssuerSettings {
                issuer: "fuzz".into(),
                algorithms: vec!["HS256".into()],
                hmac_secret_env: Some("ROLEGATE_FUZZ_SECRET".into()),
                ..IssuerSettings::default()
            }],
            ..AuthSettings::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(Verifier::load(&settings, &ClaimMapping::default(), std::path::Path::new(".")))
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let _ = rolegate::auth::token::parse(token, 8192);
    assert!(verifier().verify(token, 1_700_000_000).is_err(), "accepted a forged token: {token:?}");
});
