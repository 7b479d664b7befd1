//! The two operations, and what makes the create different: an answer that may have been
//! lost after the server applied it is settled from the wallet, never by sending blindly.

use std::future::Future;

use dynamic_waas_api::hooks::BodyCapture;
use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use dynamic_waas_api::types;
use reqwest::StatusCode;
use tokio::time::Instant;

use crate::attempt::{Call, Ended, Operation, Sent};
use crate::classify::OpKind;
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::model::{self, BackupLocation, CreatedBackup, IdArg, LocationRequest};
use crate::reconcile::{match_request, Match};
use crate::retry::{later, plan, RetryPolicy, MIN_ATTEMPT_TIME};

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
        environment_id: impl IdArg,
        wallet_id: impl IdArg,
        user_id: impl IdArg,
        locations: impl IntoIterator<Item = LocationRequest>,
    ) -> Result<Self, Error> {
        let env = model::path_id::<EnvironmentId>(environment_id)?;
        let wallet = model::path_id::<WalletId>(wallet_id)?;
        let user_id = model::user_id(user_id)?;
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
    pub(crate) fn set_share_set_id(&mut self, share_set_id: impl IdArg) -> Result<(), Error> {
        self.body.share_set_id = Some(model::share_set_id(share_set_id)?);
        Ok(())
    }
}

/// How a create call starts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Start {
    /// Its first request waits for the pacer outside its deadline (a bulk job).
    pub(crate) queued: bool,
    /// An earlier run may have sent it: the wallet is read before anything is created.
    pub(crate) resumed: bool,
}

struct CreateOp<'r> {
    request: &'r CreateRequest,
    capture: Option<BodyCapture>,
}

impl Operation for CreateOp<'_> {
    type Output = types::BackupKeySharesToLocationsResponse;
    const KIND: OpKind = OpKind::Create;
    const SUCCESS: StatusCode = StatusCode::CREATED;

    fn environment(&self) -> &EnvironmentId {
        &self.request.env
    }

    fn send<'a>(
        &'a self,
        api: &'a dynamic_waas_api::Client,
    ) -> impl Future<Output = Sent<Self::Output>> + Send + 'a {
        api.backup_key_shares_to_locations_for_pregen(
            &self.request.env,
            &self.request.wallet,
            &self.request.body,
        )
    }

    fn capture(&self) -> Option<&BodyCapture> {
        self.capture.as_ref()
    }

    /// A 201 must name every requested location, as often as it was asked.
    fn check(&self, output: &Self::Output) -> Result<(), String> {
        let mut answered: Vec<&BackupLocation> = output
            .locations_with_key_shares
            .iter()
            .map(|s| &s.location)
            .collect();
        for asked in &self.request.body.locations {
            match answered.iter().position(|l| **l == asked.location) {
                Some(i) => {
                    answered.swap_remove(i);
                }
                None => {
                    return Err(format!(
                        "the 201 body has no key share for the requested location {}",
                        asked.location
                    ))
                }
            }
        }
        Ok(())
    }
}

pub(crate) struct ReadOp<'r> {
    pub(crate) env: &'r EnvironmentId,
    pub(crate) wallet: &'r WalletId,
    pub(crate) capture: Option<BodyCapture>,
}

impl Operation for ReadOp<'_> {
    type Output = types::WaasWalletResponse;
    const KIND: OpKind = OpKind::Read;
    const SUCCESS: StatusCode = StatusCode::OK;

    fn environment(&self) -> &EnvironmentId {
        self.env
    }

    fn send<'a>(
        &'a self,
        api: &'a dynamic_waas_api::Client,
    ) -> impl Future<Output = Sent<Self::Output>> + Send + 'a {
        api.get_waas_wallet_by_wallet_id(self.env, self.wallet)
    }

    fn capture(&self) -> Option<&BodyCapture> {
        self.capture.as_ref()
    }
}

/// Reads made without sending the create again, for a wallet read that may lag behind the
/// write: the first, and one more after a short wait.
const SETTLING_READS: u32 = 2;

