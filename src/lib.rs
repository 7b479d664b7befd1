#![doc = include_str!("../docs/crate.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod budget;
mod bulk;
mod call;
mod client;
mod config;
mod engine;
mod error;
mod matching;
mod metrics;
mod model;
mod pace;
mod retry;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

pub use auth::{
    Token, TokenError, TokenFuture, TokenProvider, REFRESH_AHEAD, TOKEN_ENV_VARS,
    TOKEN_FILE_ENV_VAR,
};
pub use bulk::{BackupJob, BackupOutcome, BulkHandle, BulkProgress, BulkRun, NextRun};
pub use call::{
    CallFuture, CreateBackupLocations, GetWallet, GetWalletWithBody, Settle, Settlement,
};
pub use client::{Client, ClientStats};
pub use config::{
    ClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use error::{Error, ErrorKind, BODY_EXCERPT_LIMIT};
pub use metrics::{Event, Metrics};
pub use model::{
    BackupLocation, BackupStatus, CreatedBackup, CreatedKeyShare, IdArg, LocationRequest, Wallet,
    WalletKeyShare,
};
pub use pace::{Pacing, UPSTREAM_LIMIT_PER_ENVIRONMENT, UPSTREAM_LIMIT_PER_IP};
pub use retry::{RetryPolicy, DEFAULT_SETTLE_AFTER, MIN_ATTEMPT_TIME};

/// The `bytes` crate, whose `Bytes` holds a body as received
/// ([`GetWallet::with_raw_body`]).
pub use bytes;
/// The generated low-level client and its types, for what the facade does not cover.
pub use dynamic_waas_api as api;
pub use dynamic_waas_api::enums::{
    PasswordUpdateStatus, ShareSetType, ThresholdSignatureScheme, WaasChainEnum,
};
pub use dynamic_waas_api::ids::{
    EnvironmentId, InvalidId, ResourceId, ShareSetId, UserId, WalletId,
};
/// The HTTP client this crate is built on, for [`ClientBuilder::http_client`].
pub use reqwest;
pub use secrecy::SecretString;
/// The `uuid` crate, whose `Uuid` every id argument accepts.
pub use uuid;

// The repository README's examples compile, as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
