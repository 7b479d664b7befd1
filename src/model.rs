//! What callers pass in and get back.

use dynamic_waas_api::enums::{
    PasswordUpdateStatus, ShareSetType, ThresholdSignatureScheme, WaasBackupOptionsEnum,
};
use dynamic_waas_api::ids::{EnvironmentId, ResourceId, WalletId};
use dynamic_waas_api::labels::{ExternalKeyShareId, KeygenId};
use dynamic_waas_api::types;
use std::sync::LazyLock;

use serde::ser::SerializeStruct;

use crate::error::Error;

/// Where a key share is backed up. Values Dynamic adds after this release are kept and sent
/// as they are (`BackupLocation::from("paperWallet")`).
pub type BackupLocation = WaasBackupOptionsEnum;

/// An id argument: a [`uuid::Uuid`] (always valid, sent lower-case) or text (validated
/// before anything is sent; the error names the field).
pub trait IdArg {
    #[doc(hidden)]
    fn into_id_text(self) -> IdText;
}

#[doc(hidden)]
pub enum IdText {
    Uuid(uuid::Uuid),
    Text(String),
}

impl IdArg for uuid::Uuid {
    fn into_id_text(self) -> IdText {
        IdText::Uuid(self)
    }
}
impl IdArg for &uuid::Uuid {
    fn into_id_text(self) -> IdText {
        IdText::Uuid(*self)
    }
}

/// Text ids (validated when the call is made, like any other text).
macro_rules! text_id_arg {
    ($($ty:ty => |$v:ident| $text:expr),+ $(,)?) => {$(
        impl IdArg for $ty {
            fn into_id_text(self) -> IdText {
                let $v = self;
                IdText::Text($text)
            }
        }
    )+};
}

text_id_arg! {
    &str => |s| s.to_owned(),
    String => |s| s,
    &String => |s| s.clone(),
    EnvironmentId => |id| id.as_str().to_owned(),
    WalletId => |id| id.as_str().to_owned(),
    &EnvironmentId => |id| id.as_str().to_owned(),
    &WalletId => |id| id.as_str().to_owned(),
}

/// A path id (`EnvironmentId`, `WalletId`) from either form of argument.
pub(crate) fn path_id<T>(arg: impl IdArg) -> Result<T, Error>
where
    T: From<uuid::Uuid> + TryFrom<String, Error = dynamic_waas_api::ids::InvalidId>,
{
    match arg.into_id_text() {
        IdText::Uuid(id) => Ok(id.into()),
        IdText::Text(text) => T::try_from(text).map_err(id_error),
    }
}

pub(crate) fn user_id(arg: impl IdArg) -> Result<uuid::Uuid, Error> {
    match arg.into_id_text() {
        IdText::Uuid(id) => Ok(id),
        IdText::Text(text) => {
            // Same rule as the path ids, so that an id is either valid everywhere or nowhere.
            dynamic_waas_api::ids::validate("userId", &text).map_err(id_error)?;
            uuid::Uuid::try_parse(&text).map_err(|e| Error::invalid_input("userId", e.to_string()))
        }
    }
}

/// `shareSetId`: the share set a backup activates (upstream's `uuid` schema).
pub(crate) fn share_set_id(arg: impl IdArg) -> Result<ResourceId, Error> {
    match arg.into_id_text() {
        IdText::Uuid(id) => Ok(id.into()),
        IdText::Text(text) => {
            dynamic_waas_api::ids::validate("shareSetId", &text).map_err(id_error)?;
            Ok(ResourceId::received(text))
        }
    }
}