/// What a settled create comes to.
enum Settled {
    Done(Result<CreatedBackup, Error>),
    /// The wallet holds key shares at the requested locations, but not as this create asked
    /// (the reason says how): whether they are this call's cannot be told. With the error
    /// of the attempt that may have applied it.
    Mismatch(String, Error),
    /// The wallet shows nothing and a resend is allowed: the wait before it was taken. Says
    /// when the wallet was read, for the reason of a later `OutcomeUnknown`.
    SendAgain(String),
}

impl Client {
    pub(crate) async fn read(
        &self,
        env: &EnvironmentId,
        wallet: &WalletId,
        policy: &RetryPolicy,
        capture: Option<BodyCapture>,
        queued: bool,
    ) -> Result<(types::WaasWallet, u32), Error> {
        let mut call = Call::new(policy);
        call.queued = queued;
        let mut made = 0;
        let op = ReadOp {
            env,
            wallet,
            capture,
        };
        match self
            .attempts(&op, policy, &mut call, &mut made, false)
            .await
        {
            // With the requests it took, for a caller that counts them.
            Ok(response) => Ok((response.wallet, call.requests)),
            Err(Ended::Failed(error) | Ended::MayHaveApplied { error, .. }) => Err(error),
        }
    }

    /// Once any attempt may have been applied, the call ends only as created, reconciled or
    /// `OutcomeUnknown`: every other ending passes through [`unknown`].
    pub(crate) async fn create(
        &self,
        request: &CreateRequest,
        policy: &RetryPolicy,
        start: Start,
    ) -> Result<CreatedBackup, Error> {
        let op = CreateOp {
            request,
            // Always: the raw body is shared with the parser (no copy), and it is what
            // `CreatedBackup::extra` reads fields this release does not know from.
            capture: Some(BodyCapture::new()),
        };
        let mut call = Call::new(policy);
        call.queued = start.queued;
        let mut creates = 0;
        // Why an attempt may have been applied, once one may have been.
        let mut may_have_applied: Option<String> = None;
        if start.resumed {
            let why = "an earlier run may have sent this create";
            let error = Error::new(ErrorKind::OutcomeUnknown { reason: why.into() });
            match self
                .settle(request, policy, &mut call, creates, true, why, error)
                .await
            {
                Settled::Done(result) => return result,
                Settled::SendAgain(note) => may_have_applied = Some(format!("{why}; {note}")),
                // Backed up before, though not as asked now: a create would be refused.
                Settled::Mismatch(reason, _) => {
                    return Err(Error::new(ErrorKind::AlreadyBackedUp)
                        .with_source(reason)
                        .with_request_id(Some(call.request_id.as_str().to_owned()))
                        .with_attempts(call.requests))
                }
            }
        }
        loop {
            let ended = match self
                .attempts(
                    &op,
                    policy,
                    &mut call,
                    &mut creates,
                    may_have_applied.is_some(),
                )
                .await
            {
                Ok(body) => {
                    let created = CreatedBackup::from_response(
                        body,
                        call.request_id.as_str().to_owned(),
                        call.requests,
                    );
                    return Ok(match op.capture.as_ref().and_then(BodyCapture::take) {
                        Some(raw) => created.with_raw_body(raw),
                        None => created,
                    });
                }
                Err(ended) => ended,
            };
            let (error, may_resend, why) = match (ended, may_have_applied.take()) {
                (Ended::Failed(error), None) => return Err(error),
                // An earlier attempt may have been applied and this run ended otherwise (no
                // attempt left, a refusal, a token failure): the wallet still settles it,
                // and nothing more is sent.
                (Ended::Failed(error), Some(why)) => {
                    let why = format!("{why}; later, {}", error.summary());
                    (error, false, why)
                }
                (Ended::MayHaveApplied { error, applied }, previous) => {
                    let this = format!(
                        "create attempt {creates} may have been applied ({}, {} ms into the call)",
                        error.summary(),
                        call.elapsed().as_millis()
                    );
                    let why = match previous {
                        Some(previous) => format!("{previous}; then {this}"),
                        None => this,
                    };
                    // The server said it applied the create: it is never sent again.
                    (error, !applied, why)
                }
            };
            tracing::warn!(attempt = call.requests, request_id = %call.request_id, reason = %why, "reading the wallet to settle the create");
            match self
                .settle(request, policy, &mut call, creates, may_resend, &why, error)
                .await
            {
                Settled::Done(result) => return result,
                Settled::SendAgain(note) => may_have_applied = Some(format!("{why}; {note}")),
                Settled::Mismatch(reason, error) => return Err(unknown(error, reason, &call)),
            }
        }
    }

