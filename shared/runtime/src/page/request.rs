//! The requests the metrics endpoint answers: a request line and its headers, and for the admin
//! actions' POSTs a small form body (see [`super::admin`]).
//!
//! Pure parsing of the bytes read (bounded by the caller); the endpoint answers one request per
//! connection, so keep-alive and chunking never come up.

/// Parameters kept from a query string; the rest is ignored.
const MAX_PARAMS: usize = 32;

/// Why a request was not understood (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// No `METHOD TARGET HTTP/x` line.
    #[error("malformed request line")]
    Malformed,
    /// The target is not a path (`*`, an absolute URL).
    #[error("request target is not an origin path")]
    Target,
}

/// A request for the page, as the daemon's [`super::PageFn`] sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// The path as sent (`/` or `/index.html`), without the query.
    pub path: String,
    /// The raw query string after `?`, without the `?` (still percent-encoded).
    pub query: String,
    /// The `Host` header, if it was sent and looks like a host (letters, digits, `.-:[]`).
    pub host: Option<String>,
    /// What the page may offer of the admin actions (set by the endpoint).
    pub admin: super::admin::AdminState,
}

/// The header lines of a request, kept for the few the endpoint reads (cookie, origin, length).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    lines: Vec<(String, String)>,
}

impl Head {
    /// The headers of the request head `head` (the bytes up to the blank line).
    pub fn parse(head: &[u8]) -> Self {
        let text = String::from_utf8_lossy(head);
        let lines = text
            .split('\n')
            .skip(1)
            .map(|l| l.trim_end_matches('\r'))
            .take_while(|l| !l.is_empty())
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .take(64)
            .collect();
        Head { lines }
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.lines
            .iter()
            .find_map(|(n, v)| (n == name).then(|| v.clone()))
    }

    /// The value of cookie `name`, from every `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.lines
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == name && !v.is_empty()).then(|| v.to_owned())
            })
    }
}

/// The fields of an `application/x-www-form-urlencoded` body (at most 32).
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    PageRequest {
        query: String::from_utf8_lossy(body).into_owned(),
        ..PageRequest::default()
    }
    .params()
}

impl PageRequest {
    /// The decoded query parameters, in order (at most 32; `+` is a space).
    pub fn params(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .take(MAX_PARAMS)
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect()
    }

    /// The first value of the query parameter `name`, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find_map(|(k, v)| (k == name).then_some(v))
    }

    /// A relative link to this page with the query parameters of `set` replaced (an empty value
    /// removes the parameter) and the others kept: `?q=web&page=2`, or `./` when none remain.
    pub fn link_with(&self, set: &[(&str, &str)]) -> String {
        let mut params: Vec<(String, String)> = self
            .params()
            .into_iter()
            .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
            .collect();
        params.extend(
            set.iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        if params.is_empty() {
            return "./".to_owned();
        }
        let q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("?{}", q.join("&"))
    }
}

/// Parses the head of a request: its method and what the page needs of it.
pub fn parse(head: &[u8]) -> Result<(String, PageRequest), RequestError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    // The version may be missing (`GET /metrics` typed into nc), as the endpoint always allowed.
    let (Some(method), Some(target), version, None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed);
    };
    if !version.is_none_or(|v| v.starts_with("HTTP/"))
        || !method.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(RequestError::Malformed);
    }
    if !target.starts_with('/') {
        return Err(RequestError::Target);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let host = lines
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("host")
                .then(|| value.trim())
        })
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_owned);
    Ok((
        method.to_owned(),
        PageRequest {
            path: path.to_owned(),
            query: query.split('#').next().unwrap_or_default().to_owned(),
            host,
            admin: super::admin::AdminState::Off,
        },
    ))
}

/// Percent-decoding of a query component (`+` is a space); invalid escapes stay as they are,
/// invalid UTF-8 becomes U+FFFD.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Percent-encoding of a query component: unreserved characters stay, everything else is escaped.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(head: &str) -> (String, PageRequest) {
        parse(head.as_bytes()).unwrap()
    }

    #[test]
    fn request_line_query_and_host() {
        let (m, r) = req("GET /?q=web%201&page=2&x HTTP/1.1\r\nHost: lan.example:9102\r\n\r\n");
        assert_eq!(m, "GET");
        assert_eq!(r.path, "/");
        assert_eq!(r.host.as_deref(), Some("lan.example:9102"));
        assert_eq!(r.param("q").as_deref(), Some("web 1"));
        assert_eq!(r.param("page").as_deref(), Some("2"));
        assert_eq!(r.param("x").as_deref(), Some(""));
        assert_eq!(r.param("y"), None);
        let (m, r) = req("HEAD /metrics HTTP/1.0\r\n\r\n");
        assert_eq!(
            (m.as_str(), r.path.as_str(), r.host),
            ("HEAD", "/metrics", None)
        );
        let (m, r) = req("GET /metrics\r\n\r\n");
        assert_eq!((m.as_str(), r.path.as_str()), ("GET", "/metrics"));
    }

    #[test]
    fn bad_requests() {
        assert_eq!(
            parse(b"GET / XTTP/1.1\r\n\r\n"),
            Err(RequestError::Malformed)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1 x\r\n\r\n"),
            Err(RequestError::Malformed)
        );
        assert_eq!(parse(b""), Err(RequestError::Malformed));
        assert_eq!(parse(b"get / HTTP/1.1\r\n"), Err(RequestError::Malformed));
        assert_eq!(parse(b"GET * HTTP/1.1\r\n"), Err(RequestError::Target));
        assert_eq!(
            parse(b"GET http://x/ HTTP/1.1\r\n"),
            Err(RequestError::Target)
        );
        // A host header with markup in it is dropped.
        let (_, r) = req("GET / HTTP/1.1\r\nHost: <x>\r\n\r\n");
        assert_eq!(r.host, None);
    }

    #[test]
    fn decoding_and_links() {
        assert_eq!(decode("a+b%3Cc%3e%zz%4"), "a b<c>%zz%4");
        assert_eq!(decode("%E2%82%AC%FF"), "€\u{FFFD}");
        let (_, r) = req("GET /?q=a%26b&page=3 HTTP/1.1\r\n\r\n");
        assert_eq!(r.link_with(&[("page", "4")]), "?q=a%26b&page=4");
        assert_eq!(r.link_with(&[("q", ""), ("page", "")]), "./");
        assert_eq!(r.link_with(&[("q", "<x y>")]), "?page=3&q=%3Cx%20y%3E");
    }
}
