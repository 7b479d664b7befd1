//! `GET /environments/{environmentId}/waas/{walletId}`: the wallet and its key shares.

use std::time::Instant;

use dynamic_waas_api::ids::ResourceId;
use dynamic_waas_api::types::{WaasWallet, WaasWalletResponse};
use wiremock::Request;

use super::access::authorize;
use super::reply::{Answer, Reply};
use super::state::State;

pub(crate) fn read(
    state: &mut State,
    request: &Request,
    environment: &str,
    wallet: &str,
    now: Instant,
) -> Answer {
    lookup(state, request, environment, wallet, now).unwrap_or_else(|refusal| refusal)
}

fn lookup(
    state: &mut State,
    request: &Request,
    environment: &str,
    wallet: &str,
    now: Instant,
) -> Result<Answer, Answer> {
    let (environment, wallet_id) = authorize(&state.world, &request.headers, environment, wallet)?;
    // A read that lags behind a create shows the wallet as it was before.
    let shown = state
        .lagging
        .get(&wallet_id)
        .filter(|(until, _)| now < *until)
        .map(|(_, shown)| *shown);
    let wallet = state.world.wallet_in(&environment, &wallet_id)?;
    // The generated type is the spec's shape; it leaves `keyShares` out when there are none.
    let response = WaasWalletResponse {
        wallet: WaasWallet {
            account_address: wallet.account_address.clone(),
            chain_name: wallet.chain.clone(),
            derivation_path: wallet.derivation_path.clone(),
            key_shares: match shown {
                Some(n) => wallet.key_shares.iter().take(n).cloned().collect(),
                None => wallet.key_shares.clone(),
            },
            threshold_signature_scheme: wallet.threshold_signature_scheme.clone(),
            wallet_id: ResourceId::parse(wallet_id.as_str())
                .map_err(|e| Answer::error(500, e.to_string()))?,
        },
    };
    let count = response.wallet.key_shares.len();
    let body = serde_json::to_value(&response).map_err(|e| Answer::error(500, e.to_string()))?;
    Ok(Answer::new(
        Reply::json(200, body),
        format!("200: wallet {wallet_id} with {count} key share(s)"),
    ))
}
