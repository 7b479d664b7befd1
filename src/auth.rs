//! API tokens: a fixed one, or a [`TokenProvider`] that rotates them, cached.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use dynamic_waas_api::error::ErrorResponse;
use dynamic_waas_api::hooks::{bearer_header, SentTokens};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, ErrorKind};

/// Environment variables [`Client::from_env`](crate::Client::from_env) reads, in order.
pub const TOKEN_ENV_VARS: [&str; 2] = ["DYNAMIC_API_TOKEN", "DYN_API_TOKEN"];

/// The environment variable naming a file that holds the token (a mounted secret), read when
/// neither of [`TOKEN_ENV_VARS`] is set.
pub const TOKEN_FILE_ENV_VAR: &str = "DYNAMIC_API_TOKEN_FILE";

/// The token in the file at `path`: its text with one trailing newline (`\n` or `\r\n`)
/// dropped, as secret mounts and `echo` write it. The error shows neither the path nor the
/// content.
pub(crate) fn token_from_file(path: &std::path::Path) -> Result<String, Error> {
    // The path is never shown: a token set in the variable by mistake would be printed.
    let field = TOKEN_FILE_ENV_VAR;
    let bytes = std::fs::read(path).map_err(|e| {
        Error::invalid_input(
            field,
            format!(
                "the file it names cannot be read ({e}); it must hold the path of a file with \
                 the token (its value is not shown, in case it is the token itself)"
            ),
        )
    })?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| Error::invalid_input(field, "the file it names is not UTF-8"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(Error::invalid_input(
            field,
            "the file it names is empty".to_owned(),
        ));
    }
    Ok(text)
}

/// A token is refreshed this long before it expires, so that no request carries one that
/// expires in flight.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(30);

/// An API token from a [`TokenProvider`], with its expiry if the provider knows it.
///
/// `Debug` prints `Token([redacted])`; the secret is zeroized on drop.
///
/// ```
/// use std::time::Duration;
/// use dynamic_waas::Token;
///
/// let token = Token::new("dyn_example").expires_in(Duration::from_secs(3600));
/// assert_eq!(format!("{token:?}"), "Token([redacted], expires in ~3600s)");
/// ```
#[derive(Clone)]
pub struct Token {
    secret: SecretString,
    expires_at: Option<Instant>,
}

impl Token {
    /// A token with no known expiry: used until the server refuses it with 401.
    pub fn new(secret: impl Into<SecretString>) -> Self {
        Self {
            secret: secret.into(),
            expires_at: None,
        }
    }

    /// The token stops being valid after `ttl`.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.expires_at = Instant::now().checked_add(ttl);
        self
    }

    /// The token stops being valid at `at`.
    pub fn expires_at(mut self, at: Instant) -> Self {
        self.expires_at = Some(at);
        self
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expires_at {
            Some(at) => write!(
                f,
                "Token([redacted], expires in ~{}s)",
                at.saturating_duration_since(Instant::now())
                    .as_secs_f64()
                    .round()
            ),
            None => f.write_str("Token([redacted])"),
        }
    }
}

/// Why a [`TokenProvider`] could not give a token. Its message must not contain a token.
#[derive(Debug)]
pub struct TokenError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl TokenError {
    /// Wraps the cause (an error or a message).
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self(cause.into())
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the token provider failed: {}", self.0)
    }
}

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The future a [`TokenProvider`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Token, TokenError>> + Send + 'a>>;

/// A source of API tokens that rotate, such as a secret store.
///
/// The client asks it when it has no token yet, when the token is about to expire
/// ([`REFRESH_AHEAD`]), and after a `401`. At most one call is in flight per client (and its
/// clones); a failure is never cached, and a still-valid token is kept when a refresh fails.
///
/// A server may echo any token it was sent. The client takes out of every answer (error
/// bodies and headers, 2xx bodies, a redirect's URL) its current token, the last 8 tokens
/// refreshes replaced (rotations overlap, so an old token may still be echoed later), and a
/// token the provider gave while the answer was on its way.
///
/// ```
/// use dynamic_waas::{Token, TokenError, TokenFuture, TokenProvider};
///
/// struct FromSecretStore;
///
/// impl TokenProvider for FromSecretStore {
///     fn token(&self) -> TokenFuture<'_> {
///         Box::pin(async {
///             // e.g. fetch from Vault or AWS Secrets Manager
///             let secret = std::env::var("ROTATED_TOKEN").map_err(TokenError::new)?;
///             Ok(Token::new(secret).expires_in(std::time::Duration::from_secs(900)))
///         })
///     }
/// }
/// let client = dynamic_waas::Client::builder().token_provider(FromSecretStore).build();
/// assert!(client.is_ok());
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// A current token (called at most once at a time per client).
    fn token(&self) -> TokenFuture<'_>;
}

