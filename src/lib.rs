#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attempt;
mod auth;
mod budget;
mod bulk;
mod call;
mod classify;
mod client;
mod config;
mod create;
mod error;
mod model;
mod pace;
mod reconcile;
mod retry;

pub use auth::{Token, TokenError, TokenFuture, TokenProvider, REFRESH_AHEAD, TOKEN_ENV_VARS};
pub use bulk::{BackupJob, BackupOutcome, BackupStatus, NextRun};
pub use call::{CreateBackupLocations, GetWallet, GetWalletWithBody};
pub use client::{Client, ClientStats};
pub use config::{
    ClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use error::{Error, ErrorKind, BODY_EXCERPT_LIMIT};
pub use model::{BackupLocation, CreatedBackup, CreatedKeyShare, IdArg, LocationRequest};
pub use pace::{Pacing, UPSTREAM_LIMIT_PER_ENVIRONMENT, UPSTREAM_LIMIT_PER_IP};
pub use retry::{RetryPolicy, MIN_ATTEMPT_TIME};

/// The generated low-level client and its types, for what the facade does not cover.
pub use dynamic_waas_api as api;
pub use dynamic_waas_api::enums::{
    PasswordUpdateStatus, ShareSetType, ThresholdSignatureScheme, WaasChainEnum,
};
pub use dynamic_waas_api::ids::{EnvironmentId, ResourceId, WalletId};
pub use dynamic_waas_api::types::{WaasWallet, WalletKeyShareInfo};
/// The HTTP client this crate is built on, for [`ClientBuilder::http_client`].
pub use reqwest;
pub use secrecy::SecretString;
