//! Open enums: the closed string enums of the spec, made forward compatible.
//!
//! Dynamic adds enum values without notice. Each enum here keeps a value it does not know
//! as [`Unknown`](WaasBackupOptionsEnum::Unknown) instead of failing the whole response, and
//! sends it back unchanged. Known values are written with upstream's spelling.

use std::fmt;
use std::str::FromStr;

/// An enum value this version of the SDK does not know, kept exactly as received.
///
/// Its text is reachable through `as_str()` on the enum, not by pattern matching, so that
/// code keeps working when a later version learns the value as a named variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnknownValue(String);

impl UnknownValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", $wire, "`")] $variant, )+
            /// A value this version of the SDK does not know (see [`UnknownValue`]).
            Unknown(UnknownValue),
        }

        impl $name {
            /// The values this version knows, spelled as upstream's spec spells them.
            pub const KNOWN: &'static [&'static str] = &[$($wire),+];

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Unknown(value) => value.as_str(),
                }
            }

            /// Whether this version of the SDK does not know the value.
            pub fn is_unknown(&self) -> bool {
                matches!(self, Self::Unknown(_))
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;

            /// Never fails: a value that is not known becomes `Unknown`.
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(match value {
                    $( $wire $(| $alias)* => Self::$variant, )+
                    other => Self::Unknown(UnknownValue(other.to_owned())),
                })
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value.parse() {
                    Ok(parsed) => parsed,
                    Err(never) => match never {},
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a string (", stringify!($name), ")"))
                    }
                    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        Ok($name::from(value))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

open_enum! {
    /// Where a key share is backed up (`WaasBackupOptionsEnum`).
    ///
    /// ```
    /// use dynamic_waas_api::enums::WaasBackupOptionsEnum;
    ///
    /// let known: WaasBackupOptionsEnum = "iCloud".into();
    /// assert_eq!(known, WaasBackupOptionsEnum::ICloud);
    /// // An older JS client spells it `icloud`; it is read as the same value.
    /// assert_eq!(WaasBackupOptionsEnum::from("icloud"), WaasBackupOptionsEnum::ICloud);
    /// // A value added upstream after this release is kept, not refused.
    /// let newer = WaasBackupOptionsEnum::from("paperWallet");
    /// assert!(newer.is_unknown());
    /// assert_eq!(newer.as_str(), "paperWallet");
    /// ```
    WaasBackupOptionsEnum {
        GoogleDrive = "googleDrive",
        ICloud = "iCloud" | "icloud",
        Dynamic = "dynamic",
        External = "external",
        Delegated = "delegated",
        OfflineRecovery = "offlineRecovery",
        User = "user",
    }
}

open_enum! {
    /// The state of the password-update process of a wallet's key shares
    /// (`PasswordUpdateStatus`).
    PasswordUpdateStatus {
        Pending = "pending",
        Activated = "activated",
    }
}

open_enum! {
    /// The role of a wallet's active share set (`ShareSetType`).
    ShareSetType {
        Delegated = "delegated",
        RootUser = "rootUser",
        Server = "server",
        BusinessAccountUser = "businessAccountUser",
    }
}

open_enum! {
    /// The threshold signature scheme of a wallet (`ThresholdSignatureScheme`).
    ThresholdSignatureScheme {
        TwoOfTwo = "TWO_OF_TWO",
        TwoOfThree = "TWO_OF_THREE",
        ThreeOfFive = "THREE_OF_FIVE",
    }
}

open_enum! {
    /// The chain of a WaaS wallet (`WaasChainEnum`).
    WaasChainEnum {
        Evm = "EVM",
        Svm = "SVM",
        Sui = "SUI",
        Btc = "BTC",
        Ton = "TON",
    }
}