/// A header value with the generation it came from (to tell a refreshed token apart).
#[derive(Clone)]
pub(crate) struct Credential {
    pub(crate) header: HeaderValue,
    generation: u64,
    /// Every token the client has sent (its current one and the last ones rotated out), as
    /// they are when an answer arrives: a server may echo any of them. `None` for a fixed
    /// token.
    pub(crate) sent: Option<SentTokens>,
}

/// How many rotated-out tokens a client keeps taking out of answers: a server echoes what it
/// was sent recently, and a long-running client must not grow without bound.
const RETIRED_KEPT: usize = 8;

impl Credential {
    /// Takes this attempt's token and the client's others (its current one and the last ones
    /// rotated out, as they are now), out of `response`.
    pub(crate) fn redact(&self, response: &mut ErrorResponse) {
        let others = self.sent.as_ref().map(SentTokens::get);
        let others = others.iter().flat_map(|o| o.iter());
        // This attempt's token is among the client's when it is still current: once is enough.
        let all = std::iter::once(&self.header).chain(others.filter(|t| **t != self.header));
        for secret in all.filter_map(dynamic_waas_api::redact::bearer_secret) {
            response.redact(secret);
        }
    }
}

struct Cached {
    header: HeaderValue,
    expires_at: Option<Instant>,
    generation: u64,
    /// The server refused it with 401 even after a refresh: the next call asks again.
    rejected: bool,
    /// The tokens refreshes replaced, newest last, at most [`RETIRED_KEPT`].
    retired: Vec<HeaderValue>,
}

/// `retired` with `replaced` (the token a refresh replaced) as its newest, the oldest dropped
/// past [`RETIRED_KEPT`]; a token that comes back is moved, not kept twice, and the token now
/// in use is not among them.
fn retire(
    retired: &[HeaderValue],
    replaced: &HeaderValue,
    current: &HeaderValue,
) -> Vec<HeaderValue> {
    let mut kept: Vec<HeaderValue> = retired
        .iter()
        .filter(|t| *t != replaced && *t != current)
        .cloned()
        .collect();
    if replaced != current {
        kept.push(replaced.clone());
    }
    let drop = kept.len().saturating_sub(RETIRED_KEPT);
    kept.drain(..drop);
    kept
}

pub(crate) enum TokenSource {
    Fixed(HeaderValue),
    Provider(Arc<ProviderCache>),
}

pub(crate) struct ProviderCache {
    provider: Box<dyn TokenProvider>,
    cached: RwLock<Option<Cached>>,
    refreshing: tokio::sync::Mutex<()>,
    /// The cached token and the retired ones, shared with every attempt in flight.
    sent: SentTokens,
}

impl TokenSource {
    pub(crate) fn fixed(secret: &SecretString) -> Result<Self, Error> {
        let header = bearer_header(secret.expose_secret())
            .map_err(|e| Error::invalid_input("token", e.to_string()))?;
        Ok(Self::Fixed(header))
    }

    pub(crate) fn provider(provider: Box<dyn TokenProvider>) -> Self {
        Self::Provider(Arc::new(ProviderCache {
            provider,
            cached: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            sent: SentTokens::new(),
        }))
    }

    /// The credential for the next attempt when it is at hand (a fixed token, or a cached one
    /// that is fresh), without waiting.
    pub(crate) fn cached(&self) -> Option<Credential> {
        match self {
            Self::Fixed(header) => Some(Credential {
                header: header.clone(),
                generation: 0,
                sent: None,
            }),
            Self::Provider(cache) => cache.fresh(Instant::now()),
        }
    }

    /// The credential for the next attempt.
    pub(crate) async fn credential(&self) -> Result<Credential, Error> {
        match self {
            Self::Fixed(header) => Ok(Credential {
                header: header.clone(),
                generation: 0,
                sent: None,
            }),
            Self::Provider(cache) => cache.credential().await,
        }
    }

    /// Records that the server refused `credential` with 401, so that the next attempt (of
    /// this call or any other) asks the provider instead of sending it again.
    pub(crate) fn reject(&self, credential: &Credential) {
        if let Self::Provider(cache) = self {
            if let Some(c) = cache
                .write()
                .as_mut()
                .filter(|c| c.generation == credential.generation)
            {
                c.rejected = true;
            }
        }
    }

    pub(crate) fn can_refresh(&self) -> bool {
        matches!(self, Self::Provider(_))
    }
}

