//! A semver guard: every public item of the facade that users rely on, named at compile
//! time, so that removing or renaming one (or changing its signature, or dropping a trait
//! it implements) breaks this file's build. cargo-semver-checks needs a published baseline,
//! which does not exist before the first publish; after it, this file still documents what
//! is public on purpose.
//!
//! An item added to the API belongs here too. Signatures are pinned with function pointers
//! where the method is not generic, and by calls in functions that are compiled, never run,
//! where it takes `impl Trait` arguments.

#![allow(dead_code, unused_variables, clippy::no_effect_underscore_binding)]

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dynamic_waas::reqwest::header::HeaderMap;
use dynamic_waas::reqwest::StatusCode;
use dynamic_waas::uuid::Uuid;
use dynamic_waas::{
    api, BackupJob, BackupLocation, BackupOutcome, BackupStatus, BulkHandle, BulkProgress, BulkRun,
    CallFuture, Client, ClientBuilder, ClientStats, CreateBackupLocations, CreatedBackup,
    CreatedKeyShare, EnvironmentId, Error, ErrorKind, Event, GetWallet, GetWalletWithBody, IdArg,
    InvalidId, LocationRequest, Metrics, NextRun, Pacing, PasswordUpdateStatus, ResourceId,
    RetryPolicy, SecretString, Settle, Settlement, ShareSetId, ShareSetType,
    ThresholdSignatureScheme, Token, TokenError, TokenFuture, TokenProvider, UserId, WaasChainEnum,
    Wallet, WalletId, WalletKeyShare, BODY_EXCERPT_LIMIT, DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_SETTLE_AFTER, MIN_ATTEMPT_TIME,
    REFRESH_AHEAD, TOKEN_ENV_VARS, TOKEN_FILE_ENV_VAR, UPSTREAM_LIMIT_PER_ENVIRONMENT,
    UPSTREAM_LIMIT_PER_IP,
};
use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

// Trait bounds, checked by instantiation.
fn send_sync_static<T: Send + Sync + 'static>() {}
fn send_static<T: Send + 'static>() {}
fn clone<T: Clone>() {}
fn copy<T: Copy>() {}
fn debug<T: std::fmt::Debug>() {}
fn default<T: Default>() {}
fn eq<T: Eq>() {}
fn hash<T: std::hash::Hash>() {}
fn ser<T: Serialize>() {}
fn de<T: DeserializeOwned>() {}
fn std_error<T: std::error::Error + Send + Sync + 'static>() {}
fn call<C: IntoFuture<Output = Result<T, Error>, IntoFuture = CallFuture<T>>, T>() {}
fn id_arg<A: IdArg<T>, T>() {}

#[test]
fn constants_keep_their_types() {
    let _: &str = DEFAULT_BASE_URL;
    let _: Duration = DEFAULT_CONNECT_TIMEOUT;
    let _: usize = DEFAULT_MAX_RESPONSE_BYTES;
    let _: Duration = DEFAULT_SETTLE_AFTER;
    let _: Duration = MIN_ATTEMPT_TIME;
    let _: Duration = REFRESH_AHEAD;
    let _: [&str; 2] = TOKEN_ENV_VARS;
    let _: &str = TOKEN_FILE_ENV_VAR;
    let _: usize = BODY_EXCERPT_LIMIT;
    let _: u32 = UPSTREAM_LIMIT_PER_IP;
    let _: u32 = UPSTREAM_LIMIT_PER_ENVIRONMENT;
}

