//! Configuring a client: the builder and the rules a configuration must keep.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dynamic_waas_api::RequestOptions;
use secrecy::SecretString;

use crate::auth::{TokenProvider, TokenSource, TOKEN_ENV_VARS, TOKEN_FILE_ENV_VAR};
use crate::budget::RetryBudget;
use crate::client::{Client, Inner, Stats};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::pace::Pacing;
use crate::retry::RetryPolicy;

/// Dynamic's API, as its own generated clients default to.
pub const DEFAULT_BASE_URL: &str = "https://app.dynamicauth.com/api/v0";
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on a response body; a larger one is refused without being read whole.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

enum TokenSpec {
    Fixed(SecretString),
    Provider(Box<dyn TokenProvider>),
}

/// Configures a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use dynamic_waas::{Client, RetryPolicy};
///
/// let client = Client::builder()
///     .token("dyn_example")
///     .retry_policy(RetryPolicy::default().with_max_attempts(5))
///     .connect_timeout(Duration::from_secs(3))
///     .build()
///     .expect("valid configuration");
/// # let _ = client;
/// ```
pub struct ClientBuilder {
    base_url: String,
    token: Option<TokenSpec>,
    policy: RetryPolicy,
    connect_timeout: Duration,
    max_response_bytes: usize,
    pacing: Pacing,
    shape_http: Option<ShapeHttp>,
    metrics: Option<Box<dyn Metrics>>,
}

type ShapeHttp = Box<dyn FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send>;

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &shown_url(&self.base_url))
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("policy", &self.policy)
            .field("pacing", &self.pacing)
            .field("http_client", &self.shape_http.as_ref().map(|_| "shaped"))
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token: None,
            policy: RetryPolicy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            pacing: Pacing::upstream(),
            shape_http: None,
            metrics: None,
        }
    }
}

