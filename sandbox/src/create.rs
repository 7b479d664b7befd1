//! `POST .../keyShares/backup/locations`: checks, then records one key share per location.

use std::time::Instant;

use dynamic_waas_api::ids::{EnvironmentId, UserId, WalletId};
use serde_json::json;
use uuid::Uuid;
use wiremock::Request;

use super::reply::{Answer, Reply};
use super::seed::key_share;
use super::state::State;
use super::validate::create_request;

/// The message of upstream's 201.
const CREATED_MESSAGE: &str = "Backup action and event created successfully";

/// Applies a create to a wallet the token may reach (the path ids already authorized), or
/// the refusal upstream would answer.
pub(crate) fn create(
    state: &mut State,
    request: &Request,
    (environment, wallet_id): (EnvironmentId, WalletId),
    now: Instant,
) -> Result<Answer, Answer> {
    let body = create_request(&request.headers, &request.body, &state.accepted_locations)?;
    let request_share_set = body.share_set_id.clone();

    let user = UserId::from(body.user_id);
    match state.world.user_environment(&user) {
        Some(found) if *found == environment => {}
        _ => {
            return Err(Answer::not_found(format_args!(
                "user {} is not in environment {environment}",
                body.user_id
            )))
        }
    }
    let wallet = state.world.wallet_in(&environment, &wallet_id)?;
    if wallet.owner != user {
        return Err(Answer::not_found(format_args!(
            "wallet {wallet_id} is owned by user {}, not {}",
            wallet.owner, body.user_id
        )));
    }
    // The check reads the service's own state, unless it is set to read the lagging replica
    // that wallet reads see: then a second create soon after the first passes it too.
    let visible = match state.lagging.get(&wallet_id) {
        Some((until, shown)) if state.lagging_duplicate_check && now < *until => *shown,
        _ => wallet.key_shares.len(),
    };
    if visible > 0 {
        let reply = Reply::coded(
            422,
            "Key shares have already been backed up for this wallet",
            "key_share_already_backed_up",
        );
        let outcome = format!(
            "422: wallet {wallet_id} already has {} key share(s)",
            wallet.key_shares.len()
        );
        return Err(Answer::new(reply, outcome));
    }

    // Upstream sets no `minItems`: an empty list is a create that backs nothing up, and so
    // does not stop a later one.
    let mut created = Vec::with_capacity(body.locations.len());
    for requested in body.locations {
        let key_share_id = Uuid::new_v4();
        let external_key_share_id = requested
            .external_key_share_id
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        created.push(json!({
            "location": requested.location,
            "keyShareId": key_share_id.to_string(),
            "externalKeyShareId": external_key_share_id,
        }));
        wallet.key_shares.push(key_share(
            &key_share_id.to_string(),
            &requested.location,
            Some(&external_key_share_id),
        ));
    }
    *state.creates.entry(wallet_id.clone()).or_default() += 1;
    if !state.read_lag.is_zero() {
        // The wallet had no key shares: reads show none of them until the lag has passed.
        let until = now.checked_add(state.read_lag).unwrap_or(now);
        let shown = state
            .lagging
            .get(&wallet_id)
            .filter(|(earlier, _)| now < *earlier)
            .map_or(0, |(_, shown)| *shown);
        state.lagging.insert(wallet_id.clone(), (until, shown));
    }

    let count = created.len();
    let mut body = json!({
        "message": CREATED_MESSAGE,
        "walletId": wallet_id,
        "locationsWithKeyShares": created,
    });
    // Upstream's current revision: the share set this backup activated (the one asked for,
    // else the wallet's active one) and what the server knows of it.
    if let Some(fields) = body.as_object_mut() {
        let share_set = state
            .world
            .wallets
            .get(&wallet_id)
            .map(|w| w.share_set.clone());
        if let Some(share_set) = share_set {
            let id = request_share_set.or(share_set.id);
            fields.insert("shareSetId".into(), json!(id));
            if let Some(status) = share_set.password_update_status {
                fields.insert("passwordUpdateStatus".into(), json!(status));
            }
            fields.insert("shareSetType".into(), json!(share_set.kind));
            if let Some(active) = share_set.wallet_active {
                fields.insert("walletActive".into(), json!(active));
            }
        }
    }
    Ok(Answer::new(
        Reply::json(201, body),
        format!("201: created {count} key share(s) on wallet {wallet_id}"),
    ))
}
