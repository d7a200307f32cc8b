//! The inspection buffers a rule can match on (Suricata's sticky buffers), the legacy content
//! modifiers that select them, and which inspection stage provides each.
//!
//! A rule's stage is where all its buffers are available together: the packet (payload or
//! reassembled stream), an HTTP request, an HTTP response (the request's buffers stay available),
//! a DNS message or a TLS handshake. Buffers whose meaning depends on direction (`http.header`,
//! `file.data`, ...) follow the rule's `flow` direction, as in Suricata.

/// One inspection buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buffer {
    /// Packet payload, or the reassembled stream chunk when the sensor supplies one (`pkt_data`).
    Packet,
    HttpUri,
    HttpUriRaw,
    HttpMethod,
    HttpHost,
    HttpHostRaw,
    HttpUserAgent,
    HttpCookie,
    HttpReferer,
    HttpAccept,
    HttpAcceptEnc,
    HttpAcceptLang,
    HttpRequestLine,
    HttpRequestBody,
    HttpStatCode,
    HttpStatMsg,
    HttpResponseLine,
    HttpResponseBody,
    HttpServer,
    HttpLocation,
    /// Direction-dependent HTTP buffers: request or response side by the rule's direction.
    HttpHeader,
    HttpHeaderRaw,
    HttpHeaderNames,
    HttpContentType,
    HttpContentLen,
    HttpProtocol,
    HttpStart,
    HttpConnection,
    /// `file.data`: the HTTP request body to the server, the response body to the client.
    FileData,
    DnsQuery,
    TlsSni,
    TlsCerts,
    TlsCertSubject,
    TlsCertIssuer,
    TlsCertSerial,
    TlsCertFingerprint,
    Ja3Hash,
    Ja3String,
    Ja3sHash,
    Ja3sString,
    Ja4Hash,
    /// Output of the last `base64_decode` (`base64_data`).
    Base64,
}

/// Where a buffer is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Packet,
    HttpRequest,
    HttpResponse,
    Dns,
    Tls,
}

/// Which stage a buffer needs, or `None` for direction-dependent and stage-neutral buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BufferStage {
    Neutral,
    Http(Option<bool>),
    Dns,
    Tls,
}

impl Buffer {
    pub(crate) fn stage(self) -> BufferStage {
        use Buffer::*;
        match self {
            Packet | Base64 => BufferStage::Neutral,
            HttpUri | HttpUriRaw | HttpMethod | HttpHost | HttpHostRaw | HttpUserAgent | HttpCookie
            | HttpReferer | HttpAccept | HttpAcceptEnc | HttpAcceptLang | HttpRequestLine
            | HttpRequestBody => BufferStage::Http(Some(true)),
            HttpStatCode | HttpStatMsg | HttpResponseLine | HttpResponseBody | HttpServer
            | HttpLocation => BufferStage::Http(Some(false)),
            HttpHeader | HttpHeaderRaw | HttpHeaderNames | HttpContentType | HttpContentLen
            | HttpProtocol | HttpStart | HttpConnection | FileData => BufferStage::Http(None),
            DnsQuery => BufferStage::Dns,
            TlsSni | TlsCerts | TlsCertSubject | TlsCertIssuer | TlsCertSerial | TlsCertFingerprint
            | Ja3Hash | Ja3String | Ja3sHash | Ja3sString | Ja4Hash => BufferStage::Tls,
        }
    }

