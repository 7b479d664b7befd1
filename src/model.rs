//! What callers pass in and get back: id arguments, locations, a create's result and a wallet.

use std::sync::LazyLock;

use dynamic_waas_api::enums::{
    PasswordUpdateStatus, ShareSetType, ThresholdSignatureScheme, WaasBackupOptionsEnum,
    WaasChainEnum,
};
use dynamic_waas_api::ids::{EnvironmentId, InvalidId, ResourceId, ShareSetId, UserId, WalletId};
use dynamic_waas_api::labels::{ExternalKeyShareId, KeygenId};
use dynamic_waas_api::types;
use serde::ser::SerializeStruct;

use crate::engine::attempt::RequestId;
use crate::error::Error;

/// Where a key share is backed up. Values Dynamic adds after this release are kept and sent
/// as they are (`BackupLocation::from("paperWallet")`).
pub type BackupLocation = WaasBackupOptionsEnum;

/// An id argument for the role `T` ([`EnvironmentId`], [`WalletId`], [`UserId`]): a value of
/// that type, a [`uuid::Uuid`] (always valid, sent lower-case), or text (checked before
/// anything is sent; the error names the field).
///
/// A typed id only fills its own role, so that ids cannot be swapped:
///
/// ```compile_fail
/// # async fn demo(client: dynamic_waas::Client, env: dynamic_waas::EnvironmentId, wallet: dynamic_waas::WalletId) {
/// // A wallet id where the environment goes does not compile.
/// let _ = client.get_wallet(&wallet, &env).await;
/// # }
/// ```
///
/// ```
/// # async fn demo(client: dynamic_waas::Client, env: dynamic_waas::EnvironmentId, wallet: dynamic_waas::WalletId) {
/// let _ = client.get_wallet(&env, &wallet).await;
/// let _ = client.get_wallet("0b1c2d3e-4f50-4617-8899-aabbccddeeff", uuid::Uuid::new_v4()).await;
/// # }
/// ```
pub trait IdArg<T>: sealed::Sealed {
    #[doc(hidden)]
    fn into_id(self) -> Result<T, Error>;

    /// The id as a UUID without a round trip through text, when the argument is one.
    #[doc(hidden)]
    fn as_uuid(&self) -> Option<uuid::Uuid> {
        None
    }
}

mod sealed {
    /// Implemented for the argument types of [`IdArg`](super::IdArg) only.
    pub trait Sealed {}

    /// The id types text and [`uuid::Uuid`]s may fill (a public trait in a private module:
    /// nameable by no user).
    pub trait Role:
        From<uuid::Uuid>
        + TryFrom<String, Error = dynamic_waas_api::ids::InvalidId>
        + for<'a> TryFrom<&'a str, Error = dynamic_waas_api::ids::InvalidId>
    {
    }
}

impl sealed::Role for EnvironmentId {}
impl sealed::Role for WalletId {}
impl sealed::Role for UserId {}
impl sealed::Role for ShareSetId {}

impl sealed::Sealed for &str {}
impl sealed::Sealed for String {}
impl sealed::Sealed for &String {}
impl sealed::Sealed for uuid::Uuid {}
impl sealed::Sealed for &uuid::Uuid {}
impl sealed::Sealed for EnvironmentId {}
impl sealed::Sealed for &EnvironmentId {}
impl sealed::Sealed for WalletId {}
impl sealed::Sealed for &WalletId {}
impl sealed::Sealed for UserId {}
impl sealed::Sealed for &UserId {}
impl sealed::Sealed for ShareSetId {}
impl sealed::Sealed for &ShareSetId {}

impl<T: sealed::Role> IdArg<T> for &str {
    fn into_id(self) -> Result<T, Error> {
        T::try_from(self).map_err(id_error)
    }
}
impl<T: sealed::Role> IdArg<T> for String {
    fn into_id(self) -> Result<T, Error> {
        T::try_from(self).map_err(id_error)
    }
}
impl<T: sealed::Role> IdArg<T> for &String {
    fn into_id(self) -> Result<T, Error> {
        T::try_from(self.as_str()).map_err(id_error)
    }
}
impl<T: sealed::Role> IdArg<T> for uuid::Uuid {
    fn into_id(self) -> Result<T, Error> {
        Ok(T::from(self))
    }

