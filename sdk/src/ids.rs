//! Ids in upstream's `uuid` schema: 36 characters, lower-case hex, hyphenated.
//!
//! [`EnvironmentId`], [`WalletId`] and [`UserId`] are distinct types so that they cannot be
//! swapped, and so that a bad value is reported with the name of its field before
//! anything is sent. [`ResourceId`] is the id type of responses: it is lenient when reading
//! (a response is never lost to an id the server spells differently) and strict when parsed.

use std::fmt;
use std::str::FromStr;

const EXAMPLE: &str = "95b11417-f18f-457f-8804-68e361f9164f";

/// An id that is not a lower-case hyphenated UUID; says which field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidId {
    field: &'static str,
    problem: String,
}

impl InvalidId {
    /// The field, spelled as in the API (`walletId`, `environmentId`, ...).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with the value.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be a lower-case hyphenated UUID such as {EXAMPLE}: {}",
            self.field, self.problem
        )
    }
}

impl std::error::Error for InvalidId {}

/// Checks `value` against upstream's `uuid` pattern, naming `field` in the error.
pub fn validate(field: &'static str, value: &str) -> Result<(), InvalidId> {
    let fail = |problem: String| Err(InvalidId { field, problem });
    if value.is_empty() {
        return fail("it is empty".into());
    }
    let count = value.chars().count();
    if count != 36 {
        return fail(format!("it is {count} characters long, not 36"));
    }
    for (i, c) in value.chars().enumerate() {
        let hyphen = matches!(i, 8 | 13 | 18 | 23);
        let ok = if hyphen {
            c == '-'
        } else {
            c.is_ascii_digit() || ('a'..='f').contains(&c)
        };
        if ok {
            continue;
        }
        if !hyphen && ('A'..='F').contains(&c) {
            return fail(format!(
                "it has upper-case hex digits; send {:?}",
                value.to_ascii_lowercase()
            ));
        }
        let expected = if hyphen {
            "'-'"
        } else {
            "a hex digit 0-9 or a-f"
        };
        return fail(format!("character {} is {c:?}, expected {expected}", i + 1));
    }
    Ok(())
}

/// The 36 characters of a validated id, inline: an id is made, cloned and sent without
/// allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Inline([u8; 36]);

impl Inline {
    fn as_str(&self) -> &str {
        // Only ever built from a validated id (ASCII) or a UUID's encoding.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl From<&str> for Inline {
    /// For a validated id: 36 ASCII characters.
    fn from(value: &str) -> Self {
        let mut bytes = [b'0'; 36];
        let n = value.len().min(36);
        bytes[..n].copy_from_slice(&value.as_bytes()[..n]);
        Self(bytes)
    }
}

impl From<String> for Inline {
    fn from(value: String) -> Self {
        Self::from(value.as_str())
    }
}

/// How an id's storage holds a UUID: lower-case and hyphenated, as upstream requires.
trait FromUuid {
    fn from_uuid(id: uuid::Uuid) -> Self;
}

impl FromUuid for Inline {
    fn from_uuid(id: uuid::Uuid) -> Self {
        let mut bytes = [0; 36];
        id.hyphenated().encode_lower(&mut bytes);
        Self(bytes)
    }
}

impl FromUuid for String {
    fn from_uuid(id: uuid::Uuid) -> Self {
        id.hyphenated().to_string()
    }
}

impl std::ops::Deref for Inline {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Inline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        id_type!($(#[$meta])* $name, $field, Inline);
    };
    ($(#[$meta:meta])* $name:ident, $field:literal, $store:ty) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($store);

        impl $name {
            /// The field this id fills, spelled as in the API.
            pub const FIELD: &'static str = $field;

            /// Validates `value`; the error names the field.
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                validate($field, value)?;
                Ok(Self(<$store>::from(value)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as a [`uuid::Uuid`], when it is a valid one.
            pub fn to_uuid(&self) -> Option<uuid::Uuid> {
                uuid::Uuid::try_parse(&self.0[..]).ok()
            }

            /// A new random id (a UUID v4), for tests and seeds.
            pub fn random() -> Self {
                Self::from(uuid::Uuid::new_v4())
            }
        }

        impl From<uuid::Uuid> for $name {
            /// Always valid: written lower-case and hyphenated, as upstream requires.
            fn from(id: uuid::Uuid) -> Self {
                Self(<$store as FromUuid>::from_uuid(id))
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(value: &str) -> Result<Self, InvalidId> {
                Self::parse(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;
            fn try_from(value: &str) -> Result<Self, InvalidId> {
                Self::parse(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                validate($field, &value)?;
                Ok(Self(<$store>::from(value)))
            }
        }

        crate::text_newtype!($name);
    };
}

id_type!(
    /// The id of a Dynamic environment (the `environmentId` path parameter).
    ///
    /// ```
    /// use dynamic_waas_api::ids::EnvironmentId;
    ///
    /// let id: EnvironmentId = "95b11417-f18f-457f-8804-68e361f9164f".parse().unwrap();
    /// assert_eq!(id.as_str(), "95b11417-f18f-457f-8804-68e361f9164f");
    /// let err = "95B11417-F18F-457F-8804-68E361F9164F".parse::<EnvironmentId>().unwrap_err();
    /// assert_eq!(err.field(), "environmentId");
    /// ```
    EnvironmentId,
    "environmentId"
);
id_type!(
    /// The id of a WaaS wallet (the `walletId` path parameter).
    WalletId,
    "walletId"
);
id_type!(
    /// The id of a user (`userId` in a create's body): the owner of the wallet.
    UserId,
    "userId"
);
id_type!(
    /// The id of a share set (`shareSetId` in a create's body): the share set a backup
    /// activates.
    ShareSetId,
    "shareSetId"
);
id_type!(
    /// An id in a response (`walletId`, `keyShareId`, ...). Reading a response accepts any
    /// string, so that an unexpected spelling never loses the response; parsing one
    /// yourself validates it. [`ResourceId::is_valid`] tells whether a received id is
    /// well-formed.
    ResourceId,
    "id",
    String
);

impl ResourceId {
    /// An id as the server sent it, unchecked (see [`ResourceId::is_valid`]).
    pub fn received(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Whether the id matches upstream's `uuid` pattern.
    pub fn is_valid(&self) -> bool {
        validate(Self::FIELD, &self.0).is_ok()
    }
}

fn deserialize_strict<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<String, Error = InvalidId>,
{
    let value = <String as serde::Deserialize>::deserialize(deserializer)?;
    T::try_from(value).map_err(serde::de::Error::custom)
}

impl<'de> serde::Deserialize<'de> for EnvironmentId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_strict(deserializer)
    }
}

impl<'de> serde::Deserialize<'de> for WalletId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_strict(deserializer)
    }
}

impl<'de> serde::Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_strict(deserializer)
    }
}

impl<'de> serde::Deserialize<'de> for ShareSetId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_strict(deserializer)
    }
}

impl<'de> serde::Deserialize<'de> for ResourceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(ResourceId)
    }
}
