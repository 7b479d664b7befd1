//! Whether a wallet read shows the key shares a create asked for: the one rule every settling
//! read, single call or bulk job, follows.

use dynamic_waas_api::ids::ResourceId;
use dynamic_waas_api::types::BackupKeySharesToLocationsWithUserIdRequestLocationsItem as Asked;

use crate::model::{BackupLocation, CreatedKeyShare, Wallet};

/// What a wallet read says about a create.
#[derive(Debug, PartialEq)]
pub(crate) enum Match {
    /// The wallet holds the key shares asked for: one per requested location, in request
    /// order.
    Found(Vec<CreatedKeyShare>),
    /// The wallet holds no key share at all.
    Nothing,
    /// Some of the key shares asked for, and nothing that contradicts the request: the rest
    /// may still be on its way (reads lag behind writes). The reason says what is missing.
    Partial(String),
    /// Key shares this request cannot have made (more at a location than asked, another
    /// `externalKeyShareId`, or only locations not asked for): the wallet was backed up
    /// otherwise. The reason says how.
    Other(String),
}

/// Matches a create's request against a wallet read:
///
/// - A wallet without key shares shows [`Match::Nothing`]; one whose shares are all at
///   locations the request did not name was backed up otherwise ([`Match::Other`]).
/// - Shares at locations the request did not name are left out of a match.
/// - Per requested location, the wallet must hold as many shares as the request asked for
///   there: more means they are not (only) this call's; fewer, that the rest may still come.
/// - A location asked with an `externalKeyShareId` takes the share carrying it.
pub(crate) fn match_request(asked: &[Asked], wallet: &Wallet) -> Match {
    if wallet.key_shares.is_empty() {
        return Match::Nothing;
    }
    let mut candidates: Vec<(&BackupLocation, &ResourceId, Option<&str>)> = wallet
        .key_shares
        .iter()
        .filter(|s| asked.iter().any(|a| a.location == s.location))
        .map(|s| (&s.location, &s.id, s.external_key_share_id.as_deref()))
        .collect();
    if candidates.is_empty() {
        let held: Vec<&str> = wallet
            .key_shares
            .iter()
            .map(|s| s.location.as_str())
            .collect();
        return Match::Other(format!(
            "the wallet holds key shares only at locations this request did not name ({})",
            held.join(", ")
        ));
    }
    let mut missing = Vec::new();
    let mut counted: Vec<&BackupLocation> = Vec::new();
    for item in asked {
        let location = &item.location;
        if counted.contains(&location) {
            continue;
        }
        counted.push(location);
        let wanted = asked.iter().filter(|a| a.location == *location).count();
        let held = candidates.iter().filter(|(l, ..)| *l == location).count();
        if held > wanted {
            return Match::Other(format!(
                "the wallet holds {held} key share(s) at {location} where this request asked \
                 for {wanted}"
            ));
        }
        if held < wanted {
            missing.push(format!("{} of {wanted} at {location}", wanted - held));
        }
    }
    // Every share seen must be one this request could have made: at its location, an item
    // asked with its external id, or one asked without any.
    for (location, _, external) in &candidates {
        let fits = asked.iter().any(|a| {
            a.location == **location
                && match (&a.external_key_share_id, external) {
                    (None, _) => true,
                    (Some(want), Some(have)) => want.as_str() == *have,
                    (Some(_), None) => false,
                }
        });
        if !fits {
            return Match::Other(format!(
                "the wallet holds a key share at {location} with externalKeyShareId {:?}, \
                 which this request did not ask for",
                external.unwrap_or_default()
            ));
        }
    }
    if !missing.is_empty() {
        return Match::Partial(format!(
            "the wallet shows part of the key shares asked for ({} still missing)",
            missing.join(", ")
        ));
    }
    // Locations asked with an external id first, so that a plain one cannot take its share.
    let mut order: Vec<usize> = (0..asked.len()).collect();
    order.sort_by_key(|&i| asked[i].external_key_share_id.is_none());
    let mut shares: Vec<Option<CreatedKeyShare>> = vec![None; asked.len()];
    for i in order {
        let want = &asked[i];
        let external = want.external_key_share_id.as_ref().map(|e| e.as_str());
        let found = candidates.iter().position(|(location, _, ext)| {
            **location == want.location && (external.is_none() || *ext == external)
        });
        let Some(found) = found else {
            return Match::Other(format!(
                "the wallet has no key share at {} with externalKeyShareId {:?}",
                want.location,
                external.unwrap_or_default()
            ));
        };
        let (location, id, ext) = candidates.remove(found);
        shares[i] = Some(CreatedKeyShare::new(
            location.clone(),
            id.clone(),
            ext.map(|e| ResourceId::received(e.to_owned())),
        ));
    }
    Match::Found(shares.into_iter().flatten().collect())
}

