//! Application payloads: the shared byte pools (random, text, gzip bodies, certificates) built
//! once per run, and builders for DNS messages, TLS records and HTTP/1.1 messages.
//!
//! Invariant: everything here is a pure function of the [`Rng`] stream, so a seed always gives
//! the same bytes. Certificates are Ed25519 (whose signatures are deterministic) issued by one
//! synthetic CA, so even the DER is reproducible.

use std::io::Write;

use super::rng::Rng;
use super::GenError;

/// Size of the random-bytes pool that opaque and encrypted payloads are sliced from. Large
/// enough that repeats are far apart; small enough to build in a few milliseconds.
pub const RANDOM_POOL: usize = 4 << 20;
/// Size of the HTML/JSON-like text pool that plain HTTP bodies are sliced from.
pub const TEXT_POOL: usize = 512 << 10;
/// Uncompressed sizes of the pre-built gzip bodies (compressing per response would dominate
/// the generator's run time).
const GZIP_SIZES: &[usize] = &[1_200, 6_000, 18_000, 45_000, 120_000, 300_000];

/// Domain names seen on an election office network: office/state services, vendors, and the
/// everyday cloud services of any office.
pub const DOMAINS: &[&str] = &[
    "elections.sos.example.gov",
    "vote.example-county.gov",
    "voterportal.example.gov",
    "results.elections.example.gov",
    "www.example-county.gov",
    "mail.example-county.gov",
    "vpn.example-county.gov",
    "pollbook-sync.example-vendor.com",
    "update.example-vendor.com",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "www.office.com",
    "teams.microsoft.com",
    "ctldl.windowsupdate.com",
    "settings-win.data.microsoft.com",
    "www.google.com",
    "fonts.googleapis.com",
    "update.googleapis.com",
    "ocsp.digicert.com",
    "crl3.digicert.com",
    "cdn.jsdelivr.net",
    "ajax.googleapis.com",
    "www.eac.gov",
    "www.cisa.gov",
    "api.weather.gov",
    "time.windows.com",
    "www.usps.com",
    "registration.example.gov",
];

/// Names that do not exist (typos, stale hosts, DGA-like labels are made on the fly).
pub const NX_DOMAINS: &[&str] = &[
    "wwww.example-county.gov",
    "elections.sos.exmaple.gov",
    "oldfileserver.county.local",
    "wpad.county.local",
    "printer3.county.local",
    "isatap.county.local",
];

/// Paths requested over plain HTTP.
pub const HTTP_PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/elections/results/2026/general",
    "/elections/results/2026/general/county/017.json",
    "/voter-registration/lookup",
    "/voter-registration/status?id=",
    "/api/v1/precincts/1234/turnout",
    "/api/v1/ballots/returned?since=",
    "/static/js/app.3f9a2c1e.js",
    "/static/css/site.8d21f0.css",
    "/images/state-seal.png",
    "/favicon.ico",
    "/pollworkers/training/module-4.pdf",
    "/msdownload/update/v3/static/trustedr/en/authrootstl.cab",
    "/MFEwTzBNMEswSTAJBgUrDgMCGgUABBQ",
    "/search?q=polling+place+hours",
    "/news/2026/10/early-voting-extended",
];

/// Paths that receive POSTs.
pub const POST_PATHS: &[&str] =
    &["/voter-registration/lookup", "/api/v1/results/upload", "/login", "/api/v1/pollbook/sync", "/contact"];

/// User-Agent strings of office machines.
pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Microsoft-CryptoAPI/10.0",
    "Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.71",
    "PollbookSync/4.2.1 (Windows; x64)",
    "curl/8.5.0",
];

/// Words the text pool is made of.
const WORDS: &[&str] = &[
    "election", "ballot", "precinct", "county", "voter", "registration", "canvass", "results", "turnout",
    "absentee", "provisional", "poll", "worker", "official", "certified", "tabulation", "early", "voting",
    "hours", "location", "clerk", "secretary", "state", "general", "primary", "candidate", "measure", "district",
];