impl ClientBuilder {
    /// A builder configured from the environment, the rest left at the defaults (so that
    /// "from the environment, with my own pacing" is `ClientBuilder::from_env()?.pacing(..)`):
    ///
    /// - the token from `DYNAMIC_API_TOKEN`, else `DYN_API_TOKEN`, else the file
    ///   `DYNAMIC_API_TOKEN_FILE` names (a mounted secret; one trailing newline is dropped);
    /// - the base URL from `DYNAMIC_BASE_URL`, when set.
    ///
    /// ```no_run
    /// use dynamic_waas::{ClientBuilder, Pacing};
    ///
    /// let client = ClientBuilder::from_env()?
    ///     .pacing(Pacing::upstream().with_per_environment(1_440))
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), dynamic_waas::Error>(())
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = Self::default().token_from_env()?;
        if let Some(url) = std::env::var_os("DYNAMIC_BASE_URL") {
            let url = url.into_string().map_err(|_| {
                Error::invalid_input("DYNAMIC_BASE_URL", "the variable is not valid UTF-8")
            })?;
            builder = builder.base_url(url);
        }
        Ok(builder)
    }

    /// The API's base URL (default [`DEFAULT_BASE_URL`]). Must be `https://`, or `http://`
    /// to a loopback address (for tests): the token is never sent in clear text elsewhere.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// A fixed API token (`dyn_...`).
    pub fn token(mut self, token: impl Into<SecretString>) -> Self {
        self.token = Some(TokenSpec::Fixed(token.into()));
        self
    }

    /// Tokens from a provider that rotates them (see [`TokenProvider`]).
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.token = Some(TokenSpec::Provider(Box::new(provider)));
        self
    }

    /// The token from `DYNAMIC_API_TOKEN`, else `DYN_API_TOKEN`, else the file
    /// `DYNAMIC_API_TOKEN_FILE` names (one trailing newline dropped); an error names all
    /// three when none is set.
    pub fn token_from_env(self) -> Result<Self, Error> {
        for name in TOKEN_ENV_VARS {
            if let Some(value) = std::env::var_os(name) {
                let value = value
                    .into_string()
                    .map_err(|_| Error::invalid_input(name, "the variable is not valid UTF-8"))?;
                return Ok(self.token(value));
            }
        }
        if let Some(path) = std::env::var_os(TOKEN_FILE_ENV_VAR) {
            return Ok(self.token(crate::auth::token_from_file(std::path::Path::new(&path))?));
        }
        Err(Error::invalid_input(
            "token",
            format!(
                "no API token: set {} (or {}) to your Dynamic API token, or {} to a file \
                 holding it",
                TOKEN_ENV_VARS[0], TOKEN_ENV_VARS[1], TOKEN_FILE_ENV_VAR
            ),
        ))
    }

    /// The default retry policy of every call (a call can override it).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The connect timeout (default [`DEFAULT_CONNECT_TIMEOUT`]); a connect failure is
    /// always safe to retry.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Refuses response bodies larger than this (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// How requests are paced (default [`Pacing::upstream`], just under Dynamic's published
    /// limits). Clones of the client share the pacer.
    pub fn pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// Where the client reports what it does, for metrics (see [`Metrics`]).
    pub fn metrics(mut self, metrics: impl Metrics) -> Self {
        self.metrics = Some(Box::new(metrics));
        self
    }

    /// Shapes the `reqwest` client: a proxy, extra root certificates, a client certificate,
    /// pool sizes, HTTP/2 settings. `shape` gets a builder that already has the facade's
    /// `User-Agent` and connect timeout (which it may change).
    ///
    /// Two rules stay whatever `shape` does, because they keep the token safe: the redirect
    /// policy (followed only within the API's origin) is set after it, and a plain-`http`
    /// loopback base URL uses no proxy. Timeouts per attempt and per call are the
    /// [`RetryPolicy`]'s: a `timeout` set here bounds each request too, and a request it stops
    /// is reported as a transport failure.
    ///
    /// ```no_run
    /// # fn demo(pem: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// use dynamic_waas::reqwest;
    ///
    /// let certificate = reqwest::Certificate::from_pem(pem)?;
    /// let client = dynamic_waas::Client::builder()
    ///     .token("dyn_example")
    ///     .http_client(move |http| {
    ///         http.add_root_certificate(certificate)
    ///             .proxy(reqwest::Proxy::https("http://proxy.internal:3128").expect("a proxy URL"))
    ///             .pool_max_idle_per_host(32)
    ///     })
    ///     .build()?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_client(
        mut self,
        shape: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + 'static,
    ) -> Self {
        self.shape_http = Some(Box::new(shape));
        self
    }

    /// Checks the configuration; nothing is sent.
    pub fn build(self) -> Result<Client, Error> {
        let (base_url, url) = check_base_url(&self.base_url)?;
        let tokens = match self.token {
            Some(TokenSpec::Fixed(secret)) => TokenSource::fixed(&secret)?,
            Some(TokenSpec::Provider(provider)) => TokenSource::provider(provider),
            None => {
                return Err(Error::invalid_input(
                    "token",
                    format!(
                        "no API token: call .token(..) or .token_provider(..), or set {} and \
                         use Client::from_env()",
                        TOKEN_ENV_VARS[0]
                    ),
                ))
            }
        };
        let pacer = self.pacing.build(self.policy.max_retry_after())?;
        #[cfg(feature = "rustls-ring")]
        {
            // reqwest needs a process-wide provider when built without its own; one installed
            // already (by the caller, or an earlier client) stays.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("dynamic-waas-rust/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout);
        if let Some(shape) = self.shape_http {
            http = shape(http);
        }
        // After the caller's shaping, so that it cannot be undone.
        http = http.redirect(same_origin_redirects());
        let host = url.host_str().unwrap_or("").to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        if url.scheme() == "http" {
            // Plain http is allowed only to loopback; an environment proxy (`http_proxy`,
            // `ALL_PROXY`) would carry the token off the machine in clear text.
            http = http.no_proxy();
        }
        if host.eq_ignore_ascii_case("localhost") {
            // Trusted by name only because it is pinned here to the loopback addresses:
            // no resolver (a hosts file, a DNS search domain) decides where it goes.
            let loopback = [
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            ];
            http = http.resolve_to_addrs(&host, &loopback);
        }
        let http = http
            .build()
            .map_err(|e| Error::invalid_input("http client", e.to_string()).with_source(e))?;
        let options = RequestOptions::new().max_response_bytes(self.max_response_bytes);
        Ok(Client {
            inner: Arc::new(Inner {
                api: dynamic_waas_api::Client::new_with_client(&base_url, http, options),
                base_url,
                tokens,
                policy: self.policy,
                budget: RetryBudget::default(),
                pacer,
                stats: Stats::default(),
                max_response_bytes: self.max_response_bytes,
                server: (host, port),
                metrics: self.metrics,
            }),
        })
    }
}

