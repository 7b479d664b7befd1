//! Taking a secret (the request's bearer token) out of what a server sends back, so that a
//! server that echoes it cannot get it stored, printed or logged.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

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
/// An occurrence may be written with JSON escapes (`\"`, `\\`, `\/`, `\u0064`, ...): a JSON
/// encoder escapes a token's `"` and `\` (some also `/`), a hostile server any character, and
/// whoever decodes the text gets the secret back.
///
/// ```
/// use dynamic_waas_api::redact::redact;
///
/// let escaped = br#"{"code":"\u0064yn\/abc"}"#;
/// assert_eq!(redact(escaped, b"dyn/abc").unwrap(), br#"{"code":"[redacted]"}"#);
/// ```
///
/// A text that ends with the start of the secret (a body cut off at a size bound in the
/// middle of it) loses that end too.
///
/// What is left never holds the secret again: a secret that starts (or ends) like
/// [`REDACTED`] ends (or starts) could be spelled anew by a replacement and the text next to
/// it, so the result is redacted again, and a text that still holds it after that is
/// [`REDACTED`] whole (a secret that `[redacted]` itself holds excepted).
///
/// ```
/// use dynamic_waas_api::redact::redact;
///
/// let clean = redact(b"]tok tok end", b"]tok").unwrap();
/// assert_eq!(clean, b"[redacted] tok end");
/// let clean = redact(b"]tok_tok_", b"]tok_").unwrap();
/// assert!(!clean.windows(5).any(|w| w == b"]tok_"));
/// ```
pub fn redact(text: &[u8], secret: &[u8]) -> Option<Vec<u8>> {
    let mut out = redact_once(text, secret)?;
    if REDACTED
        .as_bytes()
        .windows(secret.len())
        .any(|w| w == secret)
    {
        // A secret `[redacted]` itself holds: no replacement can hide it.
        return Some(out);
    }
    // Only a secret that shares bytes with `[redacted]` can be spelled anew; each pass
    // takes what the last one spelled.
    for _ in 0..3 {
        match redact_once(&out, secret) {
            Some(again) => out = again,
            None => return Some(out),
        }
    }
    Some(REDACTED.as_bytes().to_vec())
}

/// One pass of [`redact`]: every occurrence in `text` replaced.
fn redact_once(text: &[u8], secret: &[u8]) -> Option<Vec<u8>> {
    let first = *secret.first()?;
    let mut out: Option<Vec<u8>> = None;
    // `text[..kept]` is copied to `out` (or needs no copy yet).
    let mut kept = 0;
    let mut at = 0;
    // Only the secret's first byte, or an escape of it, starts an occurrence.
    while let Some(found) = memchr::memchr2(first, b'\\', &text[at..]) {
        at += found;
        if !could_start(&text[at..], secret) {
            at += 1;
            continue;
        }
        let end = match written_at(text, at, secret) {
            Written::Whole { end } => end,
            Written::Cut { matched } if matched >= CUT_MIN => text.len(),
            Written::Cut { .. } | Written::Not => {
                at += 1;
                continue;
            }
        };
        let out = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
        out.extend_from_slice(&text[kept..at]);
        out.extend_from_slice(REDACTED.as_bytes());
        kept = end;
        at = end;
    }
    let mut out = out?;
    out.extend_from_slice(&text[kept..]);
    Some(out)
}

/// Whether `text` may start with the secret: its first byte (as itself or escaped) followed
/// by its second (as itself, or the start of an escape), or by the text's end. A cheap test
/// that spares the full one (which follows every way of writing the secret) nearly every
/// place a body holds the secret's first byte.
fn could_start(text: &[u8], secret: &[u8]) -> bool {
    let first = secret[0];
    let then = |rest: &[u8]| match (rest.first(), secret.get(1)) {
        (None, _) | (_, None) => true,
        (Some(&byte), Some(&wanted)) => byte == wanted || byte == b'\\',
    };
    if text.first() == Some(&first) && then(&text[1..]) {
        return true;
    }
    match escape_of(text, first) {
        Some(len) => then(&text[len..]),
        None => is_cut_escape_of(text, first),
    }
}

/// How many bytes of the secret a text must end with to be taken for a cut secret: a shorter
/// end is too common.
const CUT_MIN: usize = 8;

/// Whether, and how, a secret is written at a place in a text.
enum Written {
    /// Whole, up to `end`.
    Whole { end: usize },
    /// Its first `matched` bytes, and then the text ends.
    Cut { matched: usize },
    /// Not there.
    Not,
}

