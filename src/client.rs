//! The client: configuration, and the attempt loop around the generated client.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dynamic_waas_api::error::ErrorResponse;
use dynamic_waas_api::hooks::BodyCapture;
use dynamic_waas_api::ids::{EnvironmentId, ResourceId, WalletId};
use dynamic_waas_api::{types, ByteStream, RequestOptions, ResponseValue};
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::SecretString;
use tracing::Instrument;

use crate::auth::{Credential, TokenProvider, TokenSource, TOKEN_ENV_VARS};
use crate::error::{Error, ErrorKind};
use crate::model::{self, BackupLocation, CreatedBackup, CreatedKeyShare, IdArg, LocationRequest};
use crate::retry::{parse_retry_after, RetryBudget, RetryPolicy};

/// Dynamic's API, as its own generated clients default to.
pub const DEFAULT_BASE_URL: &str = "https://app.dynamicauth.com/api/v0";
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on a response body; a larger one is refused without being read whole.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-dyn-request-id");

/// How much of an error body is read: enough to parse upstream's JSON error, of which
/// errors keep an excerpt of [`BODY_EXCERPT_LIMIT`](crate::BODY_EXCERPT_LIMIT) bytes.
const ERROR_BODY_READ_LIMIT: usize = 4096;

/// A client of Dynamic's WaaS key-share backup API.
///
/// Cheap to clone: clones share one connection pool, one token source and one retry
/// budget. `Send + Sync`; its `Debug` never shows the token.
///
/// ```no_run
/// use dynamic_waas::{BackupLocation, Client};
///
/// # async fn demo() -> Result<(), dynamic_waas::Error> {
/// let client = Client::from_env()?; // DYNAMIC_API_TOKEN, else DYN_API_TOKEN
/// let created = client
///     .create_backup_locations(
///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff", // environment
///         "95b11417-f18f-457f-8804-68e361f9164f", // wallet
///         "3c90c3cc-0d44-4b50-8888-8dd25736052a", // user
///         [BackupLocation::GoogleDrive.into()],
///     )
///     .await?;
/// for share in created.locations_with_key_shares() {
///     println!("{}: {}", share.location, share.key_share_id);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: String,
    http: reqwest::Client,
    tokens: TokenSource,
    policy: RetryPolicy,
    budget: RetryBudget,
    max_response_bytes: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("token", &"[redacted]")
            .field("policy", &self.inner.policy)
            .finish()
    }
}

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
///     .retry_policy(RetryPolicy::default().max_attempts(5))
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
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("policy", &self.policy)
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
        }
    }
}

impl ClientBuilder {
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

