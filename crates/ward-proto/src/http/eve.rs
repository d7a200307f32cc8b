//! Renders an [`HttpTransaction`] as Suricata's EVE `http` object: `hostname` without port
//! (lowercased, as libhtp normalises it), `http_port` when the Host header or absolute URI names
//! one, `url` as sent, `http_content_type` without parameters, `status` as a number, `length` the
//! response body bytes as transmitted (chunk framing included, as libhtp counts
//! `response_message_len`; ward-model's doc says "after de-chunking", which the oracle
//! contradicts), and `redirect` from `Location`.
//!
//! A response that came without a request is logged with libhtp's placeholder URL
//! `/libhtp::request_uri_not_seen`, as Suricata does.

use ward_model::eve::Http;

use crate::bytes_to_string;
use crate::http::state::HttpTransaction;

/// The URL libhtp reports for a response whose request it never saw.
pub const URI_NOT_SEEN: &str = "/libhtp::request_uri_not_seen";

/// The EVE `http` object of one transaction.
pub fn to_eve(tx: &HttpTransaction) -> Http {
    let mut http = Http {
        length: Some(0),
        ..Http::default()
    };
    match &tx.request {
        Some(req) => {
            if let Some((host, port)) = req.host_and_port() {
                if !host.is_empty() {
                    http.hostname = Some(host);
                }
                http.http_port = port;
            }
            http.url = (!req.uri_raw.is_empty()).then(|| bytes_to_string(&req.uri_raw));
            http.http_user_agent = req.user_agent().map(bytes_to_string);
            http.http_refer = req.referer().map(bytes_to_string);
            http.http_method = (!req.method.is_empty()).then(|| bytes_to_string(&req.method));
            http.protocol = req.protocol.as_deref().map(bytes_to_string);
        }
        None => http.url = Some(URI_NOT_SEEN.to_string()),
    }
    if let Some(resp) = &tx.response {
        http.status = resp.status;
        http.http_content_type = resp.media_type();
        http.redirect = resp.location().map(bytes_to_string);
        http.length = Some(resp.message_len);
    }
    http
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppEvent;
    use crate::http::HttpState;
    use crate::Direction;

    /// The first transaction of Zeek's `http/http-redirect.pcap`-style exchange, shaped like the
    /// oracle's record for 10.99.99.45 (`/index.php` answered by a 302).
    #[test]
    fn renders_like_suricata() {
        let mut s = HttpState::new();
        let mut out = Vec::new();
        s.on_data(
            Direction::ToServer,
            b"GET /index.php HTTP/1.0\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
            &mut out,
        );
        s.on_data(Direction::ToClient, b"HTTP/1.0 302 Found\r\nLocation: /index.php?page=main.php\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: 0\r\n\r\n", &mut out);
        let tx = out
            .iter()
            .find_map(|e| {
                if let AppEvent::Http(t) = e {
                    Some(t)
                } else {
                    None
                }
            })
            .unwrap();
        assert_eq!(
            serde_json::to_string(&to_eve(tx)).unwrap(),
            r#"{"url":"/index.php","http_user_agent":"Mozilla/5.0","http_content_type":"text/html","http_method":"GET","protocol":"HTTP/1.0","status":302,"redirect":"/index.php?page=main.php","length":0}"#
        );
    }
}