/// Whether `secret` is written at `text[at..]`, each byte as itself or as a JSON escape of
/// it. A `\` of the secret may be written either way, so every way is followed: the text
/// positions its first bytes can end at are kept as a set.
fn written_at(text: &[u8], at: usize, secret: &[u8]) -> Written {
    let mut ends = vec![at];
    let mut cut: Option<usize> = None;
    for (n, &wanted) in secret.iter().enumerate() {
        let mut next: Vec<usize> = Vec::with_capacity(2);
        for &i in &ends {
            let rest = &text[i..];
            if rest.is_empty() || is_cut_escape_of(rest, wanted) {
                cut = cut.max(Some(n));
            }
            let literal = (rest.first() == Some(&wanted)).then_some(1);
            for len in [escape_of(rest, wanted), literal].into_iter().flatten() {
                if !next.contains(&(i + len)) {
                    next.push(i + len);
                }
            }
        }
        if next.is_empty() {
            return cut.map_or(Written::Not, |matched| Written::Cut { matched });
        }
        ends = next;
    }
    // The longest way: a `\\` of the text is not left half redacted.
    let end = ends.into_iter().max().unwrap_or(at);
    Written::Whole { end }
}

/// The length of the JSON escape of `byte` that `text` starts with, if it starts with one.
fn escape_of(text: &[u8], byte: u8) -> Option<usize> {
    match text {
        [b'\\', c, ..] if *c == byte && matches!(byte, b'"' | b'\\' | b'/') => Some(2),
        [b'\\', b'u', hex @ ..] if hex.len() >= 4 => {
            let code = std::str::from_utf8(&hex[..4])
                .ok()
                .and_then(|h| u16::from_str_radix(h, 16).ok())?;
            (code == u16::from(byte)).then_some(6)
        }
        _ => None,
    }
}

/// Whether `text` is a JSON escape of `byte` cut short.
fn is_cut_escape_of(text: &[u8], byte: u8) -> bool {
    if text.first() != Some(&b'\\') {
        return false;
    }
    let short = matches!(byte, b'"' | b'\\' | b'/') && text.len() == 1;
    let unicode = text.len() < 6
        && text.get(1).is_none_or(|&u| u == b'u')
        && text[text.len().min(2)..]
            .iter()
            .zip(format!("{byte:04x}").bytes())
            .all(|(have, want)| have.eq_ignore_ascii_case(&want));
    short || unicode
}

/// [`redact`] on shared bytes: the same bytes back when the secret is absent.
pub fn redact_bytes(bytes: Bytes, secret: &[u8]) -> Bytes {
    match redact(&bytes, secret) {
        Some(clean) => Bytes::from(clean),
        None => bytes,
    }
}

/// [`redact`] on every header value; a header whose name holds the secret (HTTP lower-cases
/// names, so in any case) is kept as `x-redacted`, its value redacted too.
pub fn redact_headers(headers: &mut HeaderMap, secret: &[u8]) {
    if secret.is_empty() {
        return;
    }
    for value in headers.values_mut() {
        if let Some(clean) = redact(value.as_bytes(), secret) {
            *value = HeaderValue::from_bytes(&clean).unwrap_or(HeaderValue::from_static(REDACTED));
        }
    }
    let named = |name: &HeaderName| {
        name.as_str()
            .as_bytes()
            .windows(secret.len())
            .any(|w| w.eq_ignore_ascii_case(secret))
    };
    if !headers.keys().any(named) {
        return;
    }
    let names: Vec<HeaderName> = headers.keys().filter(|n| named(n)).cloned().collect();
    for name in names {
        let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        headers.remove(&name);
        for value in values {
            headers.append(REDACTED_NAME.clone(), value);
        }
    }
}

/// The name a header whose name held the secret is kept under.
static REDACTED_NAME: HeaderName = HeaderName::from_static("x-redacted");

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer_secret(authorization: &HeaderValue) -> Option<&[u8]> {
    authorization
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .filter(|token| !token.is_empty())
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
        // Written with JSON escapes, whole or cut.
        let secret = br#"dyn_q"b\s/0123"#;
        for written in [
            &br#"x dyn_q\"b\\s\/0123 y"#[..],
            br#"x \u0064yn_q\u0022b\u005Cs\u002f0123 y"#,
        ] {
            assert_eq!(
                redact(written, secret).unwrap(),
                b"x [redacted] y",
                "{written:?}"
            );
        }
        assert_eq!(
            redact(br#"x dyn_q\"b\\s\u00"#, secret).unwrap(),
            b"x [redacted]"
        );
        assert_eq!(redact(br#"x dyn_q\"b\\"#, secret).unwrap(), b"x [redacted]");
        assert_eq!(redact(br#"\\\u0041 dyn_"#, secret), None);
        assert_eq!(redact(br#"a\u0064"#, b"d"), Some(b"a[redacted]".to_vec()));
        // A secret holding what reads as an escape of its own `\`, written as itself or escaped.
        let secret = br#"dyn_\u005cxyzabc"#;
        assert_eq!(
            redact(br#"x dyn_\u005cxyzabc y"#, secret).unwrap(),
            b"x [redacted] y"
        );
        assert_eq!(
            redact(br#"x dyn_\\u005cxyzabc y"#, secret).unwrap(),
            b"x [redacted] y"
        );
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