    /// The token from `DYNAMIC_API_TOKEN`, else `DYN_API_TOKEN`; an error names both when
    /// neither is set.
    pub fn token_from_env(self) -> Result<Self, Error> {
        for name in TOKEN_ENV_VARS {
            if let Some(value) = std::env::var_os(name) {
                let value = value
                    .into_string()
                    .map_err(|_| Error::invalid_input(name, "the variable is not valid UTF-8"))?;
                return Ok(self.token(value));
            }
        }
        Err(Error::invalid_input(
            "token",
            format!(
                "no API token: set {} (or {}) to your Dynamic API token",
                TOKEN_ENV_VARS[0], TOKEN_ENV_VARS[1]
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

    /// Checks the configuration; nothing is sent.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = check_base_url(&self.base_url)?;
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
        let http = reqwest::Client::builder()
            .user_agent(concat!("dynamic-waas-rust/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| Error::invalid_input("http client", e.to_string()).with_source(e))?;
        Ok(Client {
            inner: Arc::new(Inner {
                base_url,
                http,
                tokens,
                policy: self.policy,
                budget: RetryBudget::default(),
                max_response_bytes: self.max_response_bytes,
            }),
        })
    }
}

/// Follows a redirect only within the same scheme, host and port: the token never goes to
/// another host or over a downgraded scheme. A refused redirect comes back as an error.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn check_base_url(raw: &str) -> Result<String, Error> {
    let url = reqwest::Url::parse(raw)
        .map_err(|e| Error::invalid_input("base_url", format!("{raw:?} is not a URL ({e})")))?;
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(Error::invalid_input(
                "base_url",
                format!(
                    "refusing to send the API token over plain http to {host}; use https \
                     (plain http is allowed only to loopback addresses)"
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
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid_input(
            "base_url",
            "the URL must not contain credentials",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid_input(
            "base_url",
            "the URL must not have a query or fragment",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Client {
    /// A builder with the defaults ([`DEFAULT_BASE_URL`], [`RetryPolicy::default`]).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client with the token from `DYNAMIC_API_TOKEN` (else `DYN_API_TOKEN`), the base
    /// URL from `DYNAMIC_BASE_URL` if set, and the default policy.
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = Self::builder().token_from_env()?;
        if let Ok(url) = std::env::var("DYNAMIC_BASE_URL") {
            builder = builder.base_url(url);
        }
        builder.build()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Creates backup locations for a wallet's key shares (one per location).
    ///
    /// Ids may be [`uuid::Uuid`]s or text; all input is checked before anything is sent.
    /// The create is not idempotent: after an ambiguous failure (the attempt's timeout, a
    /// reset after sending, 500, 502, 503 without `Retry-After`, 504, an unreadable 2xx) the client
    /// reads the wallet instead of sending again. Key shares at every requested location
    /// mean the create happened: the result is built from the read and
    /// [`is_reconciled`](CreatedBackup::is_reconciled). No key shares mean it did not: it is
    /// retried within the policy. A failed read gives [`ErrorKind::OutcomeUnknown`].
    ///
    /// Await it directly, or set a policy for this call first:
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// use dynamic_waas::{BackupLocation, LocationRequest, RetryPolicy};
    ///
    /// let created = client
    ///     .create_backup_locations(
    ///         uuid::Uuid::new_v4(),
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///         "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    ///         [
    ///             LocationRequest::from(BackupLocation::GoogleDrive),
    ///             LocationRequest::new(BackupLocation::Dynamic).keygen_id("primary"),
    ///         ],
    ///     )
    ///     .retry_policy(RetryPolicy::no_retries())
    ///     .await?;
    /// # let _ = created;
    /// # Ok(())
    /// # }
    /// ```
    pub fn create_backup_locations(
        &self,
        environment_id: impl IdArg,
        wallet_id: impl IdArg,
        user_id: impl IdArg,
        locations: impl IntoIterator<Item = LocationRequest>,
    ) -> CreateBackupLocations<'_> {
        let input = (|| {
            let env = model::path_id::<EnvironmentId>(environment_id)?;
            let wallet = model::path_id::<WalletId>(wallet_id)?;
            let user_id = model::user_id(user_id)?;
            let locations = locations
                .into_iter()
                .enumerate()
                .map(|(i, l)| l.validate(i))
                .collect::<Result<Vec<_>, _>>()?;
            if locations.is_empty() {
                return Err(Error::invalid_input(
                    "locations",
                    "at least one location is required",
                ));
            }
            Ok(CreateRequest {
                env,
                wallet,
                body: types::BackupKeySharesToLocationsWithUserIdRequest { user_id, locations },
                keep_raw_body: false,
            })
        })();
        CreateBackupLocations {
            client: self,
            input,
            policy: None,
        }
    }

    /// Reads a wallet with its key shares. Safe to retry: every transient failure is
    /// retried within the policy.
    pub fn get_wallet(&self, environment_id: impl IdArg, wallet_id: impl IdArg) -> GetWallet<'_> {
        let input = model::path_id::<EnvironmentId>(environment_id)
            .and_then(|env| Ok((env, model::path_id::<WalletId>(wallet_id)?)));
        GetWallet {
            client: self,
            input,
            policy: None,
        }
    }
}

struct CreateRequest {
    env: EnvironmentId,
    wallet: WalletId,
    body: types::BackupKeySharesToLocationsWithUserIdRequest,
    keep_raw_body: bool,
}

/// A create call, ready to be awaited (see [`Client::create_backup_locations`]).
#[must_use = "a call does nothing until it is awaited"]
pub struct CreateBackupLocations<'c> {
    client: &'c Client,
    input: Result<CreateRequest, Error>,
    policy: Option<RetryPolicy>,
}

impl CreateBackupLocations<'_> {
    /// Uses this policy for this call instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Keeps the 201 body exactly as received, for [`CreatedBackup::raw_body`] (fields this
    /// SDK does not know included). Off by default: it costs a copy of the response.
    pub fn keep_raw_body(mut self) -> Self {
        if let Ok(request) = &mut self.input {
            request.keep_raw_body = true;
        }
        self
    }
}

impl<'c> IntoFuture for CreateBackupLocations<'c> {
    type Output = Result<CreatedBackup, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let request = self.input?;
            let policy = self
                .policy
                .unwrap_or_else(|| self.client.inner.policy.clone());
            let span = tracing::info_span!(
                "dynamic_waas.create_backup_locations",
                environment_id = %request.env,
                wallet_id = %request.wallet,
                locations = request.body.locations.len(),
            );
            self.client.create(request, policy).instrument(span).await
        })
    }
}

/// A wallet read, ready to be awaited (see [`Client::get_wallet`]).
#[must_use = "a call does nothing until it is awaited"]
pub struct GetWallet<'c> {
    client: &'c Client,
    input: Result<(EnvironmentId, WalletId), Error>,
    policy: Option<RetryPolicy>,
}

impl GetWallet<'_> {
    /// Uses this policy for this call instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }
}

impl<'c> IntoFuture for GetWallet<'c> {
    type Output = Result<types::WaasWallet, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (env, wallet) = self.input?;
            let policy = self
                .policy
                .unwrap_or_else(|| self.client.inner.policy.clone());
            let span = tracing::info_span!(
                "dynamic_waas.get_wallet",
                environment_id = %env,
                wallet_id = %wallet,
            );
            async {
                self.client.inner.budget.deposit();
                let mut calls = Calls::new(&policy);
                self.client
                    .read_wallet(&env, &wallet, &policy, &mut calls, false)
                    .await
            }
            .instrument(span)
            .await
        })
    }
}

