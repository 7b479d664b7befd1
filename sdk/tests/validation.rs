//! Input that upstream would refuse is refused here first, with the field's name.
//! These types cannot hold an invalid value, so nothing invalid can reach the wire.

use dynamic_waas_api::enums::{ThresholdSignatureScheme, WaasBackupOptionsEnum, WaasChainEnum};
use dynamic_waas_api::hooks::bearer_header;
use dynamic_waas_api::ids::{EnvironmentId, ResourceId, WalletId};
use dynamic_waas_api::labels::{ExternalKeyShareId, KeygenId};
use dynamic_waas_api::types;

#[test]
fn ids_must_be_lower_case_hyphenated_uuids_and_errors_name_the_field() {
    let ok = "95b11417-f18f-457f-8804-68e361f9164f";
    assert_eq!(WalletId::parse(ok).unwrap().as_str(), ok);
    let cases = [
        ("", "walletId must be a lower-case hyphenated UUID such as 95b11417-f18f-457f-8804-68e361f9164f: it is empty"),
        ("95B11417-F18F-457F-8804-68E361F9164F", "it has upper-case hex digits; send \"95b11417-f18f-457f-8804-68e361f9164f\""),
        ("95b11417f18f457f880468e361f9164f", "it is 32 characters long, not 36"),
        ("95b11417-f18f-457f-8804-68e361f9164g", "character 36 is 'g', expected a hex digit 0-9 or a-f"),
        ("95b11417_f18f-457f-8804-68e361f9164f", "character 9 is '_', expected '-'"),
        ("95b11417-f18f-457f-8804-68e361f9164fé", "it is 37 characters long, not 36"),
    ];
    for (value, message) in cases {
        let err = WalletId::parse(value).unwrap_err();
        assert_eq!(err.field(), "walletId");
        assert!(err.to_string().ends_with(message), "{value:?}: {err}");
    }
    let err = EnvironmentId::parse("nope").unwrap_err();
    assert!(
        err.to_string().starts_with("environmentId must be"),
        "{err}"
    );
}

#[test]
fn a_uuid_is_always_sent_lower_case() {
    let id = uuid::Uuid::parse_str("95B11417-F18F-457F-8804-68E361F9164F").unwrap();
    assert_eq!(
        WalletId::from(id).as_str(),
        "95b11417-f18f-457f-8804-68e361f9164f"
    );
    let body = types::BackupKeySharesToLocationsWithUserIdRequest {
        user_id: id,
        ..serde_json::from_value(serde_json::json!({"userId": id, "locations": []})).unwrap()
    };
    assert_eq!(
        serde_json::to_value(body).unwrap()["userId"],
        "95b11417-f18f-457f-8804-68e361f9164f"
    );
}

#[test]
fn response_ids_are_lenient_when_read_and_strict_when_parsed() {
    let read: ResourceId = serde_json::from_str("\"KS-UPPER\"").unwrap();
    assert_eq!(read.as_str(), "KS-UPPER");
    assert!(!read.is_valid());
    assert!("KS-UPPER".parse::<ResourceId>().is_err());
    // Path ids are strict either way.
    assert!(serde_json::from_str::<WalletId>("\"KS-UPPER\"").is_err());
}

#[test]
fn keygen_id_is_one_to_255_characters() {
    assert!(KeygenId::parse(&"a".repeat(255)).is_ok());
    // Characters, not bytes: 255 two-byte letters are fine.
    assert!(KeygenId::parse(&"é".repeat(255)).is_ok());
    let err = KeygenId::parse(&"a".repeat(256)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "keygenId is invalid: it is 256 characters long; at most 255 are allowed"
    );
    let err = KeygenId::parse("").unwrap_err();
    assert_eq!(
        err.to_string(),
        "keygenId is invalid: it is empty; leave the field out instead"
    );
    // externalKeyShareId has no upper bound.
    assert!(ExternalKeyShareId::parse(&"a".repeat(1000)).is_ok());
    let err = ExternalKeyShareId::parse("").unwrap_err();
    assert_eq!(err.field(), "externalKeyShareId");
}