/// Follows a redirect only within the same scheme, host and port: the token never goes to
/// another host or over a downgraded scheme. A refused redirect comes back as an error. A
/// create whose answer came after a redirect is settled from the wallet (see `attempt.rs`).
///
/// A redirect back to a path already requested is an error too: a 307 or 308 would send a
/// create to its own route again, and a 303 would take a GET of that route for the create's
/// answer (a redirect to the URL it came from would not even look redirected). The error is
/// a lost answer, which the wallet settles.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        let next = route_of(attempt.url().path());
        let again = attempt
            .previous()
            .iter()
            .any(|seen| route_of(seen.path()) == next);
        if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else if same_origin && again {
            attempt.error("a redirect back to a path already requested")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// A path as servers route it, for "a path already requested": percent-decoded, in one case,
/// without empty segments. A trailing slash, a percent-encoded character or another case
/// (which common routers ignore) does not make a path another one.
fn route_of(path: &str) -> Vec<u8> {
    let raw = path.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    decoded.make_ascii_lowercase();
    let mut route = Vec::with_capacity(decoded.len());
    for segment in decoded.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
        route.push(b'/');
        route.extend_from_slice(segment);
    }
    route
}

/// The base URL, checked: `https`, or `http` to a loopback address (an IP literal, or
/// `localhost`, pinned to loopback when the client is built); no credentials, query or
/// fragment. Messages never echo credentials.
fn check_base_url(raw: &str) -> Result<(String, reqwest::Url), Error> {
    let url = reqwest::Url::parse(raw).map_err(|e| {
        // Unparsed, the authority's end is unknown (a password may hold `/`, `?` or `#`):
        // everything before the last `@` goes.
        let shown = redact_before_last_at(raw);
        Error::invalid_input("base_url", format!("{shown:?} is not a URL ({e})"))
    })?;
    let shown = without_userinfo(&url);
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid_input(
            "base_url",
            format!("{shown:?} contains credentials; the API takes none in its URL"),
        ));
    }
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(Error::invalid_input(
                "base_url",
                format!(
                    "refusing to send the API token over plain http to {host}; use https \
                     (plain http is allowed only to loopback addresses: 127.0.0.0/8, [::1] \
                     and localhost)"
                ),
            ))
        }
        other => {
            return Err(Error::invalid_input(
                "base_url",
                format!("the scheme must be https, not {other}"),
            ))
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid_input(
            "base_url",
            "the URL must not have a query or fragment",
        ));
    }
    Ok((url.as_str().trim_end_matches('/').to_owned(), url))
}