/// A certificate chain served by one TLS server name.
#[derive(Debug, Clone)]
pub struct CertChain {
    pub server_name: &'static str,
    /// DER of the leaf, then of the issuing CA.
    pub ders: Vec<Vec<u8>>,
}

/// Shared, read-only byte pools for one run.
pub struct Pools {
    pub random: Vec<u8>,
    pub text: Vec<u8>,
    pub gzip: Vec<Vec<u8>>,
    pub certs: Vec<CertChain>,
}

/// Server names that get a certificate (TLS sessions pick among these).
pub const TLS_NAMES: &[&str] = &[
    "elections.sos.example.gov",
    "voterportal.example.gov",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "www.google.com",
    "pollbook-sync.example-vendor.com",
    "teams.microsoft.com",
    "update.googleapis.com",
    "cdn.jsdelivr.net",
    "results.elections.example.gov",
];

impl Pools {
    pub fn build(rng: &mut Rng) -> Result<Pools, GenError> {
        let mut random = vec![0u8; RANDOM_POOL];
        rng.fill(&mut random);
        let text = build_text(rng, TEXT_POOL);
        let mut gzip = Vec::with_capacity(GZIP_SIZES.len());
        for &n in GZIP_SIZES {
            let off = rng.below((text.len() - n) as u64) as usize;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            enc.write_all(&text[off..off + n]).map_err(GenError::Io)?;
            gzip.push(enc.finish().map_err(GenError::Io)?);
        }
        let certs = build_certs(rng)?;
        Ok(Pools { random, text, gzip, certs })
    }

    /// Copies `len` bytes of the random pool starting at `off` (wrapping) into `out`.
    pub fn random_into(&self, off: usize, len: usize, out: &mut Vec<u8>) {
        copy_wrapping(&self.random, off, len, out);
    }

    /// Copies `len` bytes of the text pool starting at `off` (wrapping) into `out`.
    pub fn text_into(&self, off: usize, len: usize, out: &mut Vec<u8>) {
        copy_wrapping(&self.text, off, len, out);
    }
}

fn copy_wrapping(pool: &[u8], off: usize, mut len: usize, out: &mut Vec<u8>) {
    let mut off = off % pool.len();
    while len > 0 {
        let n = len.min(pool.len() - off);
        out.extend_from_slice(&pool[off..off + n]);
        len -= n;
        off = 0;
    }
}

fn build_text(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut t = Vec::with_capacity(size + 256);
    while t.len() < size {
        match rng.below(4) {
            0 => {
                let _ = write!(t, "<div class=\"card\"><h2>{} {}</h2><p>", rng.pick(WORDS), rng.pick(WORDS));
            }
            1 => {
                let _ = write!(
                    t,
                    "{{\"precinct\":{},\"ballots\":{},\"status\":\"{}\"}},",
                    rng.below(4000),
                    rng.below(100_000),
                    rng.pick(WORDS)
                );
            }
            _ => {
                for _ in 0..rng.range(6, 20) {
                    t.extend_from_slice(rng.pick(WORDS).as_bytes());
                    t.push(b' ');
                }
                t.extend_from_slice(b"</p></div>\n");
            }
        }
    }
    t.truncate(size);
    t
}

/// Builds an Ed25519 PKCS#8 v1 document from a 32-byte seed (RFC 8410 layout).
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(seed);
    der
}

fn keypair(rng: &mut Rng) -> Result<rcgen::KeyPair, GenError> {
    let mut seed = [0u8; 32];
    rng.fill(&mut seed);
    let der = ed25519_pkcs8(&seed);
    rcgen::KeyPair::try_from(der.as_slice()).map_err(|e| GenError::Cert(e.to_string()))
}

