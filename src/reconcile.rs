//! Reconciliation: whether a wallet read shows the key shares a create asked for.

use dynamic_waas_api::ids::ResourceId;
use dynamic_waas_api::types::{
    BackupKeySharesToLocationsWithUserIdRequestLocationsItem as Asked, WaasWallet,
};

use crate::model::{BackupLocation, CreatedKeyShare};

/// What a wallet read says about a create.
#[derive(Debug, PartialEq)]
pub(crate) enum Match {
    /// The wallet holds exactly the key shares asked for: one per requested location.
    Found(Vec<CreatedKeyShare>),
    /// No key share at any requested location.
    Nothing,
    /// Key shares at the requested locations, but not the ones asked for.
    Mismatch(String),
}

/// Matches a create's request against a wallet read (the rule [`Client::create_backup_locations`]
/// documents):
///
/// - Shares at locations the request did not name are left out.
/// - Per requested location, the wallet must hold as many of the remaining shares as the
///   request asked for there: fewer or more means they are not (only) this call's.
/// - A location asked with an `externalKeyShareId` takes the share carrying that id.
///
/// [`Client::create_backup_locations`]: crate::Client::create_backup_locations
pub(crate) fn match_request(asked: &[Asked], wallet: &WaasWallet) -> Match {
    let locations: Vec<BackupLocation> = asked.iter().map(|a| a.location.clone()).collect();
    let mut candidates: Vec<(BackupLocation, &ResourceId, Option<&str>)> = wallet
        .key_shares
        .iter()
        .map(|s| {
            let location = BackupLocation::from(s.backup_location.as_str());
            (location, &s.id, s.external_key_share_id.as_deref())
        })
        .filter(|(location, ..)| locations.contains(location))
        .collect();
    if candidates.is_empty() {
        return Match::Nothing;
    }
    let mut counted: Vec<&BackupLocation> = Vec::new();
    for location in &locations {
        if counted.contains(&location) {
            continue;
        }
        counted.push(location);
        let wanted = locations.iter().filter(|l| *l == location).count();
        let held = candidates.iter().filter(|(l, ..)| l == location).count();
        if wanted != held {
            return Match::Mismatch(format!(
                "the wallet holds {held} key share(s) at {location} where this call asked for \
                 {wanted}, so which are this call's cannot be told"
            ));
        }
    }
    // Locations asked with an external id first, so that a plain one cannot take its share.
    let mut order: Vec<usize> = (0..asked.len()).collect();
    order.sort_by_key(|&i| asked[i].external_key_share_id.is_none());
    let mut shares: Vec<Option<CreatedKeyShare>> = vec![None; asked.len()];
    for i in order {
        let want = &asked[i];
        let external = want.external_key_share_id.as_ref().map(|e| e.as_str());
        let found = candidates.iter().position(|(location, _, ext)| {
            *location == want.location && (external.is_none() || *ext == external)
        });
        let Some(found) = found else {
            return Match::Mismatch(format!(
                "the wallet has no key share at {} with externalKeyShareId {:?}",
                want.location,
                external.unwrap_or_default()
            ));
        };
        let (location, id, ext) = candidates.remove(found);
        shares[i] = Some(CreatedKeyShare {
            location,
            key_share_id: id.clone(),
            external_key_share_id: ext.map(|e| ResourceId::received(e.to_owned())),
        });
    }
    Match::Found(shares.into_iter().flatten().collect())
}

/// Every key share the wallet holds, for a wallet backed up before (by another run, say):
/// they are its backup, whatever was asked this time.
pub(crate) fn held_shares(wallet: &WaasWallet) -> Vec<CreatedKeyShare> {
    wallet
        .key_shares
        .iter()
        .map(|s| CreatedKeyShare {
            location: BackupLocation::from(s.backup_location.as_str()),
            key_share_id: s.id.clone(),
            external_key_share_id: s
                .external_key_share_id
                .as_ref()
                .map(|e| ResourceId::received(e.to_string())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynamic_waas_api::labels::ExternalKeyShareId;
    use serde_json::json;

    fn wallet(shares: &[(&str, &str, Option<&str>)]) -> WaasWallet {
        let shares: Vec<_> = shares
            .iter()
            .map(|(id, location, ext)| {
                let mut share =
                    json!({"id": id, "backupLocation": location, "passwordEncrypted": false});
                if let Some(ext) = ext {
                    share["externalKeyShareId"] = json!(ext);
                }
                share
            })
            .collect();
        serde_json::from_value(json!({
            "walletId": "95b11417-f18f-457f-8804-68e361f9164f",
            "chainName": "EVM",
            "accountAddress": "0x0",
            "derivationPath": "m",
            "thresholdSignatureScheme": "TWO_OF_TWO",
            "keyShares": shares,
        }))
        .unwrap()
    }

    fn asked(items: &[(&str, Option<&str>)]) -> Vec<Asked> {
        items
            .iter()
            .map(|(location, ext)| Asked {
                location: BackupLocation::from(*location),
                keygen_id: None,
                threshold_signature_scheme: None,
                external_key_share_id: ext.map(|e| ExternalKeyShareId::try_from(e).unwrap()),
            })
            .collect()
    }

    fn ids(found: Match) -> Vec<String> {
        match found {
            Match::Found(shares) => shares.iter().map(|s| s.key_share_id.to_string()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_share_per_requested_location_in_request_order() {
        let w = wallet(&[("k-dyn", "dynamic", None), ("k-gd", "googleDrive", None)]);
        let got = match_request(&asked(&[("googleDrive", None), ("dynamic", None)]), &w);
        assert_eq!(ids(got), ["k-gd", "k-dyn"]);
    }

    #[test]
    fn an_empty_wallet_or_shares_elsewhere_only_is_nothing() {
        assert_eq!(
            match_request(&asked(&[("googleDrive", None)]), &wallet(&[])),
            Match::Nothing
        );
        let elsewhere = wallet(&[("k-1", "iCloud", None)]);
        assert_eq!(
            match_request(&asked(&[("googleDrive", None)]), &elsewhere),
            Match::Nothing
        );
    }

    #[test]
    fn counts_must_match_per_location() {
        let two = wallet(&[("k-1", "googleDrive", None), ("k-2", "googleDrive", None)]);
        assert!(matches!(
            match_request(&asked(&[("googleDrive", None)]), &two),
            Match::Mismatch(m) if m.contains("2 key share(s) at googleDrive")
        ));
        let one = wallet(&[("k-1", "googleDrive", None)]);
        assert!(matches!(
            match_request(
                &asked(&[("googleDrive", None), ("googleDrive", None)]),
                &one
            ),
            Match::Mismatch(_)
        ));
        let partial = wallet(&[("k-1", "googleDrive", None)]);
        assert!(matches!(
            match_request(&asked(&[("googleDrive", None), ("dynamic", None)]), &partial),
            Match::Mismatch(m) if m.contains("0 key share(s) at dynamic")
        ));
    }

    #[test]
    fn external_ids_pick_their_share() {
        let w = wallet(&[
            ("k-a", "external", Some("vault/a")),
            ("k-b", "external", Some("vault/b")),
        ]);
        let got = match_request(
            &asked(&[("external", None), ("external", Some("vault/a"))]),
            &w,
        );
        assert_eq!(ids(got), ["k-b", "k-a"]);
        let other = wallet(&[("k-c", "external", Some("vault/c"))]);
        assert!(matches!(
            match_request(&asked(&[("external", Some("vault/a"))]), &other),
            Match::Mismatch(m) if m.contains("vault/a")
        ));
    }
}