    /// Reads the wallet after an attempt that may have been applied. `may_resend`: the server
    /// did not say it applied the create, so a wallet without the shares allows sending it
    /// again (the server refuses a duplicate).
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        request: &CreateRequest,
        policy: &RetryPolicy,
        call: &mut Call,
        creates: u32,
        may_resend: bool,
        why: &str,
        error: Error,
    ) -> Settled {
        let read = ReadOp {
            env: &request.env,
            wallet: &request.wallet,
            capture: None,
        };
        // Reads are safe and they are what recovers the ids: each settling read gets twice the
        // policy's attempts (the deadline and the budget still bound them).
        let reading = policy
            .clone()
            .max_attempts(policy.get_max_attempts().saturating_mul(2));
        let mut settling = 0;
        loop {
            // A read repeated for lag is a new read, with attempts of its own.
            let mut reads = 0;
            let wallet = match self
                .attempts(&read, &reading, call, &mut reads, false)
                .await
            {
                Ok(response) => response.wallet,
                Err(Ended::Failed(e) | Ended::MayHaveApplied { error: e, .. }) => {
                    let reason = format!(
                        "{why}; the wallet read failed ({}), so it is not known",
                        e.summary()
                    );
                    return Settled::Done(Err(unknown(error, reason, call)));
                }
            };
            let read_at = call.elapsed();
            match match_request(&request.body.locations, &wallet) {
                Match::Found(shares) => {
                    tracing::debug!(
                        attempts = call.requests,
                        "create reconciled from the wallet"
                    );
                    let created = CreatedBackup::reconciled(
                        &wallet,
                        shares,
                        call.request_id.as_str().to_owned(),
                        call.requests,
                    );
                    return Settled::Done(Ok(created));
                }
                Match::Mismatch(found) => {
                    let reason = format!(
                        "{why}; the wallet read {} ms into the call: {found}",
                        read_at.as_millis()
                    );
                    return Settled::Mismatch(reason, error);
                }
                Match::Nothing => {}
            }
            if may_resend {
                let now = Instant::now();
                if let Ok(wait) = plan(policy, creates, None, now, call.deadline, true) {
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        "the wallet shows no key shares; sending the create again"
                    );
                    tokio::time::sleep(wait).await;
                    return Settled::SendAgain(format!(
                        "the wallet read {} ms into the call showed no key shares, so it was \
                         sent again",
                        read_at.as_millis()
                    ));
                }
            }
            settling += 1;
            let wait = policy.backoff_ceiling(settling);
            let fits = later(Instant::now(), wait.saturating_add(MIN_ATTEMPT_TIME)) < call.deadline;
            if settling >= SETTLING_READS || !fits {
                let reason = format!(
                    "{why}; the wallet read {} ms into the call shows no key shares at the \
                     requested locations, but reads may lag behind writes, so the create may \
                     still land: read the wallet later before creating again",
                    read_at.as_millis()
                );
                return Settled::Done(Err(unknown(error, reason, call)));
            }
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "reading the wallet again in case the read lags"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// The create may or may not have happened: `original` is what the attempt that may have
/// applied it reported.
fn unknown(original: Error, reason: String, call: &Call) -> Error {
    tracing::warn!(attempts = call.requests, reason = %reason, "the create's outcome is unknown");
    let request_id = original.request_id().map(str::to_owned);
    let mut err = Error::new(ErrorKind::OutcomeUnknown { reason })
        .with_request_id(request_id)
        .with_attempts(call.requests);
    if let Some(status) = original.status() {
        err = err.with_status(status);
    }
    err.with_source(original)
}