/// Every key share the wallet holds, for a wallet backed up otherwise: they are its backup,
/// whatever was asked this time.
pub(crate) fn held_shares(wallet: &Wallet) -> Vec<CreatedKeyShare> {
    wallet.key_shares.iter().map(|s| s.to_created()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocationRequest;
    use dynamic_waas_api::types::WaasWallet;
    use serde_json::json;

    fn wallet(shares: &[(&str, &str, Option<&str>)]) -> Wallet {
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
        let wallet: WaasWallet = serde_json::from_value(json!({
            "walletId": "95b11417-f18f-457f-8804-68e361f9164f",
            "chainName": "EVM",
            "accountAddress": "0x0",
            "derivationPath": "m",
            "thresholdSignatureScheme": "TWO_OF_TWO",
            "keyShares": shares,
        }))
        .unwrap();
        wallet.into()
    }

    /// Request items, built as a call builds them (no generated struct literal).
    fn asked(items: &[(&str, Option<&str>)]) -> Vec<Asked> {
        items
            .iter()
            .enumerate()
            .map(|(i, (location, ext))| {
                let mut request = LocationRequest::new(BackupLocation::from(*location));
                if let Some(ext) = ext {
                    request = request.with_external_key_share_id(*ext);
                }
                request.validate(i).unwrap()
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
        // Shares at other locations are left out of a match.
        let more = wallet(&[("k-gd", "googleDrive", None), ("k-ic", "iCloud", None)]);
        assert_eq!(
            ids(match_request(&asked(&[("googleDrive", None)]), &more)),
            ["k-gd"]
        );
    }

    #[test]
    fn an_empty_wallet_is_nothing_and_shares_elsewhere_only_are_another_backup() {
        assert_eq!(
            match_request(&asked(&[("googleDrive", None)]), &wallet(&[])),
            Match::Nothing
        );
        let elsewhere = wallet(&[("k-1", "iCloud", None)]);
        assert!(matches!(
            match_request(&asked(&[("googleDrive", None)]), &elsewhere),
            Match::Other(m) if m.contains("iCloud")
        ));
    }

    #[test]
    fn more_than_asked_is_another_backup_and_fewer_is_partial() {
        let two = wallet(&[("k-1", "googleDrive", None), ("k-2", "googleDrive", None)]);
        assert!(matches!(
            match_request(&asked(&[("googleDrive", None)]), &two),
            Match::Other(m) if m.contains("2 key share(s) at googleDrive")
        ));
        let one = wallet(&[("k-1", "googleDrive", None)]);
        assert!(matches!(
            match_request(
                &asked(&[("googleDrive", None), ("googleDrive", None)]),
                &one
            ),
            Match::Partial(_)
        ));
        let partial = wallet(&[("k-1", "googleDrive", None)]);
        assert!(matches!(
            match_request(&asked(&[("googleDrive", None), ("dynamic", None)]), &partial),
            Match::Partial(m) if m.contains("1 of 1 at dynamic")
        ));
    }

    #[test]
    fn external_ids_pick_their_share_and_a_foreign_one_is_another_backup() {
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
            Match::Other(m) if m.contains("vault/c")
        ));
        // Part of the request, with the right external id: the rest may still come.
        let half = wallet(&[("k-a", "external", Some("vault/a"))]);
        assert!(matches!(
            match_request(
                &asked(&[("external", Some("vault/a")), ("dynamic", None)]),
                &half
            ),
            Match::Partial(_)
        ));
    }
}
