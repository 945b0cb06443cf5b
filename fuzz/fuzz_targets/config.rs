//! The config loader and compiler: arbitrary YAML never panics; what compiles can decide.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rolegate::config::{load_with, MemorySource};
use rolegate::policy::{CompiledPolicy, Principal, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let src = MemorySource([("c.yaml".into(), text.to_string())].into_iter().collect());
    let Ok(config) = load_with(&src, Path::new("c.yaml")) else { return };
    let Ok(policy) = CompiledPolicy::compile(&config) else { return };
    let names: Vec<String> = policy.roles().names().map(str::to_string).collect();
    let subject = policy.resolve(&Principal {
        subject: "s".into(),
        tenant: Some("t".into()),
        roles: names.clone(),
        project_roles: vec![("p".into(), names)],
    });
    let headers = http::HeaderMap::new();
    for path in ["/", "/a", "/a/b", "/v1/x/1"] {
        for method in ["GET", "POST", "DELETE"] {
            let req = Request { method, host: None, path, query: Some("tenant=t"), headers: &headers };
            let _ = policy.decide(Some(&subject), &req);
            let _ = policy.decide(None, &req);
        }
    }
});
