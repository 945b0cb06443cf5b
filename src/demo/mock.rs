//! A mock of the fronted cloud API: answers JSON echoing the method, path and X-Auth-* headers.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;

/// The mock upstream application.
pub struct MockApi;

#[async_trait]
impl ServeHttp for MockApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let auth: serde_json::Map<String, serde_json::Value> = req
            .headers
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("x-auth-") || k.as_str() == "x-request-id")
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
                )
            })
            .collect();
        let body = serde_json::to_vec_pretty(&serde_json::json!({
            "upstream": "mock cloud API",
            "method": req.method.as_str(),
            "path": req.uri.path(),
            "query": req.uri.query(),
            "received_headers": auth,
        }))
        .unwrap_or_default();
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

/// The mock as a pingora service listening on `addr`.
pub fn mock_service(addr: &str) -> Service<MockApi> {
    let mut s = Service::new("mock cloud API".to_string(), MockApi);
    s.add_tcp(addr);
    s.threads = Some(1);
    s
}