fn id_error(e: dynamic_waas_api::ids::InvalidId) -> Error {
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
///     .keygen_id("keygen 2026-11")
///     .threshold_signature_scheme(ThresholdSignatureScheme::TwoOfThree)
///     .external_key_share_id("vault/share-7");
/// # let _ = (plain, detailed);
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
    pub fn keygen_id(mut self, id: impl Into<String>) -> Self {
        self.keygen_id = Some(id.into());
        self
    }

    /// `thresholdSignatureScheme` of the key shares.
    pub fn threshold_signature_scheme(mut self, scheme: ThresholdSignatureScheme) -> Self {
        self.threshold_signature_scheme = Some(scheme);
        self
    }

    /// `externalKeyShareId`: your own id for the share, same characters as `keygenId`.
    pub fn external_key_share_id(mut self, id: impl Into<String>) -> Self {
        self.external_key_share_id = Some(id.into());
        self
    }

    /// Where the share is backed up.
    pub fn location(&self) -> &BackupLocation {
        &self.location
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

impl From<BackupLocation> for LocationRequest {
    fn from(location: BackupLocation) -> Self {
        Self::new(location)
    }
}

/// A key share the create made.
///
/// Serializes as the API does: `location`, `keyShareId` and, when known,
/// `externalKeyShareId`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKeyShare {
    /// Where the share is backed up.
    pub location: BackupLocation,
    /// Store this next to your backup: it names the key share at Dynamic.
    pub key_share_id: ResourceId,
    /// Dynamic's `externalKeyShareId` for it (absent when a reconciliation read did not
    /// show one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_key_share_id: Option<ResourceId>,
}

/// The result of a create: the key shares, and how the client learned about them.
///
/// Serializes as the API's 201 body (`message`, `walletId`, `locationsWithKeyShares`), with
/// `"reconciled": true` added when it was rebuilt from a wallet read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedBackup {
    message: String,
    wallet_id: ResourceId,
    shares: Vec<CreatedKeyShare>,
    share_set: ShareSet,
    reconciled: bool,
    request_id: String,
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
        request_id: String,
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
                .map(|s| CreatedKeyShare {
                    location: s.location,
                    key_share_id: s.key_share_id,
                    external_key_share_id: Some(s.external_key_share_id),
                })
                .collect(),
            reconciled: false,
            request_id,
            attempts,
            raw_body: None,
        }
    }

    /// A created result, for users' unit tests of their own code (feature `test-util`):
    /// `shares` as `(location, keyShareId)`, the server's message and a request id.
    ///
    /// ```
    /// # #[cfg(feature = "test-util")] {
    /// use dynamic_waas::{BackupLocation, CreatedBackup};
    ///
    /// let created = CreatedBackup::for_test(
    ///     "95b11417-f18f-457f-8804-68e361f9164f",
    ///     [(BackupLocation::GoogleDrive, "0f0e0d0c-0b0a-4908-8706-050403020100")],
    /// );
    /// assert_eq!(created.locations_with_key_shares().len(), 1);
    /// assert!(!created.is_reconciled());
    /// # }
    /// ```
    #[cfg(feature = "test-util")]
    pub fn for_test<'a>(
        wallet_id: &str,
        shares: impl IntoIterator<Item = (BackupLocation, &'a str)>,
    ) -> Self {
        Self {
            message: "Backup action and event created successfully".into(),
            wallet_id: ResourceId::received(wallet_id.to_owned()),
            shares: shares
                .into_iter()
                .map(|(location, id)| CreatedKeyShare {
                    location,
                    key_share_id: ResourceId::received(id.to_owned()),
                    external_key_share_id: None,
                })
                .collect(),
            share_set: ShareSet::default(),
            reconciled: false,
            request_id: "test".into(),
            attempts: 1,
            raw_body: None,
        }
    }

    /// The same result, marked as reconciled from a wallet read (feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn reconciled_for_test(mut self) -> Self {
        self.reconciled = true;
        self
    }

    pub(crate) fn with_raw_body(mut self, raw: bytes::Bytes) -> Self {
        self.raw_body = Some(raw);
        self
    }

    pub(crate) fn reconciled(
        wallet: &types::WaasWallet,
        shares: Vec<CreatedKeyShare>,
        request_id: String,
        attempts: u32,
    ) -> Self {
        Self {
            message: "Reconciled from the wallet after the create's response was lost".into(),
            wallet_id: wallet.wallet_id.clone(),
            shares,
            share_set: ShareSet::default(),
            reconciled: true,
            request_id,
            attempts,
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

    /// The server's message (or a note that the result was reconciled).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `true` when the create's response was lost and the key shares were read back from the
    /// wallet instead (the create happened exactly once).
    pub fn is_reconciled(&self) -> bool {
        self.reconciled
    }

    /// The `x-dyn-request-id` of the request that answered.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The 201 body exactly as received (fields this SDK does not know included); `None` for
    /// a reconciled result, which was built from a wallet read.
    pub fn raw_body(&self) -> Option<&[u8]> {
        self.raw_body.as_deref()
    }

    /// HTTP requests the call made, wallet reads included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// `shareSetId`: the share set this backup activated, when the server said (`None` for a
    /// reconciled result, which was read from the wallet).
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
    /// added later), as received; empty for a reconciled result. Known fields sent as `null`
    /// are not listed.
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
        let fields = if self.reconciled { 4 } else { 3 };
        let mut out = serializer.serialize_struct("CreatedBackup", fields)?;
        out.serialize_field("message", &self.message)?;
        out.serialize_field("walletId", &self.wallet_id)?;
        out.serialize_field("locationsWithKeyShares", &self.shares)?;
        if self.reconciled {
            out.serialize_field("reconciled", &true)?;
        }
        out.end()
    }
}