#[test]
fn types_keep_their_traits() {
    send_sync_static::<Client>();
    clone::<Client>();
    debug::<Client>();
    debug::<ClientBuilder>();
    default::<ClientBuilder>();
    send_static::<ClientBuilder>();
    copy::<ClientStats>();
    default::<ClientStats>();
    ser::<ClientStats>();
    debug::<ClientStats>();

    call::<CreateBackupLocations, CreatedBackup>();
    call::<GetWallet, Wallet>();
    // `bytes` is a public dependency: the raw body is a `bytes::Bytes`.
    call::<GetWalletWithBody, (Wallet, bytes::Bytes)>();
    call::<Settle, Settlement>();
    send_static::<CreateBackupLocations>();
    send_static::<GetWallet>();
    send_static::<Settle>();
    send_static::<CallFuture<CreatedBackup>>();
    // `send()`: the same calls with their futures unboxed, as spawnable as the boxed ones.
    let client = Client::builder().token("dyn_public_api").build().unwrap();
    let env = "95b11417-f18f-457f-8804-68e361f9164f";
    spawnable(
        client
            .create_backup_locations(env, env, env, [BackupLocation::GoogleDrive.into()])
            .send(),
    );
    spawnable(client.get_wallet(env, env).send());
    spawnable(client.get_wallet(env, env).with_raw_body().send());
    spawnable(
        client
            .settle(env, env, [BackupLocation::GoogleDrive.into()])
            .send(),
    );
    clone::<Settlement>();
    eq::<Settlement>();
    debug::<Settlement>();

    clone::<BackupJob>();
    debug::<BackupJob>();
    send_static::<BackupJob>();
    debug::<BackupOutcome>();
    ser::<BackupOutcome>();
    de::<BackupOutcome>();
    send_static::<BackupOutcome>();
    copy::<NextRun>();
    eq::<NextRun>();
    hash::<NextRun>();
    ser::<NextRun>();
    de::<NextRun>();
    send_static::<BulkRun>();
    fn outcomes<S: Stream<Item = BackupOutcome>>() {}
    outcomes::<BulkRun>();
    send_sync_static::<BulkHandle>();
    clone::<BulkHandle>();
    copy::<BulkProgress>();
    eq::<BulkProgress>();
    default::<BulkProgress>();
    debug::<BulkProgress>();

    std_error::<Error>();
    debug::<Error>();
    ser::<Error>();
    de::<Error>();
    clone::<ErrorKind>();
    eq::<ErrorKind>();
    debug::<ErrorKind>();

    copy::<Event>();
    eq::<Event>();
    debug::<Event>();
    fn metrics<M: Metrics>() {}
    metrics::<Arc<dyn Metrics>>();

    clone::<BackupLocation>();
    eq::<BackupLocation>();
    ser::<BackupLocation>();
    de::<BackupLocation>();
    copy::<BackupStatus>();
    eq::<BackupStatus>();
    hash::<BackupStatus>();
    ser::<BackupStatus>();
    de::<BackupStatus>();
    clone::<CreatedBackup>();
    eq::<CreatedBackup>();
    ser::<CreatedBackup>();
    clone::<CreatedKeyShare>();
    eq::<CreatedKeyShare>();
    ser::<CreatedKeyShare>();
    de::<CreatedKeyShare>();
    clone::<LocationRequest>();
    eq::<LocationRequest>();
    debug::<LocationRequest>();
    clone::<Wallet>();
    eq::<Wallet>();
    ser::<Wallet>();
    clone::<WalletKeyShare>();
    eq::<WalletKeyShare>();
    ser::<WalletKeyShare>();

    copy::<Pacing>();
    eq::<Pacing>();
    default::<Pacing>();
    debug::<Pacing>();
    clone::<RetryPolicy>();
    eq::<RetryPolicy>();
    default::<RetryPolicy>();
    debug::<RetryPolicy>();

    clone::<Token>();
    debug::<Token>();
    std_error::<TokenError>();
    fn provider<P: TokenProvider>() {}
    provider::<FixedToken>();
    send_sync_static::<SecretString>();

    // Ids: every role takes text, a Uuid and its own typed id; the typed ids themselves.
    id_arg::<&str, EnvironmentId>();
    id_arg::<String, WalletId>();
    id_arg::<&String, UserId>();
    id_arg::<Uuid, ShareSetId>();
    id_arg::<&Uuid, EnvironmentId>();
    id_arg::<EnvironmentId, EnvironmentId>();
    id_arg::<&EnvironmentId, EnvironmentId>();
    id_arg::<WalletId, WalletId>();
    id_arg::<&WalletId, WalletId>();
    id_arg::<UserId, UserId>();
    id_arg::<&UserId, UserId>();
    id_arg::<ShareSetId, ShareSetId>();
    id_arg::<&ShareSetId, ShareSetId>();
    for_each_id::<EnvironmentId>();
    for_each_id::<WalletId>();
    for_each_id::<UserId>();
    for_each_id::<ShareSetId>();
    eq::<ResourceId>();
    hash::<ResourceId>();
    ser::<ResourceId>();
    de::<ResourceId>();
    std_error::<InvalidId>();
    eq::<InvalidId>();

    for_each_enum::<PasswordUpdateStatus>();
    for_each_enum::<ShareSetType>();
    for_each_enum::<ThresholdSignatureScheme>();
    for_each_enum::<WaasChainEnum>();
    for_each_enum::<BackupLocation>();
}