    fn as_uuid(&self) -> Option<uuid::Uuid> {
        Some(*self)
    }
}
impl<T: sealed::Role> IdArg<T> for &uuid::Uuid {
    fn into_id(self) -> Result<T, Error> {
        Ok(T::from(*self))
    }

    fn as_uuid(&self) -> Option<uuid::Uuid> {
        Some(**self)
    }
}

/// Each typed id fills its own role only.
macro_rules! typed_id_arg {
    ($($ty:ty),+) => {$(
        impl IdArg<$ty> for $ty {
            fn into_id(self) -> Result<$ty, Error> {
                Ok(self)
            }
        }
        impl IdArg<$ty> for &$ty {
            fn into_id(self) -> Result<$ty, Error> {
                Ok(self.clone())
            }
        }
    )+};
}
typed_id_arg!(EnvironmentId, WalletId, UserId, ShareSetId);

fn id_error(e: InvalidId) -> Error {
    Error::invalid_input(
        e.field(),
        format!("{} (expected a lower-case hyphenated UUID)", e.problem()),
    )
}

/// One location of a create request.
///
/// ```
/// use dynamic_waas::{BackupLocation, LocationRequest, ThresholdSignatureScheme};
///
/// let plain: LocationRequest = BackupLocation::GoogleDrive.into();
/// let detailed = LocationRequest::new(BackupLocation::External)
///     .with_keygen_id("keygen 2026-11")
///     .with_threshold_signature_scheme(ThresholdSignatureScheme::TwoOfThree)
///     .with_external_key_share_id("vault/share-7");
/// assert_eq!(detailed.keygen_id(), Some("keygen 2026-11"));
/// # let _ = plain;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationRequest {
    location: BackupLocation,
    keygen_id: Option<String>,
    threshold_signature_scheme: Option<ThresholdSignatureScheme>,
    external_key_share_id: Option<String>,
}

impl LocationRequest {
    /// A location with no optional fields.
    pub fn new(location: BackupLocation) -> Self {
        Self {
            location,
            keygen_id: None,
            threshold_signature_scheme: None,
            external_key_share_id: None,
        }
    }

    /// `keygenId`: 1 to 255 characters (letters, digits, space, `_.,:!?&%@/+-'|`; no white
    /// space first or last), checked when the call is made.
    pub fn with_keygen_id(mut self, id: impl Into<String>) -> Self {
        self.keygen_id = Some(id.into());
        self
    }

    /// `thresholdSignatureScheme` of the key shares.
    pub fn with_threshold_signature_scheme(mut self, scheme: ThresholdSignatureScheme) -> Self {
        self.threshold_signature_scheme = Some(scheme);
        self
    }

    /// `externalKeyShareId`: your own id for the share, same characters as `keygenId`.
    pub fn with_external_key_share_id(mut self, id: impl Into<String>) -> Self {
        self.external_key_share_id = Some(id.into());
        self
    }

    /// Where the share is backed up.
    pub fn location(&self) -> &BackupLocation {
        &self.location
    }

    /// See [`with_keygen_id`](Self::with_keygen_id).
    pub fn keygen_id(&self) -> Option<&str> {
        self.keygen_id.as_deref()
    }

    /// See [`with_threshold_signature_scheme`](Self::with_threshold_signature_scheme).
    pub fn threshold_signature_scheme(&self) -> Option<&ThresholdSignatureScheme> {
        self.threshold_signature_scheme.as_ref()
    }

    /// See [`with_external_key_share_id`](Self::with_external_key_share_id).
    pub fn external_key_share_id(&self) -> Option<&str> {
        self.external_key_share_id.as_deref()
    }

    // The update from a blank value sets no field today; it is what keeps an optional field
    // upstream adds later unset, with no edit here.
    #[allow(clippy::needless_update)]
    pub(crate) fn validate(
        self,
        index: usize,
    ) -> Result<types::BackupKeySharesToLocationsWithUserIdRequestLocationsItem, Error> {
        let label_error = |e: dynamic_waas_api::labels::InvalidLabel| {
            Error::invalid_input(format!("locations[{index}].{}", e.field()), e.problem())
        };
        Ok(
            types::BackupKeySharesToLocationsWithUserIdRequestLocationsItem {
                location: self.location,
                keygen_id: self
                    .keygen_id
                    .map(KeygenId::try_from)
                    .transpose()
                    .map_err(label_error)?,
                threshold_signature_scheme: self.threshold_signature_scheme,
                external_key_share_id: self
                    .external_key_share_id
                    .map(ExternalKeyShareId::try_from)
                    .transpose()
                    .map_err(label_error)?,
                ..blank(&BLANK_LOCATION)?
            },
        )
    }
}

