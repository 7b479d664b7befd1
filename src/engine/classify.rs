//! The one classification: what a failed attempt means for the call (retry, refresh the token, settle from the wallet, stop)
//! and which [`ErrorKind`] it is reported as, decided together so the two never disagree.

use std::time::Duration;

use dynamic_waas_api::error::ErrorResponse;
use reqwest::StatusCode;

use crate::error::ErrorKind;

/// Which operation an attempt belonged to: a create is not idempotent, a read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Create,
    Read,
}

impl OpKind {
    /// The operation's name in metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create_backup_locations",
            OpKind::Read => "get_wallet",
        }
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Failed before the request left the client (connect refused, DNS, TLS): not sent.
    NotSent(reqwest::Error),
    /// Sent, then the connection failed before an answer arrived: it may have been processed.
    Lost(reqwest::Error),
    /// The attempt's time ran out. `status` is the answer's status when its headers had
    /// arrived (the body had not).
    TimedOut {
        after: Duration,
        status: Option<StatusCode>,
    },
    /// The server answered with a status other than the operation's success, read within
    /// the attempt's time; `Retry-After` read once.
    Http {
        response: ErrorResponse,
        retry_after: Option<Duration>,
    },
    /// The server answered 2xx, but not with what the operation expects: another 2xx status,
    /// a body cut off, over the size bound or not of the documented shape, or a 201 that
    /// lacks a requested location. Also a create's answer after a followed redirect (a 303
    /// turned into a GET): whatever its status, it is not the create's answer.
    Unusable2xx {
        status: StatusCode,
        body: Option<bytes::Bytes>,
        problem: String,
    },
    /// The generated client refused to build the request.
    Invalid(String),
}

/// Whether a create was applied, as far as an answer tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Lost after it was sent (a timeout, a reset, a 5xx): it may have been.
    Maybe,
    /// The server said so (any 2xx, a followed redirect, or a 422 already backed up after an
    /// attempt that may have been applied): it is never sent again.
    Certainly,
}

/// What the call does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Not processed: try again within the policy, after `Retry-After` if the server gave one.
    Retry { retry_after: Option<Duration> },
    /// 401: refresh the token once and try again.
    Refresh,
    /// A create that may have been applied: the wallet settles it before anything else is
    /// sent.
    Settle(Applied),
    /// Definite: nothing was created (by this attempt), and trying again would fail the same
    /// way.
    Stop,
}

/// The decision and the kind reported if the call ends on this failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) decision: Decision,
    pub(crate) kind: ErrorKind,
}

impl Verdict {
    /// Whether the failure still shows a healthy server, which refills the retry budget: a
    /// definite refusal (400, 401, 403, 404, already backed up, ...), not one that is retried
    /// or may have been applied.
    pub(crate) fn is_healthy_answer(&self, failure: &Failure) -> bool {
        matches!(failure, Failure::Http { .. })
            && matches!(self.decision, Decision::Stop | Decision::Refresh)
            && failure.status().is_some_and(|s| s.is_client_error())
    }
}

impl Failure {
    /// The answer's status, when there was one.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            Failure::Http { response, .. } => Some(response.status()),
            Failure::Unusable2xx { status, .. } => Some(*status),
            Failure::TimedOut { status, .. } => *status,
            _ => None,
        }
    }

    /// One line for logs and error sources.
    pub(crate) fn reason(&self) -> String {
        match self {
            Failure::NotSent(e) => format!("not sent: {e}"),
            Failure::Lost(e) => format!("connection lost after sending: {e}"),
            Failure::TimedOut {
                after,
                status: None,
            } => format!("no answer within {} ms", after.as_millis()),
            Failure::TimedOut {
                after,
                status: Some(s),
            } => format!(
                "status {} arrived, but its body did not end within {} ms",
                s.as_u16(),
                after.as_millis()
            ),
            Failure::Http { response, .. } => format!("status {}", response.status().as_u16()),
            Failure::Unusable2xx {
                status, problem, ..
            } => {
                format!("status {}: {problem}", status.as_u16())
            }
            Failure::Invalid(m) => m.clone(),
        }
    }
}

fn transport_kind(e: &reqwest::Error) -> ErrorKind {
    if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Transport
    }
}

/// May have been processed: a create settles from the wallet, a read simply tries again.
fn maybe(op: OpKind, applied: Applied) -> Decision {
    match op {
        OpKind::Create => Decision::Settle(applied),
        OpKind::Read => Decision::Retry { retry_after: None },
    }
}

