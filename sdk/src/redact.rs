//! Taking a secret (the request's bearer token) out of what a server sends back, so that a
//! server that echoes it cannot get it stored, printed or logged.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// `text` with every occurrence of `secret` replaced by [`REDACTED`], or `None` when it holds
/// none (so that the common case copies nothing). An empty secret matches nothing.
///
/// ```
/// use dynamic_waas_api::redact::redact;
///
/// let echoed = br#"{"error":"bad token Bearer dyn_abc"}"#;
/// let clean = redact(echoed, b"dyn_abc").unwrap();
/// assert_eq!(clean, br#"{"error":"bad token Bearer [redacted]"}"#);
/// assert_eq!(redact(b"nothing here", b"dyn_abc"), None);
/// ```
///
/// A text that ends with the start of the secret (a body cut off at a size bound in the
/// middle of it) loses that end too.
pub fn redact(text: &[u8], secret: &[u8]) -> Option<Vec<u8>> {
    let cut = cut_tail(text, secret);
    let whole = &text[..text.len() - cut];
    let first = find(whole, secret, 0);
    if first.is_none() && cut == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len());
    let mut start = 0;
    let mut next = first;
    while let Some(at) = next {
        out.extend_from_slice(&whole[start..at]);
        out.extend_from_slice(REDACTED.as_bytes());
        start = at + secret.len();
        next = find(whole, secret, start);
    }
    out.extend_from_slice(&whole[start..]);
    if cut > 0 {
        out.extend_from_slice(REDACTED.as_bytes());
    }
    Some(out)
}

/// How many bytes at the end of `text` are the start of `secret` (8 or more: a shorter end is
/// too common to be taken for a cut secret).
fn cut_tail(text: &[u8], secret: &[u8]) -> usize {
    (8..secret.len())
        .rev()
        .find(|&n| n <= text.len() && text.ends_with(&secret[..n]))
        .unwrap_or(0)
}

/// [`redact`] on shared bytes: the same bytes back when the secret is absent.
pub fn redact_bytes(bytes: Bytes, secret: &[u8]) -> Bytes {
    match redact(&bytes, secret) {
        Some(clean) => Bytes::from(clean),
        None => bytes,
    }
}

/// [`redact`] on every header value.
pub fn redact_headers(headers: &mut HeaderMap, secret: &[u8]) {
    for value in headers.values_mut() {
        if let Some(clean) = redact(value.as_bytes(), secret) {
            *value = HeaderValue::from_bytes(&clean).unwrap_or(HeaderValue::from_static(REDACTED));
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer_secret(authorization: &HeaderValue) -> Option<&[u8]> {
    authorization
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .filter(|token| !token.is_empty())
}

fn find(text: &[u8], secret: &[u8], from: usize) -> Option<usize> {
    if secret.is_empty() || from >= text.len() {
        return None;
    }
    text[from..]
        .windows(secret.len())
        .position(|window| window == secret)
        .map(|at| at + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_goes_and_nothing_else_changes() {
        assert_eq!(
            redact(b"tok x tok tok", b"tok").unwrap(),
            b"[redacted] x [redacted] [redacted]"
        );
        assert_eq!(redact(b"to", b"tok"), None);
        assert_eq!(redact(b"anything", b""), None);
        assert_eq!(redact(b"", b"tok"), None);
        // Cut off in the middle of the secret at a size bound.
        assert_eq!(
            redact(b"echo dyn_0123456", b"dyn_0123456789").unwrap(),
            b"echo [redacted]"
        );
        assert_eq!(redact(b"ends with dyn", b"dyn_0123456789"), None);
        let mut headers = HeaderMap::new();
        headers.insert("x-echo", HeaderValue::from_static("Bearer tok"));
        headers.insert("x-other", HeaderValue::from_static("fine"));
        redact_headers(&mut headers, b"tok");
        assert_eq!(headers["x-echo"], "Bearer [redacted]");
        assert_eq!(headers["x-other"], "fine");
        let bearer = HeaderValue::from_static("Bearer dyn_1");
        assert_eq!(bearer_secret(&bearer), Some(&b"dyn_1"[..]));
        assert_eq!(bearer_secret(&HeaderValue::from_static("Basic x")), None);
    }
}
