//! The checks both operations make first, in upstream's order: a known bearer token (401),
//! access to the environment (403), then well-formed path ids (400).

use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use reqwest::header::AUTHORIZATION;
use wiremock::http::HeaderMap;

use super::reply::{Answer, Reply};
use super::world::World;

/// Checks the token and its access to `environment`, then parses the path ids.
///
/// The token check comes first and compares the environment as sent: a token is for a
/// well-formed environment id, so a malformed `environmentId` is refused with 403, like any
/// other environment the token may not use. A malformed `walletId` gets 400.
pub(crate) fn authorize(
    world: &World,
    headers: &HeaderMap,
    environment: &str,
    wallet: &str,
) -> Result<(EnvironmentId, WalletId), Answer> {
    let token = bearer_token(headers)
        .ok_or_else(|| Answer::error(401, "No jwt provided!"))?
        .map_err(|()| Answer::error(401, "Invalid token"))?;
    let allowed = world
        .token_environment(token)
        .ok_or_else(|| Answer::error(401, "Invalid token"))?;
    if allowed.as_str() != environment {
        return Err(Answer::new(
            Reply::error(403, "Access Forbidden"),
            format!("403: the token is for environment {allowed}, not {environment:?}"),
        ));
    }
    let environment =
        EnvironmentId::parse(environment).map_err(|e| Answer::error(400, e.to_string()))?;
    let wallet = WalletId::parse(wallet).map_err(|e| Answer::error(400, e.to_string()))?;
    Ok((environment, wallet))
}

/// `None`: no bearer token was sent; `Some(Err)`: a header that cannot hold a known token.
fn bearer_token(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Err(()));
    };
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    if token.is_empty() {
        None
    } else {
        Some(Ok(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::http::HeaderValue;

    fn with_auth(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn reads_only_bearer_tokens() {
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        assert_eq!(bearer_token(&with_auth(b"Bearer dyn_a")), Some(Ok("dyn_a")));
        assert_eq!(bearer_token(&with_auth(b"bearer dyn_a")), Some(Ok("dyn_a")));
        assert_eq!(bearer_token(&with_auth(b"Bearer ")), None);
        assert_eq!(bearer_token(&with_auth(b"Basic dXNlcg==")), None);
        assert_eq!(bearer_token(&with_auth(b"dyn_a")), None);
        assert_eq!(bearer_token(&with_auth(b"Bearer \xff")), Some(Err(())));
    }
}
