//! `keygenId` and `externalKeyShareId`: free-form labels that upstream constrains with the
//! pattern `^(?=\S)[\p{L}\p{N}a-zA-Z _.,:!?&%@\/+\-'|]+(?<=\S)$`.
//!
//! The pattern is checked here, before anything is sent, without a regex engine: the
//! look-arounds only say "no white space first or last", and the class is letters, digits,
//! space and `_ . , : ! ? & % @ / + - ' |`. Digits are exactly `\p{N}` (`char::is_numeric`).
//! Letters use `char::is_alphabetic` (Unicode `Alphabetic`), a small superset of `\p{L}`
//! (it adds some combining vowel signs): a value upstream accepts is never refused here,
//! and the rare value that only the server refuses comes back as a 400 naming the field.

use std::fmt;
use std::str::FromStr;

const PUNCTUATION: &str = " _.,:!?&%@/+-'|";

/// A label that breaks upstream's constraints; says which field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLabel {
    field: &'static str,
    problem: String,
}

impl InvalidLabel {
    pub fn field(&self) -> &'static str {
        self.field
    }

    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for InvalidLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is invalid: {}", self.field, self.problem)
    }
}

impl std::error::Error for InvalidLabel {}

/// Whether `c` is in upstream's character class.
pub fn is_allowed_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || PUNCTUATION.contains(c)
}

/// Checks `value` against upstream's pattern and length bounds, naming `field`.
pub fn validate(
    field: &'static str,
    value: &str,
    max_chars: Option<usize>,
) -> Result<(), InvalidLabel> {
    let fail = |problem: String| Err(InvalidLabel { field, problem });
    if value.is_empty() {
        return fail("it is empty; leave the field out instead".into());
    }
    // JSON Schema counts lengths in characters, not bytes.
    let count = value.chars().count();
    if let Some(max) = max_chars {
        if count > max {
            return fail(format!(
                "it is {count} characters long; at most {max} are allowed"
            ));
        }
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return fail("it starts or ends with white space".into());
    }
    if let Some((i, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !is_allowed_char(*c))
    {
        return fail(format!(
            "character {} is {c:?} (U+{:04X}); allowed are letters, digits, space and {}",
            i + 1,
            c as u32,
            PUNCTUATION.trim_start()
        ));
    }
    Ok(())
}

macro_rules! label_type {
    ($(#[$meta:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The field, spelled as in the API.
            pub const FIELD: &'static str = $field;
            /// The most characters upstream allows, if it sets a bound.
            pub const MAX_CHARS: Option<usize> = $max;

            /// Validates `value`; the error names the field.
            pub fn parse(value: &str) -> Result<Self, InvalidLabel> {
                validate($field, value, $max)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidLabel;
            fn from_str(value: &str) -> Result<Self, InvalidLabel> {
                Self::parse(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidLabel;
            fn try_from(value: &str) -> Result<Self, InvalidLabel> {
                Self::parse(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidLabel;
            fn try_from(value: String) -> Result<Self, InvalidLabel> {
                validate($field, &value, $max)?;
                Ok(Self(value))
            }
        }

        crate::text_newtype!($name);

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <String as serde::Deserialize>::deserialize(deserializer)?;
                Self::try_from(value).map_err(serde::de::Error::custom)
            }
        }
    };
}

label_type!(
    /// `keygenId`: 1 to 255 characters of upstream's label pattern.
    ///
    /// ```
    /// use dynamic_waas_api::labels::KeygenId;
    ///
    /// assert!(KeygenId::parse("Schlüssel 1").is_ok());
    /// let err = KeygenId::parse(" padded").unwrap_err();
    /// assert_eq!(err.to_string(), "keygenId is invalid: it starts or ends with white space");
    /// ```
    KeygenId,
    "keygenId",
    Some(255)
);
label_type!(
    /// `externalKeyShareId` of a request: at least 1 character of upstream's label pattern.
    ExternalKeyShareId,
    "externalKeyShareId",
    None
);
