//! A create, top to bottom: send it ([`attempt::run`]); if its answer was lost, settle it
//! from the wallet ([`settle`]); send it again only when a late enough read licenses it.
//!
//! Once any attempt may have been applied, the call ends only with the key shares (created,
//! reconciled, or the wallet's existing ones when asked for), an unknown outcome (every such
//! ending passes through [`unknown`]), or `AlreadyBackedUp` when a read shows a backup this
//! create cannot have made (other locations: the wallet was backed up otherwise).

use std::fmt;

use tokio::time::Instant;

use super::attempt::{self, Call, Ended, Operation, Waits};
use super::classify::Applied;
use super::settle::{settle, Doubt, Settled};
use super::wire::{Asked, CreateAnswer, WalletAnswer};
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::matching::held_shares;
use crate::metrics::Event;
use crate::model::{BackupStatus, CreatedBackup};
use crate::pace::Lane;
use crate::retry::RetryPolicy;

/// How a create call starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start {
    pub(crate) waits: Waits,
    /// An earlier run may have sent this create, no later than this moment: the wallet is
    /// read first, and the create is sent only if a late enough read licenses it.
    pub(crate) resumed: Option<Instant>,
    /// A wallet backed up before (a 422 already backed up, or another backup found while
    /// settling) is read, and its key shares are the result ([`BackupStatus::AlreadyBackedUp`]).
    pub(crate) accept_existing: bool,
}

impl Start {
    pub(crate) fn call() -> Self {
        Self {
            waits: Waits::Deadline,
            resumed: None,
            accept_existing: false,
        }
    }
}

