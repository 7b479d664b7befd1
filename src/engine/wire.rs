//! The two operations over HTTP: one attempt through the generated client, its answer read
//! within the attempt's time and turned into an output or a [`Failure`]. The token a server
//! echoes is taken out of everything read here (success bodies by the sdk's hook, error
//! responses below) before anything keeps, prints or logs it.

use std::future::Future;
use std::pin::pin;
use std::time::SystemTime;

use bytes::Bytes;
use dynamic_waas_api::error::{ErrorResponse, DEFAULT_ERROR_BODY_LIMIT};
use dynamic_waas_api::hooks;
use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use dynamic_waas_api::types;
use dynamic_waas_api::{ByteStream, ResponseValue};
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use tokio::time::Instant;

use super::attempt::{Attempt, Operation};
use super::classify::{Failure, OpKind};
use crate::client::Client;
use crate::error::Error;
use crate::model::{self, IdArg, LocationRequest, Wallet};
use crate::retry::{later, parse_retry_after};

/// What a generated method returns.
type Sent<T> = Result<ResponseValue<T>, dynamic_waas_api::Error<ByteStream>>;

/// The request item type of a create's locations.
pub(crate) type Asked = types::BackupKeySharesToLocationsWithUserIdRequestLocationsItem;

/// A checked create request.
#[derive(Clone, Debug)]
pub(crate) struct CreateRequest {
    pub(crate) env: EnvironmentId,
    pub(crate) wallet: WalletId,
    pub(crate) body: types::BackupKeySharesToLocationsWithUserIdRequest,
}

impl CreateRequest {
    /// Checks everything a create needs before anything is sent.
    pub(crate) fn new(
        environment_id: impl IdArg<EnvironmentId>,
        wallet_id: impl IdArg<WalletId>,
        user_id: impl IdArg<dynamic_waas_api::ids::UserId>,
        locations: impl IntoIterator<Item = LocationRequest>,
    ) -> Result<Self, Error> {
        let env = environment_id.into_id()?;
        let wallet = wallet_id.into_id()?;
        // The body carries a UUID: one given as such is not written out and parsed back.
        let user_id = match user_id.as_uuid() {
            Some(id) => id,
            None => user_id.into_id()?.to_uuid().ok_or_else(|| {
                Error::invalid_input(
                    "userId",
                    "not a UUID (expected a lower-case hyphenated UUID)",
                )
            })?,
        };
        let locations = checked_locations(locations)?;
        Ok(CreateRequest {
            env,
            wallet,
            body: types::BackupKeySharesToLocationsWithUserIdRequest {
                user_id,
                locations,
                ..model::blank(&model::BLANK_REQUEST)?
            },
        })
    }

    /// `shareSetId`, checked like the ids.
    pub(crate) fn set_share_set_id(
        &mut self,
        share_set_id: impl IdArg<dynamic_waas_api::ids::ShareSetId>,
    ) -> Result<(), Error> {
        let id = share_set_id.into_id()?;
        self.body.share_set_id = Some(dynamic_waas_api::ids::ResourceId::received(
            id.as_str().to_owned(),
        ));
        Ok(())
    }
}

/// The locations of a create (or a settle), checked; at least one.
pub(crate) fn checked_locations(
    locations: impl IntoIterator<Item = LocationRequest>,
) -> Result<Vec<Asked>, Error> {
    let locations = locations
        .into_iter()
        .enumerate()
        .map(|(i, l)| l.validate(i))
        .collect::<Result<Vec<_>, _>>()?;
    if locations.is_empty() {
        return Err(Error::invalid_input(
            "locations",
            "at least one location is required",
        ));
    }
    Ok(locations)
}

/// A create's 201: the body, and the bytes it was read from (fields this release does not
/// know included).
pub(crate) struct CreateAnswer {
    pub(crate) body: types::BackupKeySharesToLocationsResponse,
    pub(crate) raw: Option<Bytes>,
}

/// A wallet read's 200.
pub(crate) struct WalletAnswer {
    pub(crate) wallet: Wallet,
    pub(crate) raw: Option<Bytes>,
}