fn build_certs(rng: &mut Rng) -> Result<Vec<CertChain>, GenError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose, SerialNumber};
    let cert_err = |e: rcgen::Error| GenError::Cert(e.to_string());
    let ca_key = keypair(rng)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name.push(DnType::CountryName, "US");
    ca.distinguished_name.push(DnType::OrganizationName, "Ward Synthetic Trust Services");
    ca.distinguished_name.push(DnType::CommonName, "Ward Synthetic TLS RSA CA G1");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2034, 1, 1);
    ca.serial_number = Some(SerialNumber::from_slice(&[0x0a, 0x01, 0x5e, 0x11]));
    let ca_cert = ca.self_signed(&ca_key).map_err(cert_err)?;
    let issuer = Issuer::new(ca.clone(), &ca_key);
    let mut out = Vec::with_capacity(TLS_NAMES.len());
    for (i, name) in TLS_NAMES.iter().enumerate() {
        let key = keypair(rng)?;
        let mut p = CertificateParams::new(vec![name.to_string(), format!("www.{name}")]).map_err(cert_err)?;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, *name);
        p.not_before = rcgen::date_time_ymd(2026, 3, 1 + i as u8);
        p.not_after = rcgen::date_time_ymd(2027, 3, 1 + i as u8);
        p.serial_number = Some(SerialNumber::from_slice(&rng.next_u64().to_be_bytes()[..]));
        p.use_authority_key_identifier_extension = true;
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = p.signed_by(&key, &issuer).map_err(cert_err)?;
        out.push(CertChain { server_name: name, ders: vec![leaf.der().to_vec(), ca_cert.der().to_vec()] });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// DNS

/// DNS record types the generator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsQType {
    A = 1,
    Cname = 5,
    Soa = 6,
    Mx = 15,
    Txt = 16,
    Aaaa = 28,
}

/// A deterministic public-looking IPv4 address for a name (same name, same address).
pub fn addr_for(name: &str, salt: u64) -> [u8; 4] {
    const FIRST: &[u8] = &[13, 20, 23, 34, 35, 40, 52, 54, 64, 104, 142, 151, 162, 185, 199, 204];
    let h = fnv(name.as_bytes()) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let b = h.to_le_bytes();
    [FIRST[(b[0] & 15) as usize], b[1], b[2], b[3].clamp(1, 254)]
}

/// FNV-1a, for stable name-derived values.
pub fn fnv(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Encodes `name` as uncompressed labels; returns the offsets (within `out`) where each label
/// starts, for later compression pointers to its suffixes.
fn put_name(out: &mut Vec<u8>, name: &str) -> Vec<u16> {
    let mut starts = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        starts.push(out.len() as u16);
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    starts
}

fn put_ptr(out: &mut Vec<u8>, off: u16) {
    out.extend_from_slice(&(0xc000 | off).to_be_bytes());
}

fn put_rr_head(out: &mut Vec<u8>, name_ptr: u16, qtype: u16, ttl: u32) -> usize {
    put_ptr(out, name_ptr);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    len_at
}

fn close_rdata(out: &mut [u8], len_at: usize) {
    let n = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&n.to_be_bytes());
}

fn put_opt(out: &mut Vec<u8>, udp_size: u16) {
    out.push(0);
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&udp_size.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
}

/// A DNS query for `name`/`qtype`, with an EDNS OPT record when `edns`.
pub fn dns_query(id: u16, name: &str, qtype: DnsQType, edns: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    put_name(&mut m, name);
    m.extend_from_slice(&(qtype as u16).to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        put_opt(&mut m, 1232);
    }
    m
}