/// The create: see the module's documentation.
pub(crate) async fn create<C, R>(
    client: &Client,
    create: &C,
    read: &R,
    asked: &[Asked],
    policy: &RetryPolicy,
    start: Start,
) -> Result<CreatedBackup, Error>
where
    C: Operation<Output = CreateAnswer>,
    R: Operation<Output = WalletAnswer>,
{
    if policy.attempt_time(policy.total_timeout(), true).is_none() {
        return Err(Error::invalid_input(
            "retry_policy",
            format!(
                "total_timeout ({} ms) leaves no room for a create: it needs settle_after ({} \
                 ms) and twice MIN_ATTEMPT_TIME ({} ms)",
                policy.total_timeout().as_millis(),
                policy.settle_after().as_millis(),
                crate::MIN_ATTEMPT_TIME.as_millis()
            ),
        ));
    }
    let mut call = Call::new(policy, start.waits);
    let mut creates = 0u32;
    // A create to settle before anything is sent, and whether it is the wallet's existing
    // backup that is being read (after a definite 422).
    let mut doubt: Option<(Doubt, bool)> = start.resumed.map(|since| {
        let resumed = Doubt {
            since,
            applied: Applied::Maybe,
            early_read: false,
            sent_again: false,
            story: "an earlier run may have sent this create".into(),
            error: None,
        };
        (resumed, false)
    });
    // The story of a doubt a late read settled as not applied: the create is sent again, and
    // the call still ends only with the shares or an unknown outcome.
    let mut resent: Option<(Doubt, String)> = None;
    loop {
        if let Some((pending, existing)) = doubt.take() {
            tracing::warn!(attempt = call.requests, request_id = %call.request_id, reason = %pending.story, "reading the wallet to settle the create");
            // Boxed: the cold path's state stays out of every call's future.
            match Box::pin(settle(client, read, asked, policy, &mut call, &pending)).await {
                Settled::Found(shares, wallet) => {
                    let status = if existing {
                        BackupStatus::AlreadyBackedUp
                    } else {
                        BackupStatus::Reconciled
                    };
                    let request_id = call.request_id;
                    return Ok(CreatedBackup::from_wallet(
                        &wallet,
                        shares,
                        status,
                        request_id,
                        call.requests,
                    ));
                }
                Settled::Other(wallet, reason) => {
                    if start.accept_existing {
                        let request_id = call.request_id;
                        let shares = held_shares(&wallet);
                        let status = BackupStatus::AlreadyBackedUp;
                        return Ok(CreatedBackup::from_wallet(
                            &wallet,
                            shares,
                            status,
                            request_id,
                            call.requests,
                        ));
                    }
                    return Err(backed_up_otherwise(reason, &call));
                }
                Settled::Unknown { reason, seen } if existing => {
                    let why = format!("its key shares could not be read: {reason}; {seen}");
                    let error = pending
                        .error
                        .unwrap_or_else(|| Error::new(ErrorKind::AlreadyBackedUp));
                    return Err(error.with_source(why).with_attempts(call.requests));
                }
                Settled::Unknown { reason, seen } => {
                    let story = join(&pending.story, &seen);
                    return Err(unknown(pending.error, reason, story, &call));
                }
                Settled::NotThere(note) => {
                    let story = join(&pending.story, &note);
                    let left = call.deadline().saturating_duration_since(Instant::now());
                    let may_resend = pending.applied == Applied::Maybe
                        && !pending.sent_again
                        && creates < policy.max_attempts()
                        && policy.attempt_time(left, true).is_some();
                    if !may_resend {
                        let reason = "a late wallet read shows no key shares, so the create most \
                                      likely did not happen, but no attempt is left to send it \
                                      again";
                        return Err(unknown(pending.error, reason.into(), story, &call));
                    }
                    tracing::debug!("the wallet shows no key shares; sending the create again");
                    resent = Some((pending, story));
                }
            }
        }
        let in_doubt = resent.is_some();
        match attempt::run(
            client,
            create,
            policy,
            &mut call,
            &mut creates,
            in_doubt,
            Lane::New,
        )
        .await
        {
            Ok(answer) => {
                let request_id = call.request_id;
                return Ok(CreatedBackup::from_response(
                    answer.body,
                    answer.raw,
                    request_id,
                    call.requests,
                ));
            }
            Err(Ended::Failed(error)) => match resent.take() {
                None if start.accept_existing && error.kind() == &ErrorKind::AlreadyBackedUp => {
                    let existing = Doubt {
                        since: Instant::now(),
                        applied: Applied::Certainly,
                        early_read: true,
                        sent_again: false,
                        story: "the wallet was backed up before".into(),
                        error: Some(error),
                    };
                    doubt = Some((existing, true));
                }
                None => return Err(error),
                // The resend ended otherwise (a refusal, no time, no budget): the earlier
                // doubt still stands, and nothing more is sent.
                Some((earlier, story)) => {
                    let story = format!("{story}; it was sent again, and then {}", error.summary());
                    let settled_again = Doubt {
                        story,
                        error: Some(error),
                        sent_again: true,
                        ..earlier
                    };
                    doubt = Some((settled_again, false));
                }
            },
            Err(Ended::InDoubt { error, applied }) => {
                let this = format!(
                    "create attempt {creates} may have been applied ({}, {} ms into the call)",
                    error.summary(),
                    call.elapsed().as_millis()
                );
                let story = match resent.take() {
                    Some((_, earlier)) => format!("{earlier}; then {this}"),
                    None => this,
                };
                let pending = Doubt {
                    since: Instant::now(),
                    applied,
                    early_read: true,
                    sent_again: false,
                    story,
                    error: Some(error),
                };
                doubt = Some((pending, false));
            }
        }
    }
}

fn join(story: &str, more: &str) -> String {
    if more.is_empty() {
        story.to_owned()
    } else {
        format!("{story}; {more}")
    }
}

/// The wallet holds a backup this create cannot have made.
fn backed_up_otherwise(reason: String, call: &Call) -> Error {
    Error::new(ErrorKind::AlreadyBackedUp)
        .with_source(format!("the wallet was backed up otherwise: {reason}"))
        .with_request_id(Some(call.request_id.as_str().to_owned()))
        .with_attempts(call.requests)
}

/// The create may or may not have happened: `reason` in one clause, and the story of the
/// call (then the error of the attempt that may have applied it) as the error's source.
pub(crate) fn unknown(
    original: Option<Error>,
    reason: String,
    story: String,
    call: &Call,
) -> Error {
    tracing::warn!(attempts = call.requests, reason = %reason, story = %story, "the create's outcome is unknown");
    let request_id = original
        .as_ref()
        .and_then(|e| e.request_id().map(str::to_owned))
        .or_else(|| Some(call.request_id.as_str().to_owned()));
    Error::new(ErrorKind::OutcomeUnknown { reason })
        .with_request_id(request_id)
        .with_attempts(call.requests)
        .with_source(Story {
            text: story,
            cause: original,
        })
}