impl From<BackupLocation> for LocationRequest {
    fn from(location: BackupLocation) -> Self {
        Self::new(location)
    }
}

/// A value of a generated type with every optional field unset, read once from its required
/// fields. Request values are built from it with struct update syntax, so that an optional
/// field upstream adds later regenerates unset, with no edit here.
type Blank<T> = LazyLock<Result<T, String>>;

static BLANK_LOCATION: Blank<types::BackupKeySharesToLocationsWithUserIdRequestLocationsItem> =
    LazyLock::new(|| {
        serde_json::from_value(serde_json::json!({ "location": "googleDrive" }))
            .map_err(|e| e.to_string())
    });

pub(crate) static BLANK_REQUEST: Blank<types::BackupKeySharesToLocationsWithUserIdRequest> =
    LazyLock::new(|| {
        serde_json::from_value(serde_json::json!({
            "userId": "00000000-0000-0000-0000-000000000000",
            "locations": [],
        }))
        .map_err(|e| e.to_string())
    });

/// A clone of a blank value, or why this release cannot build one (a field upstream made
/// required that the facade does not set: a breaking change, caught before anything is sent).
pub(crate) fn blank<T: Clone>(blank: &Blank<T>) -> Result<T, Error> {
    match &**blank {
        Ok(value) => Ok(value.clone()),
        Err(e) => Err(Error::invalid_input(
            "request",
            format!("this release cannot build the request ({e}); upgrade dynamic-waas"),
        )),
    }
}

/// How a backup came to be known: what [`CreatedBackup::status`] and a bulk outcome say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupStatus {
    /// The create answered 201 with the key shares.
    Created,
    /// The create's answer was lost after it was applied; the key shares were read from the
    /// wallet.
    Reconciled,
    /// The wallet was backed up before (by an earlier run, say): the key shares are the ones
    /// it holds, read from it. In a bulk outcome, empty when that read failed (see its error).
    AlreadyBackedUp,
    /// Bulk only: the wallet was on an earlier row of the same run, which settled it; nothing
    /// was sent for this row, and its key shares are that row's.
    Duplicate,
    /// Bulk only: nothing was created (see the outcome's error).
    Failed,
    /// Bulk only: the create may or may not have been applied and the wallet could not tell:
    /// a later run reads it before creating again.
    Unknown,
}

impl BackupStatus {
    /// A stable snake_case name, as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            BackupStatus::Created => "created",
            BackupStatus::Reconciled => "reconciled",
            BackupStatus::AlreadyBackedUp => "already_backed_up",
            BackupStatus::Duplicate => "duplicate",
            BackupStatus::Failed => "failed",
            BackupStatus::Unknown => "unknown",
        }
    }
}

/// A key share of a backup: what to store.
///
/// Serializes as the API does: `location`, `keyShareId` and, when known,
/// `externalKeyShareId`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreatedKeyShare {
    /// Where the share is backed up.
    pub location: BackupLocation,
    /// Store this next to your backup: it names the key share at Dynamic.
    pub key_share_id: ResourceId,
    /// Dynamic's `externalKeyShareId` for it (absent when a wallet read did not show one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_key_share_id: Option<ResourceId>,
}

impl CreatedKeyShare {
    pub(crate) fn new(
        location: BackupLocation,
        key_share_id: ResourceId,
        external_key_share_id: Option<ResourceId>,
    ) -> Self {
        Self {
            location,
            key_share_id,
            external_key_share_id,
        }
    }
}

/// The result of a create: the key shares, and how the client learned about them.
///
/// Serializes as the API's 201 body (`message`, `walletId`, `locationsWithKeyShares`), with
/// `"reconciled": true` added when it was rebuilt from a wallet read after a lost answer, and
/// `"alreadyBackedUp": true` when the wallet had been backed up before (see
/// [`CreateBackupLocations::accept_existing`](crate::CreateBackupLocations::accept_existing)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedBackup {
    message: String,
    wallet_id: ResourceId,
    shares: Vec<CreatedKeyShare>,
    share_set: ShareSet,
    status: BackupStatus,
    request_id: RequestId,
    attempts: u32,
    raw_body: Option<bytes::Bytes>,
}