/// The response to [`dns_query`]: answers use name compression (pointers to the question and
/// to CNAME targets). `nxdomain` gives RCODE 3 with an SOA in the authority section.
/// `bulk_txt` adds that many bytes of TXT data (large EDNS responses that fragment).
pub fn dns_response(rng: &mut Rng, id: u16, name: &str, qtype: DnsQType, edns: bool, nxdomain: bool, bulk_txt: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(128 + bulk_txt + bulk_txt / 200 * 12);
    m.extend_from_slice(&id.to_be_bytes());
    let flags: u16 = if nxdomain { 0x8183 } else { 0x8180 };
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    let labels = put_name(&mut m, name);
    m.extend_from_slice(&(qtype as u16).to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    let qname = 12u16;
    // Offset of the registrable domain (last two labels) for suffix pointers.
    let zone = if labels.len() >= 2 { labels[labels.len() - 2] } else { qname };
    let mut an = 0u16;
    let mut ns = 0u16;
    if nxdomain {
        let at = put_rr_head(&mut m, zone, DnsQType::Soa as u16, 900);
        m.extend_from_slice(b"\x03ns1");
        put_ptr(&mut m, zone);
        m.extend_from_slice(b"\x0ahostmaster");
        put_ptr(&mut m, zone);
        m.extend_from_slice(&(2_026_110_301u32).to_be_bytes());
        for v in [7200u32, 3600, 1_209_600, 300] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        close_rdata(&mut m, at);
        ns = 1;
    } else {
        match qtype {
            DnsQType::A | DnsQType::Aaaa | DnsQType::Cname => {
                let mut owner = qname;
                if qtype == DnsQType::Cname || rng.chance(0.3) {
                    let at = put_rr_head(&mut m, qname, DnsQType::Cname as u16, 300);
                    let target_at = m.len() as u16;
                    let edge = if rng.chance(0.5) { "edgekey" } else { "cdn" };
                    m.extend_from_slice(&[edge.len() as u8]);
                    m.extend_from_slice(edge.as_bytes());
                    // ".example-cdn.net"
                    m.extend_from_slice(b"\x0bexample-cdn\x03net\x00");
                    close_rdata(&mut m, at);
                    an += 1;
                    owner = target_at;
                }
                if qtype != DnsQType::Cname {
                    for i in 0..rng.range(1, 4) {
                        if qtype == DnsQType::A {
                            let at = put_rr_head(&mut m, owner, 1, 60 + rng.below(3540) as u32);
                            m.extend_from_slice(&addr_for(name, i));
                            close_rdata(&mut m, at);
                        } else {
                            let at = put_rr_head(&mut m, owner, 28, 300);
                            let mut a6 = [0u8; 16];
                            a6[..4].copy_from_slice(&[0x26, 0x06, 0x47, 0x00]);
                            a6[8..].copy_from_slice(&fnv(name.as_bytes()).wrapping_add(i).to_be_bytes());
                            m.extend_from_slice(&a6);
                            close_rdata(&mut m, at);
                        }
                        an += 1;
                    }
                }
            }
            DnsQType::Mx => {
                for i in 0..rng.range(1, 3) as u16 {
                    let at = put_rr_head(&mut m, qname, 15, 3600);
                    m.extend_from_slice(&(10 * (i + 1)).to_be_bytes());
                    let _ = write!(m, "\x05mail{}", i + 1);
                    put_ptr(&mut m, zone);
                    close_rdata(&mut m, at);
                    an += 1;
                }
            }
            DnsQType::Txt | DnsQType::Soa => {
                let at = put_rr_head(&mut m, qname, 16, 3600);
                let spf = b"v=spf1 include:spf.protection.outlook.com include:_spf.example.gov -all";
                m.push(spf.len() as u8);
                m.extend_from_slice(spf);
                close_rdata(&mut m, at);
                an += 1;
                let at = put_rr_head(&mut m, qname, 16, 3600);
                let mut tok = [0u8; 24];
                rng.fill(&mut tok);
                let _ = write!(m, "\x3cgoogle-site-verification=");
                for b in tok.iter().take(17) {
                    let _ = write!(m, "{:02x}", b);
                }
                close_rdata(&mut m, at);
                an += 1;
            }
        }
        // Large TXT data (e.g. DKIM/DNSSEC-sized answers) in 255-byte strings.
        let mut left = bulk_txt;
        while left > 0 {
            let at = put_rr_head(&mut m, qname, 16, 300);
            let mut in_rr = 0;
            while left > 0 && in_rr < 4 {
                let n = left.min(255);
                m.push(n as u8);
                for _ in 0..n {
                    m.push(b'A' + (rng.below(26) as u8));
                }
                left -= n;
                in_rr += 1;
            }
            close_rdata(&mut m, at);
            an += 1;
        }
    }
    if edns {
        put_opt(&mut m, 4096);
    }
    m[6..8].copy_from_slice(&an.to_be_bytes());
    m[8..10].copy_from_slice(&ns.to_be_bytes());
    m
}

// ---------------------------------------------------------------------------------------------
// TLS

/// Maximum TLS plaintext fragment (RFC 8446 §5.1); application data records never exceed it.
pub const TLS_MAX_FRAGMENT: usize = 16_384;

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
}