/// Bookkeeping of one call: requests made and the deadline.
struct Calls {
    requests: u32,
    deadline: Instant,
}

impl Calls {
    fn new(policy: &RetryPolicy) -> Self {
        Self {
            requests: 0,
            deadline: Instant::now() + policy.get_total_timeout(),
        }
    }

    /// The timeout for the next attempt, or `None` when the deadline has passed.
    fn attempt_timeout(&self, policy: &RetryPolicy) -> Option<Duration> {
        let left = self.deadline.checked_duration_since(Instant::now())?;
        (left >= Duration::from_millis(1)).then(|| left.min(policy.get_attempt_timeout()))
    }
}

/// How one attempt failed.
enum Failure {
    /// Failed before the request left the client (connect refused, DNS, TLS): safe.
    NotSent(reqwest::Error),
    /// Sent, but no answer came back (a reset): it may have been processed.
    Lost(reqwest::Error),
    /// The attempt's timeout passed (while connecting, sending or reading): it may have
    /// been processed.
    TimedOut(Duration),
    /// The server answered with an error status; `Retry-After` read once.
    Http {
        response: ErrorResponse,
        retry_after: Option<Duration>,
    },
    /// The server answered 2xx, but the body could not be read: it was processed.
    Unreadable {
        /// The success status the generated code matched before reading the body.
        status: StatusCode,
        body: Option<bytes::Bytes>,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The generated client refused to build the request.
    Invalid(String),
}

/// What to do about a failure.
#[derive(Debug, PartialEq)]
enum Class {
    Unauthorized,
    /// Not processed: retry if the policy allows (`Retry-After` if the server gave one).
    Safe(Option<Duration>),
    /// May have been processed.
    Ambiguous,
    /// Was processed, but the answer is unreadable.
    Applied,
    AlreadyBackedUp,
    Final,
}

impl Failure {
    fn class(&self) -> Class {
        match self {
            Failure::NotSent(_) => Class::Safe(None),
            Failure::Lost(_) | Failure::TimedOut(_) => Class::Ambiguous,
            Failure::Unreadable { .. } => Class::Applied,
            Failure::Invalid(_) => Class::Final,
            Failure::Http {
                response,
                retry_after,
            } => {
                let retry_after = *retry_after;
                match response.status().as_u16() {
                    401 => Class::Unauthorized,
                    429 => Class::Safe(retry_after),
                    503 if retry_after.is_some() => Class::Safe(retry_after),
                    500 | 502 | 503 | 504 => Class::Ambiguous,
                    422 => match response.code() {
                        Some("key_share_already_backed_up") => Class::AlreadyBackedUp,
                        // Refused before any work was done.
                        Some("too_many_requests" | "lock_timeout") => Class::Safe(retry_after),
                        Some("wallet_service_connection_error") => Class::Ambiguous,
                        _ => Class::Final,
                    },
                    _ => Class::Final,
                }
            }
        }
    }