/// What the server said about the share set (upstream's current revision); all optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ShareSet {
    id: Option<String>,
    password_update_status: Option<PasswordUpdateStatus>,
    kind: Option<ShareSetType>,
    wallet_active: Option<bool>,
}

impl CreatedBackup {
    pub(crate) fn from_response(
        body: types::BackupKeySharesToLocationsResponse,
        raw_body: Option<bytes::Bytes>,
        request_id: RequestId,
        attempts: u32,
    ) -> Self {
        Self {
            share_set: ShareSet {
                id: body.share_set_id,
                password_update_status: body.password_update_status,
                kind: body.share_set_type,
                wallet_active: body.wallet_active,
            },
            message: body.message,
            wallet_id: body.wallet_id,
            shares: body
                .locations_with_key_shares
                .into_iter()
                .map(|s| {
                    CreatedKeyShare::new(s.location, s.key_share_id, Some(s.external_key_share_id))
                })
                .collect(),
            status: BackupStatus::Created,
            request_id,
            attempts,
            raw_body,
        }
    }

    /// A result read from a wallet: `status` says why (reconciled, or already backed up).
    pub(crate) fn from_wallet(
        wallet: &Wallet,
        shares: Vec<CreatedKeyShare>,
        status: BackupStatus,
        request_id: RequestId,
        attempts: u32,
    ) -> Self {
        let message = match status {
            BackupStatus::AlreadyBackedUp => {
                "The wallet was backed up before; read from the wallet"
            }
            _ => "Reconciled from the wallet after the create's response was lost",
        };
        Self {
            message: message.into(),
            wallet_id: wallet.wallet_id.clone(),
            shares,
            share_set: ShareSet::default(),
            status,
            request_id,
            attempts,
            raw_body: None,
        }
    }

    #[cfg(feature = "test-util")]
    pub(crate) fn for_test(
        wallet_id: &str,
        shares: Vec<CreatedKeyShare>,
        status: BackupStatus,
    ) -> Self {
        Self {
            message: "Backup action and event created successfully".into(),
            wallet_id: ResourceId::received(wallet_id),
            shares,
            share_set: ShareSet::default(),
            status,
            request_id: RequestId::default(),
            attempts: 1,
            raw_body: None,
        }
    }

    /// One entry per requested location, with the key share id to store.
    pub fn locations_with_key_shares(&self) -> &[CreatedKeyShare] {
        &self.shares
    }

    /// The wallet the shares belong to.
    pub fn wallet_id(&self) -> &ResourceId {
        &self.wallet_id
    }

    /// The server's message (or a note that the result was read from the wallet).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How the key shares became known: [`BackupStatus::Created`] (the 201),
    /// [`BackupStatus::Reconciled`] (the answer was lost after the create was applied; read
    /// from the wallet) or [`BackupStatus::AlreadyBackedUp`] (the wallet had been backed up
    /// before; read from it).
    pub fn status(&self) -> BackupStatus {
        self.status
    }

    /// `true` when the create's response was lost and the key shares were read back from the
    /// wallet instead (the create happened exactly once).
    pub fn is_reconciled(&self) -> bool {
        self.status == BackupStatus::Reconciled
    }

    /// The `x-dyn-request-id` of the last request of the call.
    pub fn request_id(&self) -> &str {
        self.request_id.as_str()
    }

    /// The 201 body exactly as received (fields this SDK does not know included); `None` for
    /// a result read from the wallet.
    pub fn raw_body(&self) -> Option<&[u8]> {
        self.raw_body.as_deref()
    }

    /// HTTP requests the call made, wallet reads included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// `shareSetId`: the share set this backup activated, when the server said (`None` for a
    /// result read from the wallet).
    pub fn share_set_id(&self) -> Option<&str> {
        self.share_set.id.as_deref()
    }

    /// `passwordUpdateStatus`: the state of the password-update process, when the server
    /// said.
    pub fn password_update_status(&self) -> Option<&PasswordUpdateStatus> {
        self.share_set.password_update_status.as_ref()
    }