/// Classifies a failed attempt of `op`. `in_doubt`: an earlier attempt of the same call may
/// have been applied, so that a 422 "already backed up" now means that one was (the server
/// applies at most one create per wallet).
pub(crate) fn classify(op: OpKind, failure: &Failure, in_doubt: bool) -> Verdict {
    let maybe = |applied| maybe(op, applied);
    let (decision, kind) = match failure {
        Failure::NotSent(e) => (Decision::Retry { retry_after: None }, transport_kind(e)),
        Failure::Lost(e) => (maybe(Applied::Maybe), transport_kind(e)),
        Failure::TimedOut { status, .. } => match status {
            Some(s) if s.is_success() => (maybe(Applied::Certainly), ErrorKind::Timeout),
            // The status arrived, the body did not: the status decides, and names the kind.
            Some(s) => by_status(op, *s, None, None, false, in_doubt),
            None => (maybe(Applied::Maybe), ErrorKind::Timeout),
        },
        Failure::Unusable2xx { .. } => (maybe(Applied::Certainly), ErrorKind::InvalidResponse),
        Failure::Invalid(message) => (
            Decision::Stop,
            ErrorKind::InvalidInput {
                field: "request".into(),
                reason: message.clone(),
            },
        ),
        Failure::Http {
            response,
            retry_after,
        } => by_status(
            op,
            response.status(),
            response.code(),
            *retry_after,
            response.is_complete(),
            in_doubt,
        ),
    };
    Verdict { decision, kind }
}