#[test]
fn labels_follow_upstreams_lookaround_pattern() {
    let valid = [
        "An example name",
        "key-1_backup.v2",
        "a,b:c!d?e&f%g@h/i+j-k'l|m",
        "Schlüssel Nummer 7",
        "ключ",
        "鍵の名前",
        "مفتاح",
        "Ⅻ ½ ٣",
        "x",
    ];
    for value in valid {
        assert!(KeygenId::parse(value).is_ok(), "{value:?}");
        assert!(ExternalKeyShareId::parse(value).is_ok(), "{value:?}");
    }
    let invalid = [
        (" leading", "it starts or ends with white space"),
        ("trailing ", "it starts or ends with white space"),
        (
            "\u{3000}ideographic space",
            "it starts or ends with white space",
        ),
        ("tab\there", "character 4 is '\\t' (U+0009)"),
        ("semi;colon", "character 5 is ';' (U+003B)"),
        ("angle<b>", "character 6 is '<' (U+003C)"),
        ("emoji 🔑", "character 7 is '🔑' (U+1F511)"),
        ("quote\"", "character 6 is '\"' (U+0022)"),
        ("nbsp\u{a0}inside", "character 5 is '\\u{a0}' (U+00A0)"),
        ("new\nline", "character 4 is '\\n' (U+000A)"),
    ];
    for (value, problem) in invalid {
        let err = KeygenId::parse(value).unwrap_err();
        assert!(err.problem().starts_with(problem), "{value:?}: {err}");
        assert!(ExternalKeyShareId::parse(value).is_err(), "{value:?}");
    }
}

#[test]
fn a_request_with_an_invalid_label_cannot_even_be_deserialized() {
    let err = serde_json::from_value::<types::BackupKeySharesToLocationsWithUserIdRequest>(
        serde_json::json!({
            "userId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "locations": [{"location": "googleDrive", "keygenId": " x"}]
        }),
    )
    .unwrap_err();
    assert!(err.to_string().contains("keygenId is invalid"), "{err}");
}

#[test]
fn tokens_that_would_corrupt_the_header_are_refused_and_never_echoed() {
    for bad in ["", "dyn_abc\n", "dyn abc", "dyn_\u{7f}", "dyn_é"] {
        let err = bearer_header(bad).unwrap_err().to_string();
        assert!(err.starts_with("invalid API token"), "{bad:?}: {err}");
        if !bad.is_empty() {
            assert!(!err.contains(bad.trim()), "{err}");
        }
    }
    let value = bearer_header("dyn_ok123").unwrap();
    assert!(value.is_sensitive());
    assert_eq!(format!("{value:?}"), "Sensitive");
}

fn spec_enum(name: &str) -> Vec<String> {
    let path = format!(
        "{}/../openapi/dynamic-waas.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    spec["components"]["schemas"][name]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The hand-written open enums know exactly the spec's values: a value added to the spec
/// without a named variant fails here.
#[test]
fn open_enums_know_exactly_the_specs_values() {
    assert_eq!(
        WaasBackupOptionsEnum::KNOWN,
        spec_enum("WaasBackupOptionsEnum")
    );
    assert_eq!(
        ThresholdSignatureScheme::KNOWN,
        spec_enum("ThresholdSignatureScheme")
    );
    assert_eq!(WaasChainEnum::KNOWN, spec_enum("WaasChainEnum"));
    for value in WaasBackupOptionsEnum::KNOWN {
        let parsed = WaasBackupOptionsEnum::from(*value);
        assert!(!parsed.is_unknown());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), *value);
    }
    assert_eq!(WaasBackupOptionsEnum::from("icloud").as_str(), "iCloud");
    assert!(WaasBackupOptionsEnum::from("GOOGLEDRIVE").is_unknown());
}

/// The generator writes validated ids into paths as they are (xtask/src/rewrite.rs): every
/// character an id may hold must be one percent-encoding leaves alone.
#[test]
fn ids_need_no_percent_encoding() {
    for c in "0123456789abcdef-".chars() {
        let text = c.to_string();
        assert_eq!(
            dynamic_waas_api::progenitor_client::encode_path(&text),
            text,
            "{c:?}"
        );
    }
    let id = WalletId::parse("95b11417-f18f-457f-8804-68e361f9164f").unwrap();
    assert_eq!(
        dynamic_waas_api::progenitor_client::encode_path(id.as_str()),
        id.as_str()
    );
}
