//! Values for unit tests of your own code (feature `test-util`): errors, create results and
//! wallets as the client would give them, without a server.
//!
//! ```
//! use dynamic_waas::{test_util, BackupLocation, BackupStatus, ErrorKind};
//!
//! let err = test_util::error(ErrorKind::AlreadyBackedUp)
//!     .status(422)
//!     .upstream_code("key_share_already_backed_up")
//!     .attempts(2)
//!     .request_id("r-1")
//!     .build();
//! assert_eq!(err.upstream_code(), Some("key_share_already_backed_up"));
//!
//! let created = test_util::created("95b11417-f18f-457f-8804-68e361f9164f")
//!     .share(BackupLocation::GoogleDrive, "0f0e0d0c-0b0a-4908-8706-050403020100")
//!     .status(BackupStatus::Reconciled)
//!     .build();
//! assert!(created.is_reconciled());
//!
//! let wallet = test_util::wallet("95b11417-f18f-457f-8804-68e361f9164f")
//!     .share(BackupLocation::GoogleDrive, "0f0e0d0c-0b0a-4908-8706-050403020100")
//!     .build();
//! assert_eq!(wallet.key_shares.len(), 1);
//! ```

use dynamic_waas_api::enums::{ThresholdSignatureScheme, WaasChainEnum};
use dynamic_waas_api::ids::ResourceId;
use reqwest::StatusCode;

use crate::error::{Error, ErrorKind};
use crate::model::{
    BackupLocation, BackupStatus, CreatedBackup, CreatedKeyShare, Wallet, WalletKeyShare,
};

/// An [`Error`] of `kind`, to fill in.
pub fn error(kind: ErrorKind) -> ErrorBuilder {
    ErrorBuilder(Error::new(kind))
}

/// Builds an [`Error`] (see [`error`]).
#[derive(Debug)]
pub struct ErrorBuilder(Error);

impl ErrorBuilder {
    /// The HTTP status (an invalid code is left out).
    pub fn status(mut self, status: u16) -> Self {
        if let Ok(status) = StatusCode::from_u16(status) {
            self.0 = self.0.with_status(status);
        }
        self
    }

    /// The `x-dyn-request-id`.
    pub fn request_id(mut self, id: &str) -> Self {
        self.0 = self.0.with_request_id(Some(id.to_owned()));
        self
    }

    /// Upstream's `error` text.
    pub fn upstream_error(mut self, text: &str) -> Self {
        let code = self.0.upstream_code().map(str::to_owned);
        self.0 = self.0.with_upstream(Some(text.to_owned()), code);
        self
    }

    /// Upstream's `code`.
    pub fn upstream_code(mut self, code: &str) -> Self {
        let text = self.0.upstream_error().map(str::to_owned);
        self.0 = self.0.with_upstream(text, Some(code.to_owned()));
        self
    }

    /// How many requests the call made.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.0 = self.0.with_attempts(attempts);
        self
    }

    /// The cause (`source()`).
    pub fn source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.0 = self.0.with_source(source);
        self
    }

    /// The error.
    pub fn build(self) -> Error {
        self.0
    }
}

/// A [`CreatedBackup`] of `wallet_id`, to fill in: no shares, status `Created`.
pub fn created(wallet_id: &str) -> CreatedBuilder {
    CreatedBuilder {
        wallet_id: wallet_id.to_owned(),
        shares: Vec::new(),
        status: BackupStatus::Created,
    }
}

/// Builds a [`CreatedBackup`] (see [`created`]).
#[derive(Debug)]
pub struct CreatedBuilder {
    wallet_id: String,
    shares: Vec<CreatedKeyShare>,
    status: BackupStatus,
}

impl CreatedBuilder {
    /// A key share at `location`.
    pub fn share(mut self, location: BackupLocation, key_share_id: &str) -> Self {
        let id = ResourceId::received(key_share_id);
        self.shares.push(CreatedKeyShare::new(location, id, None));
        self
    }

    /// How it became known (`Created`, `Reconciled`, `AlreadyBackedUp`).
    pub fn status(mut self, status: BackupStatus) -> Self {
        self.status = status;
        self
    }

    /// The result.
    pub fn build(self) -> CreatedBackup {
        CreatedBackup::for_test(&self.wallet_id, self.shares, self.status)
    }
}

/// A [`Wallet`] with id `wallet_id` (EVM, `TWO_OF_TWO`, no key shares), to fill in.
pub fn wallet(wallet_id: &str) -> WalletBuilder {
    WalletBuilder(Wallet {
        wallet_id: ResourceId::received(wallet_id),
        chain_name: WaasChainEnum::Evm,
        account_address: "0x5cbF6b0bC3B6A5d2b9E1F6f2E3c4D5e6F7a8B9c0".into(),
        derivation_path: "m/44'/60'/0'/0/0".into(),
        threshold_signature_scheme: ThresholdSignatureScheme::TwoOfTwo,
        key_shares: Vec::new(),
    })
}

/// Builds a [`Wallet`] (see [`wallet`]).
#[derive(Debug)]
pub struct WalletBuilder(Wallet);

impl WalletBuilder {
    /// A backed-up key share at `location`.
    pub fn share(mut self, location: BackupLocation, id: &str) -> Self {
        self.0.key_shares.push(WalletKeyShare {
            id: ResourceId::received(id),
            location,
            external_key_share_id: None,
            password_encrypted: false,
        });
        self
    }

    /// The wallet.
    pub fn build(self) -> Wallet {
        self.0
    }
}
