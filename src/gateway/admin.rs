//! The admin listener: /metrics, /healthz, /readyz, /policy and POST /reload.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use super::Shared;

/// The admin application.
pub struct Admin {
    shared: Arc<Shared>,
}

impl Admin {
    /// An admin app over the gateway's shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Admin { shared }
    }

    fn policy_json(&self) -> serde_json::Value {
        let rt = self.shared.runtime.load();
        let p = &rt.policy;
        let status = self
            .shared
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        serde_json::json!({
            "revision": p.revision(),
            "actions": p.catalog().len(),
            "roles": p.roles().len(),
            "routes": p.routes().len(),
            "upstreams": rt.upstreams.iter().map(|u| &u.name).collect::<Vec<_>>(),
            "loaded_at": rt.loaded_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "files": rt.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "bundles": rt.bundles.iter().map(|b| serde_json::json!({"url": b.url, "etag": b.etag, "sha256": b.sha256})).collect::<Vec<_>>(),
            "reloads": {"success": self.shared.metrics.reloads(true), "failure": self.shared.metrics.reloads(false)},
            "last_error": status.last_error,
            "last_error_at": status.last_error_at,
        })
    }
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn json(status: u16, v: serde_json::Value) -> Response<Vec<u8>> {
    respond(
        status,
        "application/json",
        serde_json::to_vec(&v).unwrap_or_default(),
    )
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let method = req.method.as_str().to_string();
        let path = req.uri.path().to_string();
        // pingora's app loop keeps every connection alive; HTTP/1.0 without `keep-alive` means
        // one request, and a client reading to EOF would otherwise wait.
        let http10_close = req.version == http::Version::HTTP_10
            && !req
                .headers
                .get(http::header::CONNECTION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains("keep-alive"));
        if http10_close {
            session.set_keepalive(None);
        }
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => {
                let rt = self.shared.runtime.load();
                self.shared
                    .metrics
                    .token_cache_entries
                    .set(rt.auth.cache.len() as i64);
                respond(
                    200,
                    "text/plain; version=0.0.4",
                    self.shared.metrics.render(),
                )
            }
            ("GET", "/healthz") => json(200, serde_json::json!({"status": "ok"})),
            ("GET", "/readyz") => {
                let rt = self.shared.runtime.load();
                let ready = rt.auth.verifier.is_ready();
                json(
                    if ready { 200 } else { 503 },
                    serde_json::json!({"ready": ready, "revision": rt.policy.short_revision()}),
                )
            }
            ("GET", "/policy") => json(200, self.policy_json()),
            ("POST", "/reload") => match &self.shared.reloader {
                Some(r) => match r.reload_by(crate::reload::Trigger::Admin).await {
                    Ok(outcome) => json(
                        200,
                        serde_json::json!({"result": outcome.as_str(), "revision": self.shared.runtime.load().policy.revision()}),
                    ),
                    Err(e) => json(422, serde_json::json!({"result": "failure", "error": e})),
                },
                None => json(
                    409,
                    serde_json::json!({"error": "this gateway was started without a configuration file to reload"}),
                ),
            },
            (_, endpoint @ ("/metrics" | "/healthz" | "/readyz" | "/policy" | "/reload")) => {
                let mut r = json(405, serde_json::json!({"error": "method not allowed"}));
                let allow = if endpoint == "/reload" { "POST" } else { "GET" };
                r.headers_mut()
                    .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
                r
            }
            _ => json(
                404,
                serde_json::json!({"error": "not found", "endpoints": ["/metrics", "/healthz", "/readyz", "/policy", "POST /reload"]}),
            ),
        }
    }
}