/// What the attempts and reads of a call saw, in order; its source is the error of the
/// attempt that may have applied the create.
#[derive(Debug)]
pub(crate) struct Story {
    text: String,
    cause: Option<Error>,
}

impl fmt::Display for Story {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Story {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Counts an unknown outcome for metrics, whatever produced it.
pub(crate) fn count_outcome(client: &Client, result: &Result<CreatedBackup, Error>) {
    if matches!(result, Err(e) if e.is_outcome_unknown()) {
        client.inner.metric(Event::OutcomeUnknown);
    }
}

#[cfg(test)]
mod tests {
    //! The rules of the create, without HTTP: a scripted server that applies creates and
    //! answers reads that lag, under paused time.

    use std::sync::Mutex;
    use std::time::Duration;

    use dynamic_waas_api::ids::EnvironmentId;
    use serde_json::json;

    use super::*;
    use crate::engine::attempt::tests::{client, http};
    use crate::engine::attempt::Attempt;
    use crate::engine::classify::{Failure, OpKind};
    use crate::engine::wire::checked_locations;
    use crate::{BackupLocation, LocationRequest, Pacing};

    /// What the create's attempts do, in order.
    #[derive(Clone, Copy, Debug)]
    enum Fate {
        /// Applied and answered 201.
        Created,
        /// Applied, then the answer is lost (a 502 from a proxy).
        AppliedThenLost,
        /// Not applied, and the answer is a 502.
        Lost,
        /// Applied, and its 201 cut off: certainly applied.
        AppliedThenCut,
    }

    /// A scripted server: one wallet, reads that lag by `lag`.
    struct Server {
        fates: Mutex<Vec<Fate>>,
        applied_at: Mutex<Vec<Instant>>,
        creates_sent: Mutex<u32>,
        reads: Mutex<Vec<Instant>>,
        lag: Duration,
        env: EnvironmentId,
    }

    impl Server {
        fn new(fates: Vec<Fate>, lag: Duration) -> Self {
            Self {
                fates: Mutex::new(fates),
                applied_at: Mutex::new(Vec::new()),
                creates_sent: Mutex::new(0),
                reads: Mutex::new(Vec::new()),
                lag,
                env: EnvironmentId::from(uuid::Uuid::from_u128(1)),
            }
        }

        fn sent(&self) -> u32 {
            *self.creates_sent.lock().unwrap()
        }
    }

    struct Create<'s>(&'s Server);
    struct Read<'s>(&'s Server);

    const SHARE: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

    impl Operation for Create<'_> {
        type Output = CreateAnswer;
        const KIND: OpKind = OpKind::Create;
        const METHOD: &'static str = "POST";

        fn environment(&self) -> &EnvironmentId {
            &self.0.env
        }