/// Wraps `body` as a TLS record of `content_type`.
pub fn tls_record(out: &mut Vec<u8>, content_type: u8, version: u16, body: &[u8]) {
    out.push(content_type);
    put_u16(out, version);
    put_u16(out, body.len() as u16);
    out.extend_from_slice(body);
}

fn handshake(out: &mut Vec<u8>, msg_type: u8, body: &[u8]) {
    out.push(msg_type);
    put_u24(out, body.len());
    out.extend_from_slice(body);
}

fn ext(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    put_u16(out, ty);
    put_u16(out, body.len() as u16);
    out.extend_from_slice(body);
}

/// A browser-like ClientHello record: GREASE, SNI, groups, ALPN, key share, supported versions.
pub fn client_hello(rng: &mut Rng, sni: &str, chrome_like: bool) -> Vec<u8> {
    let grease = [0x0a0au16, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a][rng.below(8) as usize];
    let mut b = Vec::with_capacity(600);
    put_u16(&mut b, 0x0303);
    let mut random = [0u8; 32];
    rng.fill(&mut random);
    b.extend_from_slice(&random);
    b.push(32);
    let mut sid = [0u8; 32];
    rng.fill(&mut sid);
    b.extend_from_slice(&sid);
    let suites: &[u16] = if chrome_like {
        &[0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
    } else {
        &[0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc009, 0xc013, 0xc014, 0x0033, 0x0039, 0x002f, 0x0035]
    };
    let mut sl = Vec::new();
    if chrome_like {
        put_u16(&mut sl, grease);
    }
    for &s in suites {
        put_u16(&mut sl, s);
    }
    put_u16(&mut b, sl.len() as u16);
    b.extend_from_slice(&sl);
    b.extend_from_slice(&[1, 0]);
    let mut e = Vec::with_capacity(400);
    if chrome_like {
        ext(&mut e, grease, &[]);
    }
    let mut sn = Vec::new();
    put_u16(&mut sn, (sni.len() + 3) as u16);
    sn.push(0);
    put_u16(&mut sn, sni.len() as u16);
    sn.extend_from_slice(sni.as_bytes());
    ext(&mut e, 0, &sn);
    ext(&mut e, 23, &[]);
    ext(&mut e, 0xff01, &[0]);
    ext(&mut e, 10, &[0, 8, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19]);
    ext(&mut e, 11, &[1, 0]);
    ext(&mut e, 35, &[]);
    ext(&mut e, 16, b"\x00\x0c\x02h2\x08http/1.1");
    ext(&mut e, 5, &[1, 0, 0, 0, 0]);
    ext(&mut e, 13, &[0, 16, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1]);
    ext(&mut e, 18, &[]);
    let mut ks = vec![0, 36, 0x00, 0x1d, 0, 32];
    let mut pk = [0u8; 32];
    rng.fill(&mut pk);
    ks.extend_from_slice(&pk);
    ext(&mut e, 51, &ks);
    ext(&mut e, 45, &[1, 1]);
    ext(&mut e, 43, &[4, 0x03, 0x04, 0x03, 0x03]);
    if chrome_like {
        ext(&mut e, 27, &[2, 0, 2]);
        // Padding to a 512-byte ClientHello, as BoringSSL does.
        let cur = b.len() + 2 + e.len() + 4;
        if cur < 508 {
            ext(&mut e, 21, &vec![0u8; 508 - cur]);
        }
    }
    put_u16(&mut b, e.len() as u16);
    b.extend_from_slice(&e);
    let mut hs = Vec::with_capacity(b.len() + 4);
    handshake(&mut hs, 1, &b);
    let mut rec = Vec::with_capacity(hs.len() + 5);
    tls_record(&mut rec, 22, 0x0301, &hs);
    rec
}

/// Server's first flight for TLS 1.2: ServerHello, Certificate, ServerKeyExchange,
/// ServerHelloDone in one handshake record.
pub fn server_flight_tls12(rng: &mut Rng, chain: &CertChain) -> Vec<u8> {
    let mut sh = Vec::with_capacity(100);
    put_u16(&mut sh, 0x0303);
    let mut random = [0u8; 32];
    rng.fill(&mut random);
    sh.extend_from_slice(&random);
    sh.push(32);
    let mut sid = [0u8; 32];
    rng.fill(&mut sid);
    sh.extend_from_slice(&sid);
    put_u16(&mut sh, 0xc02b);
    sh.push(0);
    let mut e = Vec::new();
    ext(&mut e, 0xff01, &[0]);
    ext(&mut e, 11, &[1, 0]);
    ext(&mut e, 23, &[]);
    ext(&mut e, 16, b"\x00\x09\x08http/1.1");
    put_u16(&mut sh, e.len() as u16);
    sh.extend_from_slice(&e);

    let mut certs = Vec::new();
    for d in &chain.ders {
        put_u24(&mut certs, d.len());
        certs.extend_from_slice(d);
    }
    let mut cert_body = Vec::with_capacity(certs.len() + 3);
    put_u24(&mut cert_body, certs.len());
    cert_body.extend_from_slice(&certs);

    let mut ske = vec![3, 0x00, 0x1d, 32];
    let mut pk = [0u8; 32];
    rng.fill(&mut pk);
    ske.extend_from_slice(&pk);
    ske.extend_from_slice(&[0x08, 0x07, 0, 64]);
    let mut sig = [0u8; 64];
    rng.fill(&mut sig);
    ske.extend_from_slice(&sig);

    let mut hs = Vec::with_capacity(sh.len() + cert_body.len() + ske.len() + 16);
    handshake(&mut hs, 2, &sh);
    handshake(&mut hs, 11, &cert_body);
    handshake(&mut hs, 12, &ske);
    handshake(&mut hs, 14, &[]);
    let mut out = Vec::with_capacity(hs.len() + 10);
    // A record carries at most 2^14 bytes; the chain here is far smaller, but split anyway.
    for chunk in hs.chunks(TLS_MAX_FRAGMENT) {
        tls_record(&mut out, 22, 0x0303, chunk);
    }
    out
}

/// Server's first flight for TLS 1.3: ServerHello (supported_versions, key_share), the
/// compatibility ChangeCipherSpec, then the encrypted handshake as application-data records.
pub fn server_flight_tls13(rng: &mut Rng, pools: &Pools, enc_len: usize) -> Vec<u8> {
    let mut sh = Vec::with_capacity(128);
    put_u16(&mut sh, 0x0303);
    let mut random = [0u8; 32];
    rng.fill(&mut random);
    sh.extend_from_slice(&random);
    sh.push(32);
    let mut sid = [0u8; 32];
    rng.fill(&mut sid);
    sh.extend_from_slice(&sid);
    put_u16(&mut sh, 0x1301);
    sh.push(0);
    let mut e = Vec::new();
    ext(&mut e, 43, &[0x03, 0x04]);
    let mut ks = vec![0x00, 0x1d, 0, 32];
    let mut pk = [0u8; 32];
    rng.fill(&mut pk);
    ks.extend_from_slice(&pk);
    ext(&mut e, 51, &ks);
    put_u16(&mut sh, e.len() as u16);
    sh.extend_from_slice(&e);
    let mut hs = Vec::new();
    handshake(&mut hs, 2, &sh);
    let mut out = Vec::with_capacity(hs.len() + enc_len + 32);
    tls_record(&mut out, 22, 0x0303, &hs);
    tls_record(&mut out, 20, 0x0303, &[1]);
    app_data_records(rng, pools, enc_len, &mut out);
    out
}

/// Appends `len` bytes of ciphertext as application-data records (each ≤ 16 KiB + 16 tag).
pub fn app_data_records(rng: &mut Rng, pools: &Pools, mut len: usize, out: &mut Vec<u8>) {
    while len > 0 {
        let n = len.min(TLS_MAX_FRAGMENT + 16);
        out.push(23);
        put_u16(out, 0x0303);
        put_u16(out, n as u16);
        pools.random_into(rng.below(RANDOM_POOL as u64) as usize, n, out);
        len -= n;
    }
}

/// Client's second flight for TLS 1.2: ClientKeyExchange, ChangeCipherSpec, encrypted Finished.
pub fn client_finish_tls12(rng: &mut Rng) -> Vec<u8> {
    let mut cke = vec![32];
    let mut pk = [0u8; 32];
    rng.fill(&mut pk);
    cke.extend_from_slice(&pk);
    let mut hs = Vec::new();
    handshake(&mut hs, 16, &cke);
    let mut out = Vec::with_capacity(128);
    tls_record(&mut out, 22, 0x0303, &hs);
    tls_record(&mut out, 20, 0x0303, &[1]);
    let mut fin = [0u8; 40];
    rng.fill(&mut fin);
    tls_record(&mut out, 22, 0x0303, &fin);
    out
}

/// Server's ChangeCipherSpec + encrypted Finished (TLS 1.2), or a client's CCS + Finished
/// (TLS 1.3, `tls13`).
pub fn ccs_finished(rng: &mut Rng, tls13: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    tls_record(&mut out, 20, 0x0303, &[1]);
    let n = if tls13 { 53 } else { 40 };
    let mut fin = [0u8; 53];
    rng.fill(&mut fin[..n]);
    tls_record(&mut out, if tls13 { 23 } else { 22 }, 0x0303, &fin[..n]);
    out
}

/// An encrypted close_notify alert.
pub fn close_notify(rng: &mut Rng, tls13: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    let n = if tls13 { 19 } else { 26 };
    let mut a = [0u8; 26];
    rng.fill(&mut a[..n]);
    tls_record(&mut out, if tls13 { 23 } else { 21 }, 0x0303, &a[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a possibly compressed name at `off`; returns (name, offset after it). Pointers must
    /// point backwards, so a loop is impossible.
    fn read_name(m: &[u8], mut off: usize) -> (String, usize) {
        let mut name = String::new();
        let mut end = None;
        loop {
            let len = m[off] as usize;
            if len & 0xc0 == 0xc0 {
                let target = ((len & 0x3f) << 8) | m[off + 1] as usize;
                assert!(target < off, "forward compression pointer");
                end.get_or_insert(off + 2);
                off = target;
                continue;
            }
            if len == 0 {
                return (name, end.unwrap_or(off + 1));
            }
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(std::str::from_utf8(&m[off + 1..off + 1 + len]).unwrap());
            off += 1 + len;
        }
    }

    /// Walks every section; returns the owner names and types of all records.
    fn walk(m: &[u8]) -> (String, Vec<(String, u16)>) {
        let counts: Vec<usize> = (0..4).map(|i| u16::from_be_bytes([m[4 + 2 * i], m[5 + 2 * i]]) as usize).collect();
        assert_eq!(counts[0], 1);
        let (q, mut off) = read_name(m, 12);
        off += 4;
        let mut rrs = Vec::new();
        for _ in 0..counts[1] + counts[2] + counts[3] {
            let (owner, o) = read_name(m, off);
            let ty = u16::from_be_bytes([m[o], m[o + 1]]);
            let rdlen = u16::from_be_bytes([m[o + 8], m[o + 9]]) as usize;
            let rdata = o + 10;
            if matches!(ty, 5 | 15) {
                // Names inside rdata must decode and end exactly at the rdata's end.
                let start = if ty == 15 { rdata + 2 } else { rdata };
                let (_, after) = read_name(m, start);
                assert_eq!(after, rdata + rdlen, "rdata length of type {ty}");
            }
            rrs.push((owner, ty));
            off = rdata + rdlen;
        }
        assert_eq!(off, m.len(), "trailing bytes after the last record");
        (q, rrs)
    }

    #[test]
    fn dns_messages_parse_with_compression() {
        let mut rng = Rng::new(3);
        let qname = "elections.sos.example.gov";
        for _ in 0..20 {
            for (qt, nx) in [
                (DnsQType::A, false),
                (DnsQType::Aaaa, false),
                (DnsQType::Cname, false),
                (DnsQType::Mx, false),
                (DnsQType::Txt, false),
                (DnsQType::A, true),
            ] {
                let q = dns_query(0x1234, qname, qt, true);
                assert_eq!(walk(&q).0, qname);
                let r = dns_response(&mut rng, 0x1234, qname, qt, true, nx, 0);
                assert_eq!(r[3] & 0x0f, if nx { 3 } else { 0 });
                let (q, rrs) = walk(&r);
                assert_eq!(q, qname);
                assert_eq!(rrs.last().unwrap().1, 41, "EDNS OPT last");
                let answers: Vec<_> = rrs.iter().filter(|r| r.1 != 41).collect();
                if nx {
                    assert_eq!(answers.len(), 1);
                    assert_eq!(answers[0], &("example.gov".to_string(), 6));
                } else {
                    assert!(!answers.is_empty());
                    assert_eq!(answers[0].0, qname, "first answer owned by the qname");
                    let want = match qt {
                        DnsQType::Aaaa => 28,
                        DnsQType::Soa => 6,
                        t => t as u16,
                    };
                    assert!(answers.iter().any(|a| a.1 == want), "{qt:?} has no record of its type");
                }
            }
        }
    }

    #[test]
    fn bulk_txt_makes_large_answers() {
        let mut rng = Rng::new(1);
        let r = dns_response(&mut rng, 1, "example.gov", DnsQType::Txt, true, false, 3000);
        assert!(r.len() > 3000);
        let (_, rrs) = walk(&r);
        assert!(rrs.len() > 3);
    }

    #[test]
    fn client_hello_carries_sni_and_is_one_record() {
        let mut rng = Rng::new(9);
        let ch = client_hello(&mut rng, "voterportal.example.gov", true);
        assert_eq!(ch[0], 22);
        assert_eq!(usize::from(u16::from_be_bytes([ch[3], ch[4]])), ch.len() - 5);
        assert_eq!(ch[5], 1);
        assert!(ch.windows(23).any(|w| w == b"voterportal.example.gov"));
    }

    #[test]
    fn pools_are_deterministic_and_certs_are_der() {
        let a = Pools::build(&mut Rng::new(5)).unwrap();
        let b = Pools::build(&mut Rng::new(5)).unwrap();
        assert_eq!(a.random[..64], b.random[..64]);
        assert_eq!(a.certs.len(), TLS_NAMES.len());
        for (x, y) in a.certs.iter().zip(&b.certs) {
            assert_eq!(x.ders, y.ders, "certificates must be reproducible for a seed");
            assert_eq!(x.ders[0][0], 0x30, "DER SEQUENCE");
        }
        let mut d = flate2::read::GzDecoder::new(&a.gzip[0][..]);
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut s).unwrap();
        assert_eq!(s.len(), GZIP_SIZES[0]);
    }
}