pub(crate) struct CreateOp<'r> {
    pub(crate) request: &'r CreateRequest,
}

impl Operation for CreateOp<'_> {
    type Output = CreateAnswer;
    const KIND: OpKind = OpKind::Create;
    const METHOD: &'static str = "POST";

    fn environment(&self) -> &EnvironmentId {
        &self.request.env
    }

    async fn attempt(
        &self,
        client: &Client,
        attempt: Attempt<'_>,
    ) -> Result<CreateAnswer, Failure> {
        // Always kept: the raw body is shared with the parser (no copy), and it is what
        // `CreatedBackup::extra` reads fields this release does not know from.
        let request = self.request;
        let api = &client.inner.api;
        let sent = || {
            api.backup_key_shares_to_locations_for_pregen(
                &request.env,
                &request.wallet,
                &request.body,
            )
        };
        let (body, raw) = send(client, &attempt, true, OpKind::Create, sent).await?;
        let problem = if !same_wallet(&body.wallet_id, &request.wallet) {
            // Whatever it says, it is not this create's answer (a server's mistake, or a
            // redirect): the wallet settles it.
            Err("the 201 names another wallet than the one asked for".to_owned())
        } else {
            names_every_location(&request.body.locations, &body)
        };
        if let Err(problem) = problem {
            return Err(Failure::Unusable2xx {
                status: StatusCode::CREATED,
                body: raw,
                problem,
            });
        }
        Ok(CreateAnswer { body, raw })
    }
}

/// Whether an answer's `walletId` is the wallet asked about (upstream writes ids lower-case;
/// another spelling of the same id is the same wallet).
fn same_wallet(answered: &dynamic_waas_api::ids::ResourceId, asked: &WalletId) -> bool {
    answered.as_str().eq_ignore_ascii_case(asked.as_str())
}

/// A 201 must name every requested location, as often as it was asked.
fn names_every_location(
    asked: &[Asked],
    output: &types::BackupKeySharesToLocationsResponse,
) -> Result<(), String> {
    let answered = &output.locations_with_key_shares;
    // Counted, not matched off a copy: a request names a handful of locations.
    for item in asked {
        let wanted = asked.iter().filter(|a| a.location == item.location).count();
        let got = answered
            .iter()
            .filter(|s| s.location == item.location)
            .count();
        if got < wanted {
            return Err(format!(
                "the 201 body has no key share for the requested location {}",
                item.location
            ));
        }
    }
    Ok(())
}

pub(crate) struct ReadOp<'r> {
    pub(crate) env: &'r EnvironmentId,
    pub(crate) wallet: &'r WalletId,
    /// Keep the body as received too.
    pub(crate) raw: bool,
}

impl Operation for ReadOp<'_> {
    type Output = WalletAnswer;
    const KIND: OpKind = OpKind::Read;
    const METHOD: &'static str = "GET";

    fn environment(&self) -> &EnvironmentId {
        self.env
    }

    async fn attempt(
        &self,
        client: &Client,
        attempt: Attempt<'_>,
    ) -> Result<WalletAnswer, Failure> {
        let (env, wallet) = (self.env, self.wallet);
        let sent = || client.inner.api.get_waas_wallet_by_wallet_id(env, wallet);
        let (response, raw) = send(client, &attempt, self.raw, OpKind::Read, sent).await?;
        if !same_wallet(&response.wallet.wallet_id, wallet) {
            return Err(Failure::Unusable2xx {
                status: StatusCode::OK,
                body: raw,
                problem: "the wallet read answered with another wallet".into(),
            });
        }
        Ok(WalletAnswer {
            wallet: response.wallet.into(),
            raw,
        })
    }
}