    /// `shareSetType`: the role of the wallet's active share set, when the server said
    /// (`null` on the wire, when no wallet is active, is `None` too).
    pub fn share_set_type(&self) -> Option<&ShareSetType> {
        self.share_set.kind.as_ref()
    }

    /// `walletActive`: whether the wallet has an active root-user share set, when the server
    /// said.
    pub fn wallet_active(&self) -> Option<bool> {
        self.share_set.wallet_active
    }

    /// The top-level fields of the 201 body that this release does not know (fields upstream
    /// added later), as received; empty for a result read from the wallet. Known fields sent
    /// as `null` are not listed.
    ///
    /// ```
    /// # fn demo(created: dynamic_waas::CreatedBackup) {
    /// if let Some(action) = created.extra().get("backupActionId") {
    ///     println!("backup action {action}");
    /// }
    /// # }
    /// ```
    pub fn extra(&self) -> serde_json::Map<String, serde_json::Value> {
        let Some(raw) = &self.raw_body else {
            return serde_json::Map::new();
        };
        let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(raw) else {
            return serde_json::Map::new();
        };
        // What this release reads: the typed response, written back.
        let known = serde_json::from_slice::<types::BackupKeySharesToLocationsResponse>(raw)
            .ok()
            .and_then(|typed| serde_json::to_value(typed).ok());
        if let Some(serde_json::Value::Object(known)) = known {
            fields.retain(|name, value| !known.contains_key(name) && !value.is_null());
        }
        fields
    }
}

impl serde::Serialize for CreatedBackup {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let flag = match self.status {
            BackupStatus::Reconciled => Some("reconciled"),
            BackupStatus::AlreadyBackedUp => Some("alreadyBackedUp"),
            _ => None,
        };
        let mut out =
            serializer.serialize_struct("CreatedBackup", 3 + usize::from(flag.is_some()))?;
        out.serialize_field("message", &self.message)?;
        out.serialize_field("walletId", &self.wallet_id)?;
        out.serialize_field("locationsWithKeyShares", &self.shares)?;
        if let Some(flag) = flag {
            out.serialize_field(flag, &true)?;
        }
        out.end()
    }
}

/// A WaaS wallet as [`Client::get_wallet`](crate::Client::get_wallet) reads it, with its
/// backed-up key shares.
///
/// `#[non_exhaustive]`: fields upstream adds become new fields here without breaking your
/// code (build one for a test with `dynamic_waas::test_util::wallet`, feature `test-util`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Wallet {
    /// The wallet's id.
    pub wallet_id: ResourceId,
    /// `chainName`.
    pub chain_name: WaasChainEnum,
    /// `accountAddress`.
    pub account_address: String,
    /// `derivationPath`.
    pub derivation_path: String,
    /// `thresholdSignatureScheme`.
    pub threshold_signature_scheme: ThresholdSignatureScheme,
    /// The key shares backed up so far (none until a create is applied).
    pub key_shares: Vec<WalletKeyShare>,
}

/// A backed-up key share of a [`Wallet`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WalletKeyShare {
    /// The key share's id: the `keyShareId` a create answered.
    pub id: ResourceId,
    /// Where it is backed up (`backupLocation`).
    pub location: BackupLocation,
    /// `externalKeyShareId`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_key_share_id: Option<String>,
    /// `passwordEncrypted`.
    pub password_encrypted: bool,
}

impl From<types::WaasWallet> for Wallet {
    fn from(wallet: types::WaasWallet) -> Self {
        Self {
            wallet_id: wallet.wallet_id,
            chain_name: wallet.chain_name,
            account_address: wallet.account_address,
            derivation_path: wallet.derivation_path,
            threshold_signature_scheme: wallet.threshold_signature_scheme,
            key_shares: wallet
                .key_shares
                .into_iter()
                .map(|share| WalletKeyShare {
                    location: BackupLocation::from(share.backup_location.as_str()),
                    id: share.id,
                    external_key_share_id: share.external_key_share_id,
                    password_encrypted: share.password_encrypted,
                })
                .collect(),
        }
    }
}

impl WalletKeyShare {
    /// As a [`CreatedKeyShare`], the form a create's result lists.
    pub fn to_created(&self) -> CreatedKeyShare {
        CreatedKeyShare::new(
            self.location.clone(),
            self.id.clone(),
            self.external_key_share_id
                .as_ref()
                .map(|e| ResourceId::received(e.clone())),
        )
    }
}