/// What every id type offers.
fn for_each_id<
    T: Clone
        + Eq
        + Ord
        + std::hash::Hash
        + std::fmt::Debug
        + std::fmt::Display
        + AsRef<str>
        + std::str::FromStr<Err = InvalidId>
        + for<'a> TryFrom<&'a str, Error = InvalidId>
        + TryFrom<String, Error = InvalidId>
        + From<Uuid>
        + for<'a> From<&'a T>
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
>() {
}

/// What every open enum of the API offers: known values and any other kept as text.
fn for_each_enum<
    T: Clone
        + Eq
        + std::fmt::Debug
        + std::fmt::Display
        + for<'a> From<&'a str>
        + std::str::FromStr
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
>() {
}

#[test]
fn methods_keep_their_signatures() {
    // Client.
    let _: fn() -> ClientBuilder = Client::builder;
    let _: fn() -> Result<Client, Error> = Client::from_env;
    let _: fn(&Client) -> ClientStats = Client::stats;
    let _: fn(&Client) -> &str = Client::base_url;
    let _: fn(&Client) -> &RetryPolicy = Client::retry_policy;

    // ClientBuilder (generic setters are in `calls` below).
    let _: fn() -> Result<ClientBuilder, Error> = ClientBuilder::from_env;
    let _: fn(ClientBuilder) -> Result<ClientBuilder, Error> = ClientBuilder::token_from_env;
    let _: fn(ClientBuilder, RetryPolicy) -> ClientBuilder = ClientBuilder::retry_policy;
    let _: fn(ClientBuilder, Duration) -> ClientBuilder = ClientBuilder::connect_timeout;
    let _: fn(ClientBuilder, usize) -> ClientBuilder = ClientBuilder::max_response_bytes;
    let _: fn(ClientBuilder, Pacing) -> ClientBuilder = ClientBuilder::pacing;
    let _: fn(ClientBuilder) -> Result<Client, Error> = ClientBuilder::build;

    // Calls.
    let _: fn(CreateBackupLocations, RetryPolicy) -> CreateBackupLocations =
        CreateBackupLocations::retry_policy;
    let _: fn(CreateBackupLocations) -> CreateBackupLocations =
        CreateBackupLocations::accept_existing;
    let _: fn(GetWallet, RetryPolicy) -> GetWallet = GetWallet::retry_policy;
    let _: fn(GetWallet) -> GetWalletWithBody = GetWallet::with_raw_body;
    let _: fn(Settle, RetryPolicy) -> Settle = Settle::retry_policy;
    let _: fn(Settle, SystemTime) -> Settle = Settle::last_sent;

    // Bulk.
    let _: fn(BackupJob) -> BackupJob = BackupJob::resumed;
    let _: fn(BackupJob, SystemTime) -> BackupJob = BackupJob::resumed_since;
    let _: fn(BackupJob, u64) -> BackupJob = BackupJob::with_tag;
    let _: fn(&BackupJob) -> bool = BackupJob::is_resumed;
    let _: fn(&BackupJob) -> Option<u64> = BackupJob::tag;
    let _: fn(&BackupJob) -> &EnvironmentId = BackupJob::environment_id;
    let _: fn(&BackupJob) -> &WalletId = BackupJob::wallet_id;
    let _: fn(&BackupOutcome) -> NextRun = BackupOutcome::next_run;
    let _: fn(NextRun, NextRun) -> NextRun = NextRun::merge;
    let _: fn(&BulkRun) -> BulkHandle = BulkRun::handle;
    let _: fn(&BulkHandle) = BulkHandle::stop;
    let _: fn(&BulkHandle) -> bool = BulkHandle::is_stopping;
    let _: fn(&BulkHandle) -> BulkProgress = BulkHandle::progress;

    // Error.
    let _: fn(&Error) -> &ErrorKind = Error::kind;
    let _: fn(&Error) -> Option<StatusCode> = Error::status;
    let _: fn(&Error) -> Option<&str> = Error::request_id;
    let _: fn(&Error) -> Option<&str> = Error::upstream_error;
    let _: fn(&Error) -> Option<&str> = Error::upstream_code;
    let _: fn(&Error) -> Option<&[u8]> = Error::body_excerpt;
    let _: fn(&Error) -> Option<&HeaderMap> = Error::headers;
    let _: fn(&Error) -> u32 = Error::attempts;
    let _: fn(&Error) -> Option<Duration> = Error::retry_after;
    let _: fn(&Error) -> bool = Error::is_retryable;
    let _: fn(&Error) -> bool = Error::is_outcome_unknown;
    let _: fn(&Error) -> bool = Error::is_invalid_input;
    let _: fn(&ErrorKind) -> &'static str = ErrorKind::name;

    // Model.
    let _: fn(BackupLocation) -> LocationRequest = LocationRequest::new;
    let _: fn(BackupLocation) -> LocationRequest = LocationRequest::from;
    let _: fn(LocationRequest, ThresholdSignatureScheme) -> LocationRequest =
        LocationRequest::with_threshold_signature_scheme;
    let _: fn(&LocationRequest) -> &BackupLocation = LocationRequest::location;
    let _: fn(&LocationRequest) -> Option<&str> = LocationRequest::keygen_id;
    let _: fn(&LocationRequest) -> Option<&ThresholdSignatureScheme> =
        LocationRequest::threshold_signature_scheme;
    let _: fn(&LocationRequest) -> Option<&str> = LocationRequest::external_key_share_id;
    let _: fn(&BackupStatus) -> &'static str = BackupStatus::name;
    let _: fn(&CreatedBackup) -> &[CreatedKeyShare] = CreatedBackup::locations_with_key_shares;
    let _: fn(&CreatedBackup) -> &ResourceId = CreatedBackup::wallet_id;
    let _: fn(&CreatedBackup) -> &str = CreatedBackup::message;
    let _: fn(&CreatedBackup) -> BackupStatus = CreatedBackup::status;
    let _: fn(&CreatedBackup) -> bool = CreatedBackup::is_reconciled;
    let _: fn(&CreatedBackup) -> &str = CreatedBackup::request_id;
    let _: fn(&CreatedBackup) -> Option<&[u8]> = CreatedBackup::raw_body;
    let _: fn(&CreatedBackup) -> u32 = CreatedBackup::attempts;
    let _: fn(&CreatedBackup) -> Option<&str> = CreatedBackup::share_set_id;
    let _: fn(&CreatedBackup) -> Option<&PasswordUpdateStatus> =
        CreatedBackup::password_update_status;
    let _: fn(&CreatedBackup) -> Option<&ShareSetType> = CreatedBackup::share_set_type;
    let _: fn(&CreatedBackup) -> Option<bool> = CreatedBackup::wallet_active;
    let _: fn(&CreatedBackup) -> serde_json::Map<String, serde_json::Value> = CreatedBackup::extra;
    let _: fn(&WalletKeyShare) -> CreatedKeyShare = WalletKeyShare::to_created;
    let _: fn(&BackupLocation) -> &str = BackupLocation::as_str;
    let _: fn(&BackupLocation) -> bool = BackupLocation::is_unknown;
    let _: &[&str] = BackupLocation::KNOWN;

    // Ids.
    let _: fn(&str) -> Result<WalletId, InvalidId> = WalletId::parse;
    let _: fn(&WalletId) -> &str = WalletId::as_str;
    let _: fn(&WalletId) -> Option<Uuid> = WalletId::to_uuid;
    let _: fn() -> EnvironmentId = EnvironmentId::random;
    let _: fn() -> UserId = UserId::random;
    let _: fn() -> ShareSetId = ShareSetId::random;
    let _: &str = WalletId::FIELD;
    let _: fn(&ResourceId) -> bool = ResourceId::is_valid;
    let _: fn(&InvalidId) -> &'static str = InvalidId::field;
    let _: fn(&InvalidId) -> &str = InvalidId::problem;

    // Pacing and retries.
    let _: fn() -> Pacing = Pacing::upstream;
    let _: fn() -> Pacing = Pacing::unlimited;
    let _: fn(Pacing, u32) -> Pacing = Pacing::with_per_process;
    let _: fn(Pacing, u32) -> Pacing = Pacing::with_per_environment;
    let _: fn(&Pacing) -> Option<u32> = Pacing::per_process;
    let _: fn(&Pacing) -> Option<u32> = Pacing::per_environment;
    let _: fn(&Pacing) -> Option<(&'static str, u32)> = Pacing::binding;
    let _: fn() -> RetryPolicy = RetryPolicy::no_retries;
    let _: fn(RetryPolicy, u32) -> RetryPolicy = RetryPolicy::with_max_attempts;
    let _: fn(RetryPolicy, Duration) -> RetryPolicy = RetryPolicy::with_initial_backoff;
    let _: fn(RetryPolicy, Duration) -> RetryPolicy = RetryPolicy::with_max_backoff;
    let _: fn(RetryPolicy, Duration) -> RetryPolicy = RetryPolicy::with_max_retry_after;
    let _: fn(RetryPolicy, Duration) -> RetryPolicy = RetryPolicy::with_attempt_timeout;
    let _: fn(RetryPolicy, Duration) -> RetryPolicy = RetryPolicy::with_total_timeout;
    let _: fn(RetryPolicy, Duration) -> RetryPolicy = RetryPolicy::with_settle_after;
    let _: fn(&RetryPolicy) -> u32 = RetryPolicy::max_attempts;
    let _: fn(&RetryPolicy) -> Duration = RetryPolicy::initial_backoff;
    let _: fn(&RetryPolicy) -> Duration = RetryPolicy::max_backoff;
    let _: fn(&RetryPolicy) -> Duration = RetryPolicy::max_retry_after;
    let _: fn(&RetryPolicy) -> Duration = RetryPolicy::attempt_timeout;
    let _: fn(&RetryPolicy) -> Duration = RetryPolicy::total_timeout;
    let _: fn(&RetryPolicy) -> Duration = RetryPolicy::settle_after;

    // Tokens.
    let _: fn(Token, Duration) -> Token = Token::expires_in;
    let _: fn(Token, std::time::Instant) -> Token = Token::expires_at;
}

/// The generic methods, by calls that are compiled and never run.
async fn calls(client: Client, uuid: Uuid) -> Result<(), Error> {
    let (env, wallet, user) = (
        EnvironmentId::random(),
        WalletId::random(),
        UserId::random(),
    );
    let builder: ClientBuilder = Client::builder()
        .base_url("http://127.0.0.1:8080")
        .base_url(String::new())
        .token("dyn_token")
        .token(SecretString::from("dyn_token"))
        .token_provider(FixedToken)
        .metrics(Arc::new(Counter))
        .metrics(Counter)
        .http_client(|http: dynamic_waas::reqwest::ClientBuilder| http);

    let locations = [
        LocationRequest::from(BackupLocation::GoogleDrive),
        LocationRequest::new(BackupLocation::Dynamic)
            .with_keygen_id("primary")
            .with_keygen_id(String::from("primary"))
            .with_external_key_share_id("vault/1"),
    ];
    let created: CreatedBackup = client
        .create_backup_locations(&env, &wallet, &user, locations.clone())
        .share_set_id(uuid)
        .share_set_id("0b1c2d3e-4f50-4617-8899-aabbccddeeff")
        .accept_existing()
        .retry_policy(RetryPolicy::default())
        .await?;
    let spawned = tokio::spawn(
        client
            .create_backup_locations("e", "w", "u", vec![])
            .into_future(),
    );
    let wallet_read: Wallet = client.get_wallet(&env, uuid).await?;
    let (read, raw) = client.get_wallet("e", "w").with_raw_body().await?;
    let raw: &[u8] = &raw;
    let settled: Settlement = client
        .settle(env.clone(), wallet.clone(), locations.clone())
        .last_sent(SystemTime::now())
        .await?;

    let job: BackupJob = BackupJob::new(&env, &wallet, &user, locations.clone())?
        .with_share_set_id(uuid)?
        .with_tag(1);
    let run: BulkRun = client.create_many(futures_util::stream::iter(vec![job]), 4);
    let run: BulkRun = client.create_many(futures_util::stream::empty(), 1);

    let _: Token = Token::new("dyn_token");
    let _: Token = Token::new(String::from("dyn_token"));
    let _: TokenError = TokenError::new("vault unavailable");
    let _: ResourceId = ResourceId::received("as the server sent it");
    let _: Result<ResourceId, InvalidId> =
        ResourceId::parse("95b11417-f18f-457f-8804-68e361f9164f");
    Ok(())
}

struct FixedToken;

impl TokenProvider for FixedToken {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async { Ok(Token::new("dyn_token")) })
    }
}