/// `url` as a message may show it: its credentials, if any, replaced. Written from the parsed
/// URL, not from the text it came from: the URL standard reads `https:/`, `https:` or
/// `https:\\` as `https://`, skips tabs and line breaks, and so on, and only the parser knows
/// where its credentials are.
///
/// ```text
/// https:/user:pass@h:1/a@b  ->  https://[redacted]@h:1/a@b
/// ```
fn without_userinfo(url: &reqwest::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.as_str().to_owned();
    }
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let text = bare.as_str();
    match text.find("://") {
        Some(i) => format!("{}[redacted]@{}", &text[..i + 3], &text[i + 3..]),
        // Not reached: a URL with credentials has an authority.
        None => "[redacted]".to_owned(),
    }
}

/// `raw` as a message or `Debug` may show it: without whatever stands before an `@` in its
/// authority, whether it parses or not.
fn shown_url(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(url) => without_userinfo(&url),
        Err(_) => redact_before_last_at(raw),
    }
}

/// `raw` with everything between its scheme and its last `@` replaced, for a URL that does
/// not parse.
///
/// ```text
/// http://user:pa/ss@127.0.0.1:99999/x  ->  http://[redacted]@127.0.0.1:99999/x
/// ```
fn redact_before_last_at(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    match raw[start..].rfind('@') {
        Some(at) => format!("{}[redacted]{}", &raw[..start], &raw[start + at..]),
        None => raw.to_owned(),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_about_urls_never_show_credentials() {
        for raw in [
            "http://user:pass@127.0.0.1:99999/api",
            "https://user:pass@app.dynamicauth.com",
            "user:pass@host:1",
            "http://:pass@[::1]:x",
            "http://user:pa/ss@127.0.0.1:99999/x",
            "http://user:pa?ss@127.0.0.1:99999/x",
            "http://user:pa#ss@127.0.0.1:99999/x",
        ] {
            let err = check_base_url(raw).unwrap_err();
            let text = format!("{err:#} {err:?}");
            assert!(!text.contains("pass"), "{text}");
        }
        assert_eq!(shown_url("http://u:p@h:1/a@b"), "http://[redacted]@h:1/a@b");
        assert_eq!(
            shown_url("https:/u:p@h:1/a@b"),
            "https://[redacted]@h:1/a@b"
        );
        assert_eq!(shown_url("https://h/x"), "https://h/x");
    }

    #[test]
    fn spellings_of_one_path_are_one_route() {
        let path = "/environments/e-1/waas/w/keyShares/backup/locations";
        for same in [
            "/environments/e-1/waas/w/keyShares/backup/locations/",
            "/environments/e%2D1/waas/w/keyShares/backup/locations",
            "/environments/e%2d1/waas/w/%6BeyShares/backup/locations",
            "/ENVIRONMENTS/e-1/waas/w/KEYSHARES/backup/locations",
            "/environments//e-1/waas/w/keyShares/backup/locations",
        ] {
            assert_eq!(route_of(same), route_of(path), "{same}");
        }
        for other in [
            "/environments/e-1/waas/w",
            "/environments/e-1/waas/w/keyShares/backup",
            "/environments/e%2G1/waas/w/keyShares/backup/locations",
            "/elsewhere",
        ] {
            assert_ne!(route_of(other), route_of(path), "{other}");
        }
        assert_eq!(route_of("/%"), b"/%");
        assert_eq!(route_of("/a%4"), b"/a%4");
    }

    #[test]
    fn base_url_rules() {
        assert_eq!(
            check_base_url("https://app.dynamicauth.com/api/v0/")
                .unwrap()
                .0,
            "https://app.dynamicauth.com/api/v0"
        );
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.8.9.1",
        ] {
            assert!(check_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.dynamicauth.com/api/v0",
            "http://10.0.0.1",
            "ftp://x",
            "https://u:p@h",
            "https://h/?q=1",
            "nope",
        ] {
            let err = check_base_url(bad).unwrap_err();
            assert!(err.is_invalid_input(), "{bad}");
        }
        let err = check_base_url("http://app.dynamicauth.com")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refusing to send the API token over plain http to app.dynamicauth.com"),
            "{err}"
        );
    }
}