    /// The sticky-buffer keyword (Suricata 6+ name) for this buffer.
    pub fn name(self) -> &'static str {
        use Buffer::*;
        match self {
            Packet => "pkt_data",
            HttpUri => "http.uri",
            HttpUriRaw => "http.uri.raw",
            HttpMethod => "http.method",
            HttpHost => "http.host",
            HttpHostRaw => "http.host.raw",
            HttpUserAgent => "http.user_agent",
            HttpCookie => "http.cookie",
            HttpReferer => "http.referer",
            HttpAccept => "http.accept",
            HttpAcceptEnc => "http.accept_enc",
            HttpAcceptLang => "http.accept_lang",
            HttpRequestLine => "http.request_line",
            HttpRequestBody => "http.request_body",
            HttpStatCode => "http.stat_code",
            HttpStatMsg => "http.stat_msg",
            HttpResponseLine => "http.response_line",
            HttpResponseBody => "http.response_body",
            HttpServer => "http.server",
            HttpLocation => "http.location",
            HttpHeader => "http.header",
            HttpHeaderRaw => "http.header.raw",
            HttpHeaderNames => "http.header_names",
            HttpContentType => "http.content_type",
            HttpContentLen => "http.content_len",
            HttpProtocol => "http.protocol",
            HttpStart => "http.start",
            HttpConnection => "http.connection",
            FileData => "file.data",
            DnsQuery => "dns.query",
            TlsSni => "tls.sni",
            TlsCerts => "tls.certs",
            TlsCertSubject => "tls.cert_subject",
            TlsCertIssuer => "tls.cert_issuer",
            TlsCertSerial => "tls.cert_serial",
            TlsCertFingerprint => "tls.cert_fingerprint",
            Ja3Hash => "ja3.hash",
            Ja3String => "ja3.string",
            Ja3sHash => "ja3s.hash",
            Ja3sString => "ja3s.string",
            Ja4Hash => "ja4.hash",
            Base64 => "base64_data",
        }
    }

    /// The buffer selected by a sticky-buffer keyword (new and legacy spellings).
    pub fn from_sticky(keyword: &str) -> Option<Buffer> {
        use Buffer::*;
        Some(match keyword {
            "pkt_data" => Packet,
            "http.uri" | "http_uri" => HttpUri,
            "http.uri.raw" | "http_raw_uri" => HttpUriRaw,
            "http.method" | "http_method" => HttpMethod,
            "http.host" | "http_host" => HttpHost,
            "http.host.raw" | "http_raw_host" => HttpHostRaw,
            "http.user_agent" | "http_user_agent" => HttpUserAgent,
            "http.cookie" | "http_cookie" => HttpCookie,
            "http.referer" | "http_referer" => HttpReferer,
            "http.accept" | "http_accept" => HttpAccept,
            "http.accept_enc" | "http_accept_enc" => HttpAcceptEnc,
            "http.accept_lang" | "http_accept_lang" => HttpAcceptLang,
            "http.request_line" | "http_request_line" => HttpRequestLine,
            "http.request_body" | "http_client_body" => HttpRequestBody,
            "http.stat_code" | "http_stat_code" => HttpStatCode,
            "http.stat_msg" | "http_stat_msg" => HttpStatMsg,
            "http.response_line" | "http_response_line" => HttpResponseLine,
            "http.response_body" | "http_server_body" => HttpResponseBody,
            "http.server" | "http_server" => HttpServer,
            "http.location" | "http_location" => HttpLocation,
            "http.header" | "http_header" => HttpHeader,
            "http.header.raw" | "http_raw_header" => HttpHeaderRaw,
            "http.header_names" | "http_header_names" => HttpHeaderNames,
            "http.content_type" | "http_content_type" => HttpContentType,
            "http.content_len" | "http_content_len" => HttpContentLen,
            "http.protocol" | "http_protocol" => HttpProtocol,
            "http.start" | "http_start" => HttpStart,
            "http.connection" | "http_connection" => HttpConnection,
            "file.data" | "file_data" => FileData,
            "dns.query" | "dns_query" => DnsQuery,
            "tls.sni" | "tls_sni" => TlsSni,
            "tls.certs" => TlsCerts,
            "tls.cert_subject" | "tls_cert_subject" => TlsCertSubject,
            "tls.cert_issuer" | "tls_cert_issuer" => TlsCertIssuer,
            "tls.cert_serial" | "tls_cert_serial" => TlsCertSerial,
            "tls.cert_fingerprint" | "tls_cert_fingerprint" => TlsCertFingerprint,
            "ja3.hash" | "ja3_hash" => Ja3Hash,
            "ja3.string" | "ja3_string" => Ja3String,
            "ja3s.hash" | "ja3s_hash" => Ja3sHash,
            "ja3s.string" | "ja3s_string" => Ja3sString,
            "ja4.hash" => Ja4Hash,
            "base64_data" => Base64,
            _ => return None,
        })
    }

    /// The buffer a legacy content modifier (`content:"x"; http_uri;`) moves the last content to.
    pub fn from_modifier(keyword: &str) -> Option<Buffer> {
        use Buffer::*;
        Some(match keyword {
            "http_uri" => HttpUri,
            "http_raw_uri" => HttpUriRaw,
            "http_method" => HttpMethod,
            "http_header" => HttpHeader,
            "http_raw_header" => HttpHeaderRaw,
            "http_cookie" => HttpCookie,
            "http_user_agent" => HttpUserAgent,
            "http_host" => HttpHost,
            "http_raw_host" => HttpHostRaw,
            "http_client_body" => HttpRequestBody,
            "http_server_body" => HttpResponseBody,
            "http_stat_code" => HttpStatCode,
            "http_stat_msg" => HttpStatMsg,
            _ => return None,
        })
    }

    /// Buffers that can hold several values per inspection (one per query or certificate).
    pub(crate) fn is_multi(self) -> bool {
        matches!(self, Buffer::DnsQuery | Buffer::TlsCerts)
    }

    /// Domain-name buffers eligible for the exact/suffix domain sets.
    pub(crate) fn is_domain(self) -> bool {
        matches!(self, Buffer::DnsQuery | Buffer::TlsSni | Buffer::HttpHost | Buffer::HttpHostRaw)
    }
}