struct Counter;

impl Metrics for Counter {
    fn record(&self, event: &Event) {
        let _ = event;
    }
}

/// Every field users read, by name and type.
fn fields(
    outcome: BackupOutcome,
    share: CreatedKeyShare,
    wallet: Wallet,
    key_share: WalletKeyShare,
    stats: ClientStats,
    progress: BulkProgress,
) {
    let BackupOutcome {
        environment_id,
        wallet_id,
        tag,
        status,
        key_shares,
        share_set_id,
        request_id,
        attempts,
        error,
        ..
    } = outcome;
    let _: (EnvironmentId, WalletId, Option<u64>, BackupStatus) =
        (environment_id, wallet_id, tag, status);
    let _: (
        Vec<CreatedKeyShare>,
        Option<String>,
        Option<String>,
        u32,
        Option<Error>,
    ) = (key_shares, share_set_id, request_id, attempts, error);

    let CreatedKeyShare {
        location,
        key_share_id,
        external_key_share_id,
        ..
    } = share;
    let _: (BackupLocation, ResourceId, Option<ResourceId>) =
        (location, key_share_id, external_key_share_id);

    let Wallet {
        wallet_id,
        chain_name,
        account_address,
        derivation_path,
        threshold_signature_scheme,
        key_shares,
        ..
    } = wallet;
    let _: (
        ResourceId,
        WaasChainEnum,
        String,
        String,
        ThresholdSignatureScheme,
    ) = (
        wallet_id,
        chain_name,
        account_address,
        derivation_path,
        threshold_signature_scheme,
    );
    let _: Vec<WalletKeyShare> = key_shares;

    let WalletKeyShare {
        id,
        location,
        external_key_share_id,
        password_encrypted,
        ..
    } = key_share;
    let _: (ResourceId, BackupLocation, Option<String>, bool) =
        (id, location, external_key_share_id, password_encrypted);

    let ClientStats {
        requests_sent,
        rate_limited,
        pace,
        ..
    } = stats;
    let _: (u64, u64, Option<f64>) = (requests_sent, rate_limited, pace);

    let BulkProgress {
        pulled,
        in_flight,
        waiting,
        finished,
        stopping,
        ..
    } = progress;
    let _: (u64, u64, u64, u64, bool) = (pulled, in_flight, waiting, finished, stopping);
}