impl ProviderCache {
    // A panic elsewhere while holding the lock leaves a usable value: recover it.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Cached>> {
        self.cached.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Cached>> {
        self.cached.write().unwrap_or_else(|p| p.into_inner())
    }

    fn credential_of(&self, cached: &Cached) -> Credential {
        Credential {
            header: cached.header.clone(),
            generation: cached.generation,
            sent: Some(self.sent.clone()),
        }
    }

    fn fresh(&self, now: Instant) -> Option<Credential> {
        let cached = self.read();
        let c = cached.as_ref()?;
        let expiring = c.expires_at.is_some_and(|at| now + REFRESH_AHEAD >= at);
        (!expiring && !c.rejected).then(|| self.credential_of(c))
    }

    async fn credential(&self) -> Result<Credential, Error> {
        if let Some(c) = self.fresh(Instant::now()) {
            return Ok(c);
        }
        // One refresh at a time; whoever waited re-checks what the refresher stored.
        let _guard = self.refreshing.lock().await;
        if let Some(c) = self.fresh(Instant::now()) {
            return Ok(c);
        }
        let previous_generation = self.read().as_ref().map_or(0, |c| c.generation);
        match self.provider.token().await {
            Ok(token) => {
                let header = bearer_header(token.secret.expose_secret()).map_err(|e| {
                    Error::invalid_input("token", format!("the token provider returned {e}"))
                })?;
                let generation = previous_generation + 1;
                let mut cached = self.write();
                let retired = match cached.as_ref() {
                    Some(c) => retire(&c.retired, &c.header, &header),
                    None => Vec::new(),
                };
                // Before any attempt can send the new token, every answer in flight is
                // cleaned of it too.
                self.sent
                    .set(std::iter::once(header.clone()).chain(retired.iter().cloned()));
                let fresh = Cached {
                    header,
                    expires_at: token.expires_at,
                    generation,
                    rejected: false,
                    retired,
                };
                let credential = self.credential_of(&fresh);
                *cached = Some(fresh);
                drop(cached);
                tracing::debug!(generation, "API token refreshed");
                Ok(credential)
            }
            Err(err) => {
                // Keep serving a token that has not expired yet, unless the server refused it.
                let cached = self.read();
                if let Some(c) = cached.as_ref() {
                    let valid = c.expires_at.is_none_or(|at| Instant::now() < at);
                    if valid && !c.rejected {
                        tracing::warn!(error = %err, "token refresh failed; using the current token until it expires");
                        return Ok(self.credential_of(c));
                    }
                }
                Err(Error::new(ErrorKind::TokenUnavailable).with_source(err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(token: &str) -> HeaderValue {
        bearer_header(token).unwrap()
    }

    fn names(kept: &[HeaderValue]) -> Vec<&str> {
        kept.iter()
            .map(|h| h.to_str().unwrap().trim_start_matches("Bearer "))
            .collect()
    }

    #[test]
    fn a_refresh_retires_the_token_it_replaces_and_keeps_the_newest_few() {
        // The same token given again retires nothing.
        assert!(retire(&[], &header("dyn_0"), &header("dyn_0")).is_empty());
        let mut retired = Vec::new();
        for n in 0..20 {
            let (old, new) = (
                header(&format!("dyn_{n}")),
                header(&format!("dyn_{}", n + 1)),
            );
            retired = retire(&retired, &old, &new);
        }
        assert_eq!(
            names(&retired),
            ["dyn_12", "dyn_13", "dyn_14", "dyn_15", "dyn_16", "dyn_17", "dyn_18", "dyn_19"]
        );
    }

    #[test]
    fn a_token_that_comes_back_is_the_newest_retired_again_and_never_kept_twice() {
        // A, B, A again (a stale read of the secret store), then C: the refreshes replaced
        // A, B, A; the last one replaced is A.
        let mut retired = retire(&[], &header("dyn_a"), &header("dyn_b"));
        retired = retire(&retired, &header("dyn_b"), &header("dyn_a"));
        assert_eq!(
            names(&retired),
            ["dyn_b"],
            "the token in use is not retired"
        );
        retired = retire(&retired, &header("dyn_a"), &header("dyn_c"));
        assert_eq!(names(&retired), ["dyn_b", "dyn_a"]);
        for n in 0..7 {
            let (old, new) = (format!("dyn_{n}"), format!("dyn_{}", n + 1));
            retired = retire(&retired, &header(&old), &header(&new));
        }
        assert_eq!(names(&retired).len(), RETIRED_KEPT);
        assert_eq!(names(&retired)[0], "dyn_a", "B, the oldest, went first");
    }
}