        async fn attempt(&self, _: &Client, _: Attempt<'_>) -> Result<CreateAnswer, Failure> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            *self.0.creates_sent.lock().unwrap() += 1;
            let already = !self.0.applied_at.lock().unwrap().is_empty();
            if already {
                return Err(Failure::Http {
                    response: refusal().await,
                    retry_after: None,
                });
            }
            let fate = {
                let mut fates = self.0.fates.lock().unwrap();
                if fates.is_empty() {
                    Fate::Created
                } else {
                    fates.remove(0)
                }
            };
            match fate {
                Fate::Created | Fate::AppliedThenLost | Fate::AppliedThenCut => {
                    self.0.applied_at.lock().unwrap().push(Instant::now());
                }
                Fate::Lost => {}
            }
            match fate {
                Fate::Created => {
                    let body = serde_json::from_value(json!({
                        "message": "ok",
                        "walletId": "95b11417-f18f-457f-8804-68e361f9164f",
                        "locationsWithKeyShares": [{"location": "googleDrive", "keyShareId": SHARE, "externalKeyShareId": SHARE}],
                    }))
                    .unwrap();
                    Ok(CreateAnswer { body, raw: None })
                }
                Fate::AppliedThenLost | Fate::Lost => Err(http(502, None).await),
                Fate::AppliedThenCut => Err(Failure::Unusable2xx {
                    status: reqwest::StatusCode::CREATED,
                    body: None,
                    problem: "cut off".into(),
                }),
            }
        }
    }

    async fn refusal() -> dynamic_waas_api::error::ErrorResponse {
        let response: reqwest::Response = ::http::Response::builder()
            .status(422)
            .body(r#"{"error":"already","code":"key_share_already_backed_up"}"#.to_owned())
            .unwrap()
            .into();
        dynamic_waas_api::error::ErrorResponse::from_response(response, 1024).await
    }

    impl Operation for Read<'_> {
        type Output = WalletAnswer;
        const KIND: OpKind = OpKind::Read;
        const METHOD: &'static str = "GET";

        fn environment(&self) -> &EnvironmentId {
            &self.0.env
        }

        async fn attempt(&self, _: &Client, _: Attempt<'_>) -> Result<WalletAnswer, Failure> {
            let now = Instant::now();
            self.0.reads.lock().unwrap().push(now);
            tokio::time::sleep(Duration::from_millis(10)).await;
            let visible = self
                .0
                .applied_at
                .lock()
                .unwrap()
                .first()
                .is_some_and(|at| now >= *at + self.0.lag);
            // One share at googleDrive: the whole backup when that is all a create asked for.
            let shares = if visible {
                json!([{"id": SHARE, "backupLocation": "googleDrive", "passwordEncrypted": false}])
            } else {
                json!([])
            };
            let wallet: dynamic_waas_api::types::WaasWallet = serde_json::from_value(json!({
                "walletId": "95b11417-f18f-457f-8804-68e361f9164f", "chainName": "EVM",
                "accountAddress": "0x0", "derivationPath": "m",
                "thresholdSignatureScheme": "TWO_OF_TWO", "keyShares": shares,
            }))
            .unwrap();
            Ok(WalletAnswer {
                wallet: wallet.into(),
                raw: None,
            })
        }
    }

    fn asked() -> Vec<Asked> {
        checked_locations([LocationRequest::new(BackupLocation::GoogleDrive)]).unwrap()
    }

    fn tight() -> RetryPolicy {
        RetryPolicy::default()
            .with_max_attempts(4)
            .with_total_timeout(Duration::from_secs(5))
            .with_initial_backoff(Duration::from_millis(100))
    }

    async fn run(
        server: &Server,
        policy: &RetryPolicy,
        start: Start,
    ) -> Result<CreatedBackup, Error> {
        let client = client(Pacing::unlimited());
        create(
            &client,
            &Create(server),
            &Read(server),
            &asked(),
            policy,
            start,
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_partly_visible_backup_is_not_settled_but_read_until_the_deadline() {
        // Two locations asked; reads show the googleDrive share only.
        let server = Server::new(vec![Fate::AppliedThenLost], Duration::ZERO);
        let client = client(Pacing::unlimited());
        let asked = checked_locations([
            LocationRequest::new(BackupLocation::GoogleDrive),
            LocationRequest::new(BackupLocation::Dynamic),
        ])
        .unwrap();
        let err = create(
            &client,
            &Create(&server),
            &Read(&server),
            &asked,
            &tight(),
            Start::call(),
        )
        .await
        .unwrap_err();
        assert!(err.is_outcome_unknown(), "{err}");
        assert!(err.to_string().contains("part of the key shares"), "{err}");
        assert_eq!(server.sent(), 1);
        assert!(server.reads.lock().unwrap().len() > 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_created_answer_is_the_result() {
        let server = Server::new(vec![Fate::Created], Duration::ZERO);
        let created = run(&server, &tight(), Start::call()).await.unwrap();
        assert_eq!(created.status(), BackupStatus::Created);
        assert_eq!(server.sent(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_settled_from_a_lagging_wallet_without_a_resend() {
        // Reads 1.5 s behind, settle_after 2 s: the early read shows nothing, the late finds it.
        let server = Server::new(vec![Fate::AppliedThenLost], Duration::from_millis(1500));
        let created = run(&server, &tight(), Start::call()).await.unwrap();
        assert!(created.is_reconciled());
        assert_eq!(server.sent(), 1, "a create was sent again");
    }

    #[tokio::test(start_paused = true)]
    async fn no_resend_before_a_read_that_started_settle_after_the_attempt() {
        let server = Server::new(vec![Fate::Lost, Fate::Created], Duration::ZERO);
        let start = Instant::now();
        let created = run(&server, &tight(), Start::call()).await.unwrap();
        assert_eq!(created.status(), BackupStatus::Created);
        assert_eq!(server.sent(), 2);
        // The licensing read started at least 2 s after the first attempt ended (20 ms).
        let reads = server.reads.lock().unwrap().clone();
        let licence = reads.last().unwrap().duration_since(start);
        assert!(licence >= Duration::from_millis(2020), "{licence:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_known_to_be_applied_is_read_until_the_deadline_not_the_attempt_count() {
        // Reads 3 s behind, longer than settle_after, policy of 1 attempt: the resend after a
        // (wrong) licence gets 422, which says the first was applied; reads go on.
        let server = Server::new(vec![Fate::AppliedThenLost], Duration::from_secs(3));
        let policy = tight()
            .with_max_attempts(2)
            .with_total_timeout(Duration::from_secs(10));
        let created = run(&server, &policy, Start::call()).await.unwrap();
        assert!(created.is_reconciled());
        assert!(server.reads.lock().unwrap().len() > 2 * policy.max_attempts() as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn an_applied_create_unseen_by_the_deadline_is_unknown_and_says_why() {
        let server = Server::new(vec![Fate::AppliedThenCut], Duration::from_secs(60));
        let err = run(&server, &tight(), Start::call()).await.unwrap_err();
        assert!(err.is_outcome_unknown(), "{err}");
        assert_eq!(err.status(), None);
        assert_eq!(server.sent(), 1);
        let text = err.to_string();
        assert!(text.len() < 300, "{text}");
        assert!(text.contains("was applied"), "{text}");
        let story = format!("{err:#}");
        assert!(
            story.contains("create attempt 1 may have been applied"),
            "{story}"
        );
        // Read until the deadline, not until the attempt count ran out.
        assert!(server.reads.lock().unwrap().len() > 4);
    }

    #[tokio::test(start_paused = true)]
    async fn no_resend_when_the_time_left_cannot_cover_it_and_a_late_read() {
        // 3 s in all: after the licensing read (2 s after the attempt) no create fits.
        let server = Server::new(vec![Fate::Lost], Duration::ZERO);
        let policy = tight().with_total_timeout(Duration::from_secs(3));
        let err = run(&server, &policy, Start::call()).await.unwrap_err();
        assert!(err.is_outcome_unknown(), "{err}");
        assert!(
            err.to_string().contains("most likely did not happen"),
            "{err}"
        );
        assert_eq!(server.sent(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_create_reads_first_and_not_before_settle_after() {
        let server = Server::new(vec![Fate::Created], Duration::ZERO);
        let start = Start {
            waits: Waits::Queued,
            resumed: Some(Instant::now()),
            accept_existing: true,
        };
        let began = Instant::now();
        let created = run(&server, &tight(), start).await.unwrap();
        assert_eq!(created.status(), BackupStatus::Created);
        let reads = server.reads.lock().unwrap().clone();
        assert_eq!(reads.len(), 1);
        assert!(reads[0].duration_since(began) >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_existing_backup_is_read_when_accepted_and_refused_otherwise() {
        let server = Server::new(vec![Fate::Created], Duration::ZERO);
        run(&server, &tight(), Start::call()).await.unwrap();
        let err = run(&server, &tight(), Start::call()).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::AlreadyBackedUp);
        let start = Start {
            accept_existing: true,
            ..Start::call()
        };
        let existing = run(&server, &tight(), start).await.unwrap();
        assert_eq!(existing.status(), BackupStatus::AlreadyBackedUp);
        assert_eq!(
            existing.locations_with_key_shares()[0]
                .key_share_id
                .as_str(),
            SHARE
        );
    }
}
