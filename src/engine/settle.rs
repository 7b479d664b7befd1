//! Settling a create that may have been applied, from the wallet: the one place that decides
//! when a wallet read may license sending the create again.
//!
//! The rule: reads lag behind writes by up to [`settle_after`](crate::RetryPolicy::settle_after).
//! A read made before that much time has passed since the attempt that may have applied the
//! create ended may settle it (its shares are visible), never license a resend; a read that
//! **started** later and shows no key shares does. Once the create is known to have been
//! applied (a 2xx, a 422 already backed up after a doubt, shares partly visible), nothing
//! licenses a resend: reads go on, paced and with backoff, until the call's deadline.

use std::time::SystemTime;

use tokio::time::Instant;

use super::attempt::{self, Call, Operation};
use super::classify::Applied;
use super::wire::{Asked, WalletAnswer};
use crate::client::Client;
use crate::error::Error;
use crate::matching::{match_request, Match};
use crate::metrics::Event;
use crate::model::{CreatedKeyShare, Wallet};
use crate::pace::Lane;
use crate::retry::{later, RetryPolicy, MIN_ATTEMPT_TIME};

/// A create in doubt: what is known about it.
pub(crate) struct Doubt {
    /// When the last attempt that may have applied it ended (for a resumed job, when the
    /// earlier run may last have sent it).
    pub(crate) since: Instant,
    pub(crate) applied: Applied,
    /// Whether a read before `settle_after` is worth making (it may settle the create early;
    /// a resumed job makes none: the earlier run's create was sent long enough ago or not).
    pub(crate) early_read: bool,
    /// The create was already sent again once, after a late read showed nothing, and that
    /// ended otherwise (a refusal, no time, no budget): nothing more is sent. (A create known
    /// to be applied is never sent again either: that is `applied`.)
    pub(crate) sent_again: bool,
    /// What happened so far, in order, for an unknown outcome's story.
    pub(crate) story: String,
    /// The error of the attempt that put the create in doubt.
    pub(crate) error: Option<Error>,
}

/// What the wallet says about a create in doubt.
pub(crate) enum Settled {
    /// The key shares asked for: the create happened.
    Found(Vec<CreatedKeyShare>, Wallet),
    /// Key shares this create cannot have made: the wallet was backed up otherwise.
    Other(Wallet, String),
    /// No key shares, in a read made late enough: the create did not happen. Says when.
    NotThere(String),
    /// Not settled before the deadline; the reason in one clause, and what the reads saw.
    Unknown { reason: String, seen: String },
}

/// Reads the wallet until the doubt is settled or the call's deadline leaves no time for a
/// read. Every read takes the pacer's settling lane.
pub(crate) async fn settle<R: Operation<Output = WalletAnswer>>(
    client: &Client,
    read: &R,
    asked: &[Asked],
    policy: &RetryPolicy,
    call: &mut Call,
    doubt: &Doubt,
) -> Settled {
    // Reads are safe and they are what recovers the ids: each read gets twice the policy's
    // attempts (the deadline and the budget still bound them).
    let reading = policy
        .clone()
        .with_max_attempts(policy.max_attempts().saturating_mul(2));
    let licence_at = later(doubt.since, policy.settle_after());
    let mut reads = 0u32;
    let mut partial: Option<String> = None;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let certain = doubt.applied == Applied::Certainly || partial.is_some();
        let now = Instant::now();
        let at = if reads == 0 && (doubt.early_read || now >= licence_at) {
            now
        } else if !certain && now < licence_at {
            // The read that may license a resend.
            licence_at
        } else {
            later(now, policy.backoff_ceiling(reads.max(1)))
        };
        if later(at, MIN_ATTEMPT_TIME) > call.deadline() {
            let reason = match (&partial, certain) {
                (Some(partial), _) => format!("{partial} at the deadline"),
                (None, true) => "the create was applied, but no wallet read before the deadline \
                                 showed its key shares (reads lag behind writes)"
                    .to_owned(),
                (None, false) => format!(
                    "no wallet read could be made {} ms after the attempt, when reads no \
                     longer lag, before the deadline",
                    policy.settle_after().as_millis()
                ),
            };
            return Settled::Unknown {
                reason,
                seen: seen.join("; "),
            };
        }
        tokio::time::sleep_until(at).await;
        let started = Instant::now();
        let mut tries = 0;
        let answer = attempt::run(
            client,
            read,
            &reading,
            call,
            &mut tries,
            false,
            Lane::Settle,
        )
        .await;
        reads += 1;
        let wallet = match answer {
            Ok(answer) => answer.wallet,
            Err(attempt::Ended::Failed(e) | attempt::Ended::InDoubt { error: e, .. }) => {
                seen.push(format!("the wallet read failed ({})", e.summary()));
                return Settled::Unknown {
                    reason: "the wallet could not be read".into(),
                    seen: seen.join("; "),
                };
            }
        };
        let read_at = call.elapsed().as_millis();
        match match_request(asked, &wallet) {
            Match::Found(shares) => {
                client.inner.metric(Event::Reconciled);
                tracing::debug!(attempts = call.requests, "settled from the wallet");
                return Settled::Found(shares, wallet);
            }
            Match::Other(reason) => return Settled::Other(wallet, reason),
            Match::Partial(reason) => {
                seen.push(format!(
                    "the wallet read {read_at} ms into the call: {reason}"
                ));
                partial = Some(reason);
            }
            Match::Nothing => {
                let late = started >= licence_at;
                if late && !certain {
                    return Settled::NotThere(format!(
                        "the wallet read {read_at} ms into the call, {} ms after the attempt, \
                         showed no key shares",
                        started.saturating_duration_since(doubt.since).as_millis()
                    ));
                }
                seen.push(format!(
                    "the wallet read {read_at} ms into the call showed no key shares{}",
                    if late {
                        ""
                    } else {
                        " (too early to tell: reads lag)"
                    }
                ));
            }
        }
    }
}

/// The clock's `Instant` of a moment given as wall-clock time (a file's mtime, say): now
/// less how long ago it was (bounded by what the clock can go back to); a moment in the
/// future (a skewed clock) is now.
pub(crate) fn instant_of(at: SystemTime) -> Instant {
    let ago = SystemTime::now().duration_since(at).unwrap_or_default();
    let now = Instant::now();
    [
        ago,
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(60),
    ]
    .into_iter()
    .find_map(|back| now.checked_sub(back))
    .unwrap_or(now)
}
