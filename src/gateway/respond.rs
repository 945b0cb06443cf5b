//! Answers the gateway writes itself: RFC 9457 problem+json with keep-alive preserved.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// A problem response: status, a stable kind, a sentence, and context.
pub struct Problem<'a> {
    /// HTTP status.
    pub status: u16,
    /// Stable kind (a decision reason or gateway error), the tail of the `type` URN.
    pub kind: &'a str,
    /// Sentence for people; never contains the token.
    pub detail: &'a str,
    /// The action the route maps to, if known.
    pub action: Option<&'a str>,
    /// The request id.
    pub request_id: &'a str,
}

fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

impl Problem<'_> {
    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let v = serde_json::json!({
            "type": format!("urn:rolegate:problem:{}", self.kind),
            "title": title(self.status),
            "status": self.status,
            "detail": self.detail,
            "action": self.action,
            "request_id": self.request_id,
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// Writes the response; 401s carry a Bearer challenge. The connection stays reusable.
    pub async fn send(&self, session: &mut Session) -> pingora::Result<()> {
        let body = self.body();
        let mut resp = ResponseHeader::build(self.status, Some(6))?;
        resp.insert_header("content-type", "application/problem+json")?;
        resp.insert_header("content-length", body.len().to_string())?;
        resp.insert_header("cache-control", "no-store")?;
        resp.insert_header("x-request-id", self.request_id)?;
        if self.status == 401 {
            let desc: String = self
                .detail
                .chars()
                .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
                .collect();
            resp.insert_header(
                "www-authenticate",
                format!("Bearer realm=\"rolegate\", error=\"invalid_token\", error_description=\"{desc}\""),
            )?;
        }
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await
    }
}
