//! The generated low-level client for Dynamic's WaaS key-share backup API.
//!
//! Most users want the `dynamic-waas` crate, which adds token handling, retries, typed errors
//! and timeouts on top of this one. This crate is `generated.rs` (written by
//! `cargo xtask generate` from `openapi/dynamic-waas.json`, never edited by hand) plus the
//! small hand-written modules the generated code uses.
//!
//! ```no_run
//! use dynamic_waas_api::{types, Client, RequestOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(
//!     "https://app.dynamicauth.com/api/v0",
//!     RequestOptions::new().bearer_token("dyn_...")?,
//! );
//! let environment = "95b11417-f18f-457f-8804-68e361f9164f".parse()?;
//! let wallet = "3c90c3cc-0d44-4b50-8888-8dd25736052a".parse()?;
//! // Built from JSON, so that optional fields upstream adds later need no edit here.
//! let body: types::BackupKeySharesToLocationsWithUserIdRequest =
//!     serde_json::from_value(serde_json::json!({
//!         "userId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
//!         "locations": [{"location": "googleDrive"}],
//!     }))?;
//! let created = client
//!     .backup_key_shares_to_locations_for_pregen(&environment, &wallet, &body)
//!     .await?;
//! println!("{:?}", created.into_inner().locations_with_key_shares);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

/// What every validated-text newtype of the sdk (ids, labels) implements the same way: its text
/// as `AsRef<str>`, `Display` and `Serialize`.
macro_rules! text_newtype {
    ($name:ident) => {
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}
pub(crate) use text_newtype;

pub mod enums;
pub mod error;
mod generated;
pub mod hooks;
pub mod ids;
pub mod labels;
pub mod redact;

pub use generated::*;
pub use hooks::RequestOptions;
// The versions of the HTTP stack this crate is built on, for callers that configure it.
pub use progenitor_client;
pub use reqwest;

// The crate README's examples compile, as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