/// The table behind [`classify`] for an answer with an error status. `complete`: the whole
/// body was read, so a missing `code` is really missing.
fn by_status(
    op: OpKind,
    status: StatusCode,
    code: Option<&str>,
    retry_after: Option<Duration>,
    complete: bool,
    in_doubt: bool,
) -> (Decision, ErrorKind) {
    let retry = Decision::Retry { retry_after };
    let maybe = |applied| maybe(op, applied);
    let rate_limited = ErrorKind::RateLimited { retry_after };
    match status.as_u16() {
        _ if status.is_success() => (maybe(Applied::Certainly), ErrorKind::InvalidResponse),
        // See Other answers a processed POST; other redirects that reach here were not
        // followed (they leave the API's origin) and ask for the request to be made elsewhere.
        303 => (maybe(Applied::Certainly), ErrorKind::InvalidResponse),
        _ if status.is_redirection() => (Decision::Stop, ErrorKind::InvalidResponse),
        400 => (Decision::Stop, ErrorKind::BadRequest),
        401 => (Decision::Refresh, ErrorKind::Unauthorized),
        403 => (Decision::Stop, ErrorKind::Forbidden),
        404 => (Decision::Stop, ErrorKind::NotFound),
        // The server gave up waiting for the request: it was not processed.
        408 => (retry, ErrorKind::Timeout),
        429 => (retry, rate_limited),
        422 => match code {
            // After an attempt that may have been applied, the refusal says it was.
            Some("key_share_already_backed_up") if op == OpKind::Create && in_doubt => {
                (maybe(Applied::Certainly), ErrorKind::AlreadyBackedUp)
            }
            Some("key_share_already_backed_up") => (Decision::Stop, ErrorKind::AlreadyBackedUp),
            // Refused before any work was done.
            Some("too_many_requests") => (retry, rate_limited),
            Some("lock_timeout") => (retry, ErrorKind::ServerError),
            Some("wallet_service_connection_error") => {
                (maybe(Applied::Maybe), ErrorKind::ServerError)
            }
            // A 422 whose body did not arrive whole may have carried any code.
            None if !complete => (maybe(Applied::Maybe), ErrorKind::Rejected),
            _ => (Decision::Stop, ErrorKind::Rejected),
        },
        // Overloaded, asking for a wait: a read is retried after it. A create may still have
        // been applied before a busy backend's gateway said so: it is settled from the wallet
        // (the pacer still hears the server ask to slow down).
        503 if retry_after.is_some() && op == OpKind::Read => (retry, rate_limited),
        503 if retry_after.is_some() => (maybe(Applied::Maybe), rate_limited),
        _ if status.is_server_error() => (maybe(Applied::Maybe), ErrorKind::ServerError),
        _ if status.is_client_error() => (Decision::Stop, ErrorKind::Rejected),
        _ => (Decision::Stop, ErrorKind::InvalidResponse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;
    use OpKind::*;

    const RA: Option<Duration> = Some(Duration::from_secs(2));

    fn kind_name(kind: &ErrorKind) -> &'static str {
        match kind {
            ErrorKind::BadRequest => "BadRequest",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::AlreadyBackedUp => "AlreadyBackedUp",
            ErrorKind::Rejected => "Rejected",
            ErrorKind::RateLimited { .. } => "RateLimited",
            ErrorKind::ServerError => "ServerError",
            ErrorKind::RetryBudgetSpent => "RetryBudgetSpent",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::InvalidResponse => "InvalidResponse",
            other => panic!("unexpected kind {other:?}"),
        }
    }

    /// status, code, Retry-After, create decision, read decision, kind.
    type Row = (
        u16,
        Option<&'static str>,
        Option<Duration>,
        Decision,
        Decision,
        &'static str,
    );

    /// status × upstream code × Retry-After × operation → decision and kind.
    #[test]
    fn the_table() {
        let maybe = Settle(Applied::Maybe);
        let applied = Settle(Applied::Certainly);
        let retry = Retry { retry_after: None };
        let retry_ra = Retry { retry_after: RA };
        #[rustfmt::skip]
        let rows: &[Row] = &[
            // status, code, Retry-After, create decision, read decision, kind
            (200, None, None, applied, retry, "InvalidResponse"),
            (202, None, None, applied, retry, "InvalidResponse"),
            (204, None, None, applied, retry, "InvalidResponse"),
            (303, None, None, applied, retry, "InvalidResponse"),
            (307, None, None, Stop, Stop, "InvalidResponse"),
            (400, None, None, Stop, Stop, "BadRequest"),
            (401, None, None, Refresh, Refresh, "Unauthorized"),
            (403, None, None, Stop, Stop, "Forbidden"),
            (404, Some("not_found"), None, Stop, Stop, "NotFound"),
            (408, None, None, retry, retry, "Timeout"),
            (409, None, None, Stop, Stop, "Rejected"),
            (422, Some("key_share_already_backed_up"), None, Stop, Stop, "AlreadyBackedUp"),
            (422, Some("too_many_requests"), RA, retry_ra, retry_ra, "RateLimited"),
            (422, Some("lock_timeout"), None, retry, retry, "ServerError"),
            (422, Some("wallet_service_connection_error"), None, maybe, retry, "ServerError"),
            (422, Some("something_new"), None, Stop, Stop, "Rejected"),
            (422, None, None, Stop, Stop, "Rejected"),
            (429, None, RA, retry_ra, retry_ra, "RateLimited"),
            (429, None, None, retry, retry, "RateLimited"),
            (500, None, None, maybe, retry, "ServerError"),
            (502, None, None, maybe, retry, "ServerError"),
            (503, None, None, maybe, retry, "ServerError"),
            (503, None, RA, maybe, retry_ra, "RateLimited"),
            (504, None, None, maybe, retry, "ServerError"),
            (520, None, None, maybe, retry, "ServerError"),
            (600, None, None, Stop, Stop, "InvalidResponse"),
        ];
        for &(status, code, ra, create, read, kind) in rows {
            let status = StatusCode::from_u16(status).unwrap();
            for (op, want) in [(Create, create), (Read, read)] {
                let (decision, got) = by_status(op, status, code, ra, true, false);
                assert_eq!(decision, want, "{op:?} {status} {code:?}");
                assert_eq!(kind_name(&got), kind, "{op:?} {status} {code:?}");
            }
        }
    }

    #[test]
    fn a_422_whose_body_did_not_arrive_whole_may_have_been_applied() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        assert_eq!(
            by_status(Create, status, None, None, false, false).0,
            Settle(Applied::Maybe)
        );
        assert_eq!(by_status(Create, status, None, None, true, false).0, Stop);
    }

    #[test]
    fn already_backed_up_after_an_attempt_that_may_have_been_applied_means_it_was() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let code = Some("key_share_already_backed_up");
        let (decision, kind) = by_status(Create, status, code, None, true, true);
        assert_eq!(decision, Settle(Applied::Certainly));
        assert_eq!(kind, ErrorKind::AlreadyBackedUp);
        // Without an earlier doubt it is final; a read never sees it as applied.
        assert_eq!(by_status(Create, status, code, None, true, false).0, Stop);
        assert_eq!(by_status(Read, status, code, None, true, true).0, Stop);
    }

    #[test]
    fn failures_without_a_complete_answer() {
        let timed_out = |status: Option<u16>| Failure::TimedOut {
            after: Duration::from_secs(1),
            status: status.map(|s| StatusCode::from_u16(s).unwrap()),
        };
        let unusable = Failure::Unusable2xx {
            status: StatusCode::CREATED,
            body: None,
            problem: "cut off".into(),
        };
        #[rustfmt::skip]
        let rows: Vec<(Failure, Decision, Decision, &str)> = vec![
            (timed_out(None), Settle(Applied::Maybe), Retry { retry_after: None }, "Timeout"),
            (timed_out(Some(201)), Settle(Applied::Certainly), Retry { retry_after: None }, "Timeout"),
            (timed_out(Some(502)), Settle(Applied::Maybe), Retry { retry_after: None }, "ServerError"),
            (timed_out(Some(429)), Retry { retry_after: None }, Retry { retry_after: None }, "RateLimited"),
            (timed_out(Some(404)), Stop, Stop, "NotFound"),
            (unusable, Settle(Applied::Certainly), Retry { retry_after: None }, "InvalidResponse"),
        ];
        for (failure, create, read, kind) in rows {
            for (op, want) in [(Create, create), (Read, read)] {
                let verdict = classify(op, &failure, false);
                assert_eq!(verdict.decision, want, "{op:?} {}", failure.reason());
                assert_eq!(
                    kind_name(&verdict.kind),
                    kind,
                    "{op:?} {}",
                    failure.reason()
                );
            }
        }
    }
}
