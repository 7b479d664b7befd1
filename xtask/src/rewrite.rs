//! Rewrites of progenitor's output, applied after formatting and checked strictly.
//!
//! progenitor has no setting for these two costs, which `cargo xtask bench` measured on every
//! call (see BENCHMARKS.md). Each rewrite fails generation when its pattern is missing, so a
//! progenitor upgrade cannot silently skip it.

use anyhow::{bail, Result};

/// Path parameters whose hand-written types (`sdk/src/ids.rs`) only hold `[0-9a-f-]`, which
/// percent-encoding leaves unchanged (the sdk's `ids_need_no_percent_encoding` test checks it).
pub const VALIDATED_PATH_IDS: &[&str] = &["environment_id", "wallet_id"];

/// Applies every rewrite: `ops` is the number of operations in the spec.
pub fn apply_all(code: &str, ops: usize) -> Result<String> {
    let code = path_ids_as_str(code, ops)?;
    drop_api_version_header(&code, ops)
}

/// `encode_path(&wallet_id.to_string())` becomes `wallet_id.as_str()` for validated ids:
/// a `Display` round trip and a percent-encoding pass into two `String`s per id, for
/// nothing. Every operation need not take every id (a new one upstream adds may not), but each
/// id must be found at least once.
pub fn path_ids_as_str(code: &str, ops: usize) -> Result<String> {
    let mut out = code.to_owned();
    for id in VALIDATED_PATH_IDS {
        let from = format!("encode_path(&{id}.to_string())");
        let found = out.matches(&from).count();
        if found == 0 || found > ops {
            bail!("rewrite path_ids_as_str: expected `{from}` 1 to {ops} times, found {found}");
        }
        out = out.replace(&from, &format!("{id}.as_str()"));
    }
    Ok(out)
}

const API_VERSION_BLOCK: &str =
    "        let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
        header_map.append(
            ::reqwest::header::HeaderName::from_static(\"api-version\"),
            ::reqwest::header::HeaderValue::from_static(Self::api_version()),
        );
";
const HEADERS_CALL: &str = "            .headers(header_map)\n";

/// Drops the `api-version` header progenitor builds for every request (Dynamic's API knows
/// no such header; the sdk's `pre` hook also removes it). Only for operations without header
/// parameters, whose header map holds nothing else.
pub fn drop_api_version_header(code: &str, ops: usize) -> Result<String> {
    let blocks = code.matches(API_VERSION_BLOCK).count();
    let calls = code.matches(HEADERS_CALL).count();
    if blocks != ops || calls != ops {
        bail!(
            "rewrite drop_api_version_header: expected the api-version header map and its \
             `.headers(header_map)` {ops} times each, found {blocks} and {calls}"
        );
    }
    Ok(code
        .replace(API_VERSION_BLOCK, "")
        .replace(HEADERS_CALL, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHOD: &str = "    pub async fn op<'a>(&'a self, wallet_id: &'a crate::ids::WalletId, environment_id: &'a crate::ids::EnvironmentId) {
        let url = format!(
            \"{}/environments/{}/waas/{}\",
            self.baseurl,
            encode_path(&environment_id.to_string()),
            encode_path(&wallet_id.to_string()),
        );
        let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
        header_map.append(
            ::reqwest::header::HeaderName::from_static(\"api-version\"),
            ::reqwest::header::HeaderValue::from_static(Self::api_version()),
        );
        #[allow(unused_mut)]
        let mut request = self
            .client
            .get(url)
            .headers(header_map)
            .build()?;
    }
";

    #[test]
    fn ids_are_used_as_they_are() {
        let out = path_ids_as_str(METHOD, 1).unwrap();
        assert!(
            out.contains("            environment_id.as_str(),\n            wallet_id.as_str(),\n")
        );
        assert!(!out.contains("encode_path"));
    }

    #[test]
    fn the_api_version_header_is_dropped() {
        let out = drop_api_version_header(METHOD, 1).unwrap();
        assert!(
            !out.contains("api-version") && !out.contains("header_map"),
            "{out}"
        );
        assert!(out.contains("            .get(url)\n            .build()?;"));
    }

    #[test]
    fn a_missing_pattern_stops_generation() {
        let without = METHOD.replace("encode_path(&environment_id.to_string())", "x");
        let err = path_ids_as_str(&without, 2).unwrap_err().to_string();
        assert!(
            err.contains(
                "expected `encode_path(&environment_id.to_string())` 1 to 2 times, found 0"
            ),
            "{err}"
        );
        // A new operation that takes fewer ids still regenerates.
        assert!(path_ids_as_str(METHOD, 2).is_ok());
        let changed = METHOD.replace("with_capacity(1usize)", "with_capacity(2usize)");
        let err = drop_api_version_header(&changed, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("found 0 and 1"), "{err}");
    }
}