/// Sends one request through the generated client and reads its answer, every byte of it
/// within the attempt's time; with `keep`, the success body as received too. The generated
/// call is made here (`sent`), so that its large future is laid out once, in the scope.
async fn send<T, F>(
    client: &Client,
    attempt: &Attempt<'_>,
    keep: bool,
    op: OpKind,
    sent: impl FnOnce() -> F,
) -> Result<(T, Option<Bytes>), Failure>
where
    F: Future<Output = Sent<T>>,
{
    let expected = match op {
        OpKind::Create => StatusCode::CREATED,
        OpKind::Read => StatusCode::OK,
    };
    let mut scope = hooks::Attempt::new()
        .authorization(attempt.credential.header.clone())
        .request_id(attempt.request_id.header());
    if let Some(sent) = &attempt.credential.sent {
        scope = scope.also_redact(sent.clone());
    }
    if keep {
        scope = scope.keep_body();
    }
    let deadline = later(Instant::now(), attempt.time);
    let mut scoped = pin!(scope.scope(sent()));
    let finished = tokio::time::timeout_at(deadline, scoped.as_mut()).await;
    // The status, if the answer's headers arrived: what the server said, whatever failed
    // after that.
    let seen = scoped.as_mut().take_value();
    let status = seen.as_ref().and_then(hooks::Attempt::response_status);
    if op == OpKind::Create && seen.as_ref().is_some_and(|a| a.was_redirected()) {
        // A create that was redirected (a 303 turned into a GET, a 307 to another path) was
        // processed somewhere, and what answered is not its answer, whatever it says: the
        // wallet settles it.
        return Err(Failure::Unusable2xx {
            status: status.unwrap_or(expected),
            body: None,
            problem: "the answer came after a redirect, so it is not the create's".into(),
        });
    }
    let Ok(result) = finished else {
        return Err(Failure::TimedOut {
            after: attempt.time,
            status,
        });
    };
    use dynamic_waas_api::Error as E;
    let err = match result {
        Ok(value) => {
            let raw = seen.as_ref().and_then(hooks::Attempt::take_body);
            return Ok((value.into_inner(), raw));
        }
        Err(err) => err,
    };
    match err {
        // The 2xx arrived and its body failed while being read: it was applied.
        E::CommunicationError(e) if status.is_some_and(|s| s.is_success()) => {
            Err(Failure::Unusable2xx {
                status: status.unwrap_or(expected),
                body: None,
                problem: format!("the body could not be read: {e}"),
            })
        }
        E::CommunicationError(e) if e.is_connect() => Err(Failure::NotSent(e)),
        E::CommunicationError(e) => Err(Failure::Lost(e)),
        E::ResponseBodyError(e) => Err(Failure::Unusable2xx {
            status: expected,
            body: None,
            problem: format!("the body could not be read: {e}"),
        }),
        E::InvalidResponsePayload(body, e) => Err(Failure::Unusable2xx {
            status: expected,
            body: Some(body),
            problem: format!("the body is not the documented response: {e}"),
        }),
        E::InvalidRequest(message) => Err(Failure::Invalid(message)),
        err @ (E::ErrorResponse(_) | E::UnexpectedResponse(_)) => {
            // Far enough to find upstream's `code` in any error body a server sends.
            let limit = DEFAULT_ERROR_BODY_LIMIT.min(client.inner.max_response_bytes);
            let stop = tokio::time::sleep_until(deadline);
            // Boxed: the error path's state stays out of every attempt's future.
            match Box::pin(ErrorResponse::from_error_until(err, limit, stop)).await {
                Ok(mut response) => {
                    attempt.credential.redact(&mut response);
                    Err(error_response(response, expected, attempt))
                }
                Err(other) => Err(Failure::Invalid(other.to_string())),
            }
        }
        other => Err(Failure::Invalid(other.to_string())),
    }
}

/// What an answer with a status other than the expected one means.
fn error_response(response: ErrorResponse, expected: StatusCode, attempt: &Attempt<'_>) -> Failure {
    if response.status().is_success() {
        return Failure::Unusable2xx {
            status: response.status(),
            problem: format!(
                "status {} where {} was expected",
                response.status().as_u16(),
                expected.as_u16()
            ),
            body: Some(response.body().clone()),
        };
    }
    if response.stopped_early() {
        return Failure::TimedOut {
            after: attempt.time,
            status: Some(response.status()),
        };
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    Failure::Http {
        response,
        retry_after,
    }
}
