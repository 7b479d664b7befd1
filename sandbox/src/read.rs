//! `GET /environments/{environmentId}/waas/{walletId}`: the wallet and its key shares.

use std::time::Instant;

use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use dynamic_waas_api::types::WalletKeyShareInfo;
use serde_json::json;

use super::reply::{Answer, Reply};
use super::state::State;

/// The wallet (the path ids already authorized), or the refusal upstream would answer.
pub(crate) fn read(
    state: &mut State,
    (environment, wallet_id): (EnvironmentId, WalletId),
    now: Instant,
) -> Result<Answer, Answer> {
    // A read that lags behind a create shows the wallet as it was before.
    let shown = state
        .lagging
        .get(&wallet_id)
        .filter(|(until, _)| now < *until)
        .map(|(_, shown)| *shown);
    let wallet = state.world.wallet_in(&environment, &wallet_id)?;
    let key_shares: Vec<&WalletKeyShareInfo> = match shown {
        Some(n) => wallet.key_shares.iter().take(n).collect(),
        None => wallet.key_shares.iter().collect(),
    };
    let count = key_shares.len();
    // Built as JSON, so that fields upstream adds to the wallet later need no edit here.
    let mut body = json!({"wallet": {
        "accountAddress": wallet.account_address,
        "chainName": wallet.chain,
        "derivationPath": wallet.derivation_path,
        "thresholdSignatureScheme": wallet.threshold_signature_scheme,
        "walletId": wallet_id,
    }});
    // Upstream leaves `keyShares` out when there are none.
    if count > 0 {
        body["wallet"]["keyShares"] = json!(key_shares);
    }
    Ok(Answer::new(
        Reply::json(200, body),
        format!("200: wallet {wallet_id} with {count} key share(s)"),
    ))
}