    fn status(&self) -> Option<StatusCode> {
        match self {
            Failure::Http { response, .. } => Some(response.status()),
            Failure::Unreadable { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn reason(&self) -> String {
        match self {
            Failure::NotSent(e) => format!("not sent: {e}"),
            Failure::Lost(e) if e.is_timeout() => "timed out after sending".into(),
            Failure::TimedOut(after) => format!("no complete answer within {after:?}"),
            Failure::Lost(e) => format!("connection lost after sending: {e}"),
            Failure::Http { response, .. } => format!("status {}", response.status().as_u16()),
            Failure::Unreadable { source, .. } => format!("unreadable 2xx body: {source}"),
            Failure::Invalid(m) => m.clone(),
        }
    }

    fn into_error(self, request_id: &str, attempts: u32) -> Error {
        let err = match self {
            Failure::NotSent(e) | Failure::Lost(e) => {
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Transport
                };
                Error::new(kind).with_source(e)
            }
            Failure::TimedOut(after) => Error::new(ErrorKind::Timeout).with_source(format!(
                "the attempt timed out after {} ms",
                after.as_millis()
            )),
            Failure::Unreadable {
                status,
                body,
                source,
            } => {
                let err = Error::new(ErrorKind::InvalidResponse)
                    .with_status(status)
                    .with_source(source);
                match body {
                    Some(body) => err.with_body(&body),
                    None => err,
                }
            }
            Failure::Invalid(message) => Error::invalid_input("request", message),
            Failure::Http {
                response,
                retry_after,
            } => http_error(&response, retry_after),
        };
        err.with_request_id(Some(request_id.to_owned()))
            .with_attempts(attempts)
    }
}

fn http_error(response: &ErrorResponse, retry_after: Option<Duration>) -> Error {
    let status = response.status();
    let code = response.code();
    let kind = match status.as_u16() {
        400 => ErrorKind::BadRequest,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        422 if code == Some("key_share_already_backed_up") => ErrorKind::AlreadyBackedUp,
        422 if code == Some("too_many_requests") => ErrorKind::RateLimited { retry_after },
        429 => ErrorKind::RateLimited { retry_after },
        503 if retry_after.is_some() => ErrorKind::RateLimited { retry_after },
        300..=399 => ErrorKind::InvalidResponse,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::Rejected,
    };
    let mut err = Error::new(kind)
        .with_status(status)
        .with_headers(response.headers().clone())
        .with_upstream(
            response.error_text().map(str::to_owned),
            code.map(str::to_owned),
        )
        .with_body(response.body());
    if status.is_redirection() {
        let to = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        err = err.with_source(format!(
            "redirected to {to}; not followed because it leaves the API's origin"
        ));
    }
    err
}

/// Why no further attempt is made.
enum Stop {
    Attempts,
    RetryAfterTooLong(Duration),
    Deadline,
    Budget,
}

impl Client {
    fn api(
        &self,
        credential: &Credential,
        capture: Option<&BodyCapture>,
    ) -> (dynamic_waas_api::Client, String) {
        // A request id must be unique, not unpredictable: a UUID v4 from fastrand spares a
        // getrandom syscall per attempt.
        let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let request_id: &str = id.hyphenated().encode_lower(&mut text);
        let id_header = HeaderValue::from_str(request_id).unwrap_or(HeaderValue::from_static("-"));
        let mut options = RequestOptions::new()
            .header(AUTHORIZATION, credential.header.clone())
            .header(REQUEST_ID.clone(), id_header)
            .max_response_bytes(self.inner.max_response_bytes);
        if let Some(capture) = capture {
            options = options.capture_body(capture.clone());
        }
        let api = dynamic_waas_api::Client::new_with_client(
            &self.inner.base_url,
            self.inner.http.clone(),
            options,
        );
        (api, request_id.to_owned())
    }

    /// Sorts a generated-client result into what the retry loop needs. `success` is the one
    /// status the operation's generated code parses a body for.
    async fn settle<T>(
        &self,
        success: StatusCode,
        timeout: Duration,
        call: impl Future<Output = Result<ResponseValue<T>, dynamic_waas_api::Error<ByteStream>>>,
    ) -> Result<T, Failure> {
        // The generated method reads the whole body before it returns, so this bounds the
        // attempt from sending to the last byte.
        let Ok(result) = tokio::time::timeout(timeout, call).await else {
            return Err(Failure::TimedOut(timeout));
        };
        use dynamic_waas_api::Error as E;
        match result {
            Ok(value) => Ok(value.into_inner()),
            Err(E::CommunicationError(e)) if e.is_connect() => Err(Failure::NotSent(e)),
            Err(E::CommunicationError(e)) => Err(Failure::Lost(e)),
            Err(E::ResponseBodyError(e)) => Err(Failure::Unreadable {
                status: success,
                body: None,
                source: Box::new(e),
            }),
            Err(E::InvalidResponsePayload(body, e)) => Err(Failure::Unreadable {
                status: success,
                body: Some(body),
                source: Box::new(e),
            }),
            Err(E::InvalidRequest(message)) => Err(Failure::Invalid(message)),
            Err(err @ (E::ErrorResponse(_) | E::UnexpectedResponse(_))) => {
                match ErrorResponse::from_error(err, ERROR_BODY_READ_LIMIT).await {
                    Ok(response) => {
                        let retry_after = response
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|v| parse_retry_after(v, SystemTime::now()));
                        Err(Failure::Http {
                            response,
                            retry_after,
                        })
                    }
                    Err(other) => Err(Failure::Invalid(other.to_string())),
                }
            }
            Err(other) => Err(Failure::Invalid(other.to_string())),
        }
    }

    /// The credential and timeout for the next attempt, or why there is none.
    async fn prepare(
        &self,
        policy: &RetryPolicy,
        calls: &Calls,
    ) -> Result<(Credential, Duration), Error> {
        let credential = self
            .inner
            .tokens
            .credential()
            .await
            .map_err(|e| e.with_attempts(calls.requests))?;
        let timeout = calls
            .attempt_timeout(policy)
            .ok_or_else(|| deadline_error(calls.requests))?;
        Ok((credential, timeout))
    }

    /// Decides whether and how long to wait before retry number `done` (attempts so far).
    fn plan_retry(
        &self,
        policy: &RetryPolicy,
        done: u32,
        retry_after: Option<Duration>,
        calls: &Calls,
    ) -> Result<Duration, Stop> {
        if let Some(asked) = retry_after {
            if asked > policy.get_max_retry_after() {
                return Err(Stop::RetryAfterTooLong(asked));
            }
        }
        if done >= policy.get_max_attempts() {
            return Err(Stop::Attempts);
        }
        let wait = retry_after.unwrap_or_else(|| policy.backoff(done));
        if Instant::now() + wait >= calls.deadline {
            return Err(Stop::Deadline);
        }
        if !self.inner.budget.try_withdraw() {
            return Err(Stop::Budget);
        }
        Ok(wait)
    }

    async fn create(
        &self,
        request: CreateRequest,
        policy: RetryPolicy,
    ) -> Result<CreatedBackup, Error> {
        self.inner.budget.deposit();
        let mut calls = Calls::new(&policy);
        let mut creates = 0u32;
        let mut refreshed = false;
        let mut saw_ambiguity = false;
        loop {
            let (credential, timeout) = self.prepare(&policy, &calls).await?;
            creates += 1;
            calls.requests += 1;
            let capture = request.keep_raw_body.then(BodyCapture::new);
            let (api, request_id) = self.api(&credential, capture.as_ref());
            let call = api.backup_key_shares_to_locations_for_pregen(
                &request.env,
                &request.wallet,
                &request.body,
            );
            let result = self.settle(StatusCode::CREATED, timeout, call).await;
            let failure = match result {
                Ok(body) => {
                    tracing::info!(
                        attempt = calls.requests,
                        request_id,
                        status = 201,
                        "created"
                    );
                    let created = CreatedBackup::from_response(body, request_id, calls.requests);
                    return Ok(match capture.and_then(|c| c.take()) {
                        Some(raw) => created.with_raw_body(raw),
                        None => created,
                    });
                }
                Err(failure) => failure,
            };
            let class = failure.class();
            let status = failure.status().map(|s| s.as_u16());
            if class == Class::Unauthorized {
                // Never sent again, by this call or another; a provider is asked for a new one.
                self.inner.tokens.reject(&credential);
            }
            match class {
                Class::Unauthorized if !refreshed && self.inner.tokens.can_refresh() => {
                    tracing::info!(
                        attempt = calls.requests,
                        request_id,
                        status,
                        reason = "401",
                        "refreshing the token and retrying once"
                    );
                    refreshed = true;
                }
                Class::Safe(retry_after) => {
                    match self.plan_retry(&policy, creates, retry_after, &calls) {
                        Ok(wait) => {
                            tracing::info!(attempt = calls.requests, request_id, status, wait_ms = wait.as_millis() as u64, reason = %failure.reason(), "retrying");
                            tokio::time::sleep(wait).await;
                        }
                        Err(stop) => {
                            return Err(stopped(failure, &request_id, calls.requests, stop))
                        }
                    }
                }
                Class::Ambiguous | Class::Applied => {
                    tracing::warn!(attempt = calls.requests, request_id, status, reason = %failure.reason(), "create outcome ambiguous; reading the wallet");
                    saw_ambiguity = true;
                    let applied = class == Class::Applied;
                    let original = failure.into_error(&request_id, calls.requests);
                    match Box::pin(self.reconcile(&request, &policy, &mut calls)).await {
                        Reconciled::Created(wallet, shares) => {
                            tracing::info!(
                                attempts = calls.requests,
                                "create reconciled from the wallet"
                            );
                            return Ok(CreatedBackup::reconciled(
                                &wallet,
                                shares,
                                request_id,
                                calls.requests,
                            ));
                        }
                        Reconciled::NotCreated if applied => {
                            return Err(original.with_attempts(calls.requests));
                        }
                        Reconciled::NotCreated => {
                            match self.plan_retry(&policy, creates, None, &calls) {
                                Ok(wait) => {
                                    tracing::info!(
                                        attempt = calls.requests,
                                        wait_ms = wait.as_millis() as u64,
                                        "the create did not happen; retrying"
                                    );
                                    tokio::time::sleep(wait).await;
                                }
                                Err(_) => {
                                    // Definite: the wallet shows no key shares, so nothing was created.
                                    return Err(original.with_attempts(calls.requests));
                                }
                            }
                        }
                        Reconciled::Unknown(reason) => {
                            return Err(outcome_unknown(original, reason, calls.requests));
                        }
                    }
                }
                Class::AlreadyBackedUp if saw_ambiguity => {
                    // An earlier attempt may have created them after all.
                    let original = failure.into_error(&request_id, calls.requests);
                    return match Box::pin(self.reconcile(&request, &policy, &mut calls)).await {
                        Reconciled::Created(wallet, shares) => Ok(CreatedBackup::reconciled(
                            &wallet,
                            shares,
                            request_id,
                            calls.requests,
                        )),
                        Reconciled::NotCreated => Err(outcome_unknown(
                            original,
                            "the server says the wallet is backed up but shows no key shares"
                                .into(),
                            calls.requests,
                        )),
                        Reconciled::Unknown(reason) => {
                            Err(outcome_unknown(original, reason, calls.requests))
                        }
                    };
                }
                _ => {
                    tracing::info!(attempt = calls.requests, request_id, status, reason = %failure.reason(), "failed");
                    return Err(failure.into_error(&request_id, calls.requests));
                }
            }
        }
    }

    async fn reconcile(
        &self,
        request: &CreateRequest,
        policy: &RetryPolicy,
        calls: &mut Calls,
    ) -> Reconciled {
        let wallet = match self
            .read_wallet(&request.env, &request.wallet, policy, calls, true)
            .await
        {
            Ok(wallet) => wallet,
            Err(e) => return Reconciled::Unknown(format!("the wallet read failed: {e}")),
        };
        if wallet.key_shares.is_empty() {
            return Reconciled::NotCreated;
        }
        let mut unused: Vec<&types::WalletKeyShareInfo> = wallet.key_shares.iter().collect();
        let mut shares = Vec::new();
        for wanted in &request.body.locations {
            let found = unused
                .iter()
                .position(|s| BackupLocation::from(s.backup_location.as_str()) == wanted.location);
            match found {
                Some(i) => {
                    let share = unused.remove(i);
                    shares.push(CreatedKeyShare {
                        location: wanted.location.clone(),
                        key_share_id: share.id.clone(),
                        external_key_share_id: share
                            .external_key_share_id
                            .clone()
                            .map(ResourceId::received),
                    });
                }
                None => {
                    return Reconciled::Unknown(format!(
                        "the wallet has key shares, but none at {}",
                        wanted.location
                    ))
                }
            }
        }
        Reconciled::Created(wallet, shares)
    }

    /// Reads the wallet, retrying every transient failure. `charged`: the first attempt
    /// draws on the retry budget too (a reconciliation read is an extra request).
    async fn read_wallet(
        &self,
        env: &EnvironmentId,
        wallet: &WalletId,
        policy: &RetryPolicy,
        calls: &mut Calls,
        charged: bool,
    ) -> Result<types::WaasWallet, Error> {
        if charged && !self.inner.budget.try_withdraw() {
            return Err(Error::new(ErrorKind::ServerError)
                .with_source("the retry budget is spent, so the wallet was not read")
                .with_attempts(calls.requests));
        }
        let mut reads = 0u32;
        let mut refreshed = false;
        loop {
            let (credential, timeout) = self.prepare(policy, calls).await?;
            reads += 1;
            calls.requests += 1;
            let (api, request_id) = self.api(&credential, None);
            let call = api.get_waas_wallet_by_wallet_id(env, wallet);
            let result = self.settle(StatusCode::OK, timeout, call).await;
            let failure = match result {
                Ok(body) => {
                    tracing::info!(
                        attempt = calls.requests,
                        request_id,
                        status = 200,
                        "wallet read"
                    );
                    return Ok(body.wallet);
                }
                Err(failure) => failure,
            };
            let status = failure.status().map(|s| s.as_u16());
            let class = failure.class();
            if class == Class::Unauthorized {
                self.inner.tokens.reject(&credential);
            }
            let retry_after = match class {
                Class::Unauthorized if !refreshed && self.inner.tokens.can_refresh() => {
                    tracing::info!(
                        attempt = calls.requests,
                        request_id,
                        status,
                        "refreshing the token and retrying once"
                    );
                    refreshed = true;
                    continue;
                }
                // A read is safe to repeat, whatever happened to the last one.
                Class::Safe(retry_after) => retry_after,
                Class::Ambiguous | Class::Applied => None,
                _ => {
                    tracing::info!(attempt = calls.requests, request_id, status, reason = %failure.reason(), "failed");
                    return Err(failure.into_error(&request_id, calls.requests));
                }
            };
            match self.plan_retry(policy, reads, retry_after, calls) {
                Ok(wait) => {
                    tracing::info!(attempt = calls.requests, request_id, status, wait_ms = wait.as_millis() as u64, reason = %failure.reason(), "retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(stop) => return Err(stopped(failure, &request_id, calls.requests, stop)),
            }
        }
    }
}

enum Reconciled {
    Created(types::WaasWallet, Vec<CreatedKeyShare>),
    NotCreated,
    Unknown(String),
}

fn stopped(failure: Failure, request_id: &str, attempts: u32, stop: Stop) -> Error {
    let mut err = failure.into_error(request_id, attempts);
    match stop {
        Stop::RetryAfterTooLong(asked) => {
            err.set_kind(ErrorKind::RateLimited {
                retry_after: Some(asked),
            });
            tracing::info!(
                attempts,
                wait_s = asked.as_secs(),
                "Retry-After is beyond the cap; stopping"
            );
        }
        Stop::Attempts => tracing::info!(attempts, "no attempts left"),
        Stop::Deadline => tracing::info!(
            attempts,
            "the call's deadline does not allow another attempt"
        ),
        Stop::Budget => tracing::info!(attempts, "the retry budget is spent"),
    }
    err
}

fn deadline_error(attempts: u32) -> Error {
    Error::new(ErrorKind::Timeout)
        .with_source("the call's total deadline passed")
        .with_attempts(attempts)
}

fn outcome_unknown(original: Error, reason: String, attempts: u32) -> Error {
    let request_id = original.request_id().map(str::to_owned);
    let status = original.status();
    let mut err = Error::new(ErrorKind::OutcomeUnknown { reason })
        .with_request_id(request_id)
        .with_attempts(attempts);
    if let Some(status) = status {
        err = err.with_status(status);
    }
    err.with_source(original)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert_eq!(
            check_base_url("https://app.dynamicauth.com/api/v0/").unwrap(),
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