/// Every variant users match on, with its fields. Each enum is `#[non_exhaustive]` (hence
/// the wildcard) except `NextRun`, whose match must stay exhaustive.
fn variants(
    kind: ErrorKind,
    event: Event,
    status: BackupStatus,
    settlement: Settlement,
    next: NextRun,
) {
    match kind {
        ErrorKind::InvalidInput { field, reason } => {
            let _: (String, String) = (field, reason);
        }
        ErrorKind::TokenUnavailable
        | ErrorKind::BadRequest
        | ErrorKind::Unauthorized
        | ErrorKind::Forbidden
        | ErrorKind::NotFound
        | ErrorKind::AlreadyBackedUp
        | ErrorKind::Rejected
        | ErrorKind::ServerError
        | ErrorKind::RetryBudgetSpent
        | ErrorKind::Transport
        | ErrorKind::Timeout
        | ErrorKind::InvalidResponse => {}
        ErrorKind::RateLimited { retry_after } => {
            let _: Option<Duration> = retry_after;
        }
        ErrorKind::OutcomeUnknown { reason } => {
            let _: String = reason;
        }
        _ => {}
    }
    match event {
        Event::Request { operation, retry } => {
            let _: (&'static str, bool) = (operation, retry);
        }
        Event::Retry { operation, reason } => {
            let _: (&'static str, &'static str) = (operation, reason);
        }
        Event::PacerWait { waited } => {
            let _: Duration = waited;
        }
        Event::RateLimited | Event::Reconciled | Event::OutcomeUnknown => {}
        _ => {}
    }
    match status {
        BackupStatus::Created
        | BackupStatus::Reconciled
        | BackupStatus::AlreadyBackedUp
        | BackupStatus::Duplicate
        | BackupStatus::Failed
        | BackupStatus::Unknown => {}
        _ => {}
    }
    match settlement {
        Settlement::BackedUp(backup) | Settlement::BackedUpOtherwise(backup) => {
            let _: CreatedBackup = backup;
        }
        Settlement::NotBackedUp => {}
        _ => {}
    }
    match next {
        NextRun::Skip | NextRun::ReadFirst | NextRun::Create => {}
    }
    let _ = (
        BackupLocation::GoogleDrive,
        BackupLocation::ICloud,
        BackupLocation::Dynamic,
        BackupLocation::External,
        BackupLocation::Delegated,
        BackupLocation::OfflineRecovery,
        BackupLocation::User,
    );
    let _ = (
        ThresholdSignatureScheme::TwoOfTwo,
        ThresholdSignatureScheme::TwoOfThree,
        ThresholdSignatureScheme::ThreeOfFive,
    );
    let _ = (
        WaasChainEnum::Evm,
        WaasChainEnum::Svm,
        WaasChainEnum::Sui,
        WaasChainEnum::Btc,
        WaasChainEnum::Ton,
    );
    let _ = (
        PasswordUpdateStatus::Pending,
        PasswordUpdateStatus::Activated,
    );
    let _ = (
        ShareSetType::Delegated,
        ShareSetType::RootUser,
        ShareSetType::Server,
        ShareSetType::BusinessAccountUser,
    );
}

/// The generated client is reachable for what the facade does not cover.
fn low_level(client: api::Client) {
    let _: api::types::WalletKeyShareInfo;
}

/// The builders of `test_util` (feature `test-util`), for users' unit tests.
#[cfg(feature = "test-util")]
#[test]
fn test_util_keeps_its_builders() {
    use dynamic_waas::test_util::{self, CreatedBuilder, ErrorBuilder, WalletBuilder};

    let _: fn(ErrorKind) -> ErrorBuilder = test_util::error;
    let _: fn(ErrorBuilder, u16) -> ErrorBuilder = ErrorBuilder::status;
    let _: fn(ErrorBuilder, &str) -> ErrorBuilder = ErrorBuilder::request_id;
    let _: fn(ErrorBuilder, &str) -> ErrorBuilder = ErrorBuilder::upstream_error;
    let _: fn(ErrorBuilder, &str) -> ErrorBuilder = ErrorBuilder::upstream_code;
    let _: fn(ErrorBuilder, u32) -> ErrorBuilder = ErrorBuilder::attempts;
    let _: fn(ErrorBuilder) -> Error = ErrorBuilder::build;
    let _: Error = test_util::error(ErrorKind::Timeout)
        .source("a cause")
        .source(String::from("a cause"))
        .build();
    let _: fn(&str) -> CreatedBuilder = test_util::created;
    let _: fn(CreatedBuilder, BackupLocation, &str) -> CreatedBuilder = CreatedBuilder::share;
    let _: fn(CreatedBuilder, BackupStatus) -> CreatedBuilder = CreatedBuilder::status;
    let _: fn(CreatedBuilder) -> CreatedBackup = CreatedBuilder::build;
    let _: fn(&str) -> WalletBuilder = test_util::wallet;
    let _: fn(WalletBuilder, BackupLocation, &str) -> WalletBuilder = WalletBuilder::share;
    let _: fn(WalletBuilder) -> Wallet = WalletBuilder::build;
}

fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
