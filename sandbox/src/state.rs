//! Everything a sandbox holds, and the order in which a request meets it: the log, then
//! faults (a proxy in front of the service), then the rate limits, then the operation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dynamic_waas_api::ids::WalletId;
use reqwest::header::RETRY_AFTER;
use wiremock::http::HeaderValue;
use wiremock::Request;

use super::access::authorize;
use super::faults::{Fault, Faults, Operation};
use super::rate_limit::{Limiter, LOOPBACK_CLIENT};
use super::record::{Log, RecordedRequest};
use super::reply::{Answer, Reply};
use super::routes::{Route, KNOWN_ROUTES};
use super::seed::{SandboxBuilder, KNOWN_LOCATIONS};
use super::world::World;
use super::{create, read};

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) world: World,
    pub(crate) accepted_locations: Vec<String>,
    pub(crate) faults: Faults,
    pub(crate) limiter: Limiter,
    pub(crate) log: Log,
    /// Requests received, whatever became of them.
    pub(crate) requests_received: usize,
    /// Requests the rate limits refused.
    pub(crate) rate_limited: usize,
    /// Creates received, whatever became of them.
    pub(crate) creates_received: usize,
    /// Creates applied (answered 201 or not), per wallet.
    pub(crate) creates: HashMap<WalletId, usize>,
    /// How long reads lag behind creates.
    pub(crate) read_lag: Duration,
    /// Per wallet: until when reads show only its first `n` key shares.
    pub(crate) lagging: HashMap<WalletId, (Instant, usize)>,
    /// Whether a create's "already backed up" check sees what lagging reads see.
    pub(crate) lagging_duplicate_check: bool,
}

impl State {
    pub(crate) fn new(builder: &SandboxBuilder) -> Self {
        let accepted_locations = match &builder.accepted_locations {
            Some(locations) => locations.clone(),
            None => KNOWN_LOCATIONS.iter().map(|s| (*s).to_owned()).collect(),
        };
        Self {
            world: World::from_builder(builder),
            accepted_locations,
            faults: Faults::default(),
            limiter: Limiter::new(builder.rate_limit, builder.rate_limits),
            log: Log::default(),
            requests_received: 0,
            rate_limited: 0,
            creates_received: 0,
            creates: HashMap::new(),
            read_lag: builder.read_lag,
            lagging: HashMap::new(),
            lagging_duplicate_check: builder.lagging_duplicate_check,
        }
    }

    /// Handles one request and logs it with the answer.
    pub(crate) fn handle(&mut self, request: &Request, now: Instant) -> Reply {
        let route = Route::parse(&request.method, request.url.path());
        self.requests_received += 1;
        if route.operation() == Some(Operation::Create) {
            self.creates_received += 1;
        }
        let mut record = RecordedRequest::new(request, route.operation());
        let answer = self.answer(request, route, now);
        record.status = answer.reply.status;
        record.outcome = answer.outcome;
        self.log.push(record);
        *answer.reply
    }

    fn answer(&mut self, request: &Request, route: Route<'_>, now: Instant) -> Answer {
        let fault = match self.faults.take(route.operation()) {
            Some(Fault::Reject(response)) => {
                let status = response.status();
                let reply = response.into_reply(request);
                return Answer::new(reply, format!("fault: rejected with {status}"));
            }
            other => other,
        };
        let answer = self.serve(request, route, now);
        match fault {
            Some(Fault::ApplyThenDelay(delay)) => {
                let outcome = format!("{}; fault: answered after {delay:?}", answer.outcome);
                let mut reply = answer.reply;
                reply.delay = Some(delay);
                Answer::new(*reply, outcome)
            }
            Some(Fault::ApplyThenRespond(response)) => {
                let outcome = format!(
                    "{}; fault: answered {} instead",
                    answer.outcome,
                    response.status()
                );
                Answer::new(response.into_reply(request), outcome)
            }
            Some(Fault::Reject(_)) | None => answer,
        }
    }

    fn serve(&mut self, request: &Request, route: Route<'_>, now: Instant) -> Answer {
        if let Some(refused) = self.rate_limit(request, now) {
            return refused;
        }
        let (operation, environment, wallet) = match route {
            Route::Create {
                environment,
                wallet,
            } => (Operation::Create, environment, wallet),
            Route::Read {
                environment,
                wallet,
            } => (Operation::Read, environment, wallet),
            Route::Unknown => {
                let message = format!(
                    "the sandbox has no route {} {}; it serves {KNOWN_ROUTES}",
                    request.method,
                    request.url.path()
                );
                let reply = Reply::coded(404, &message, "unknown_route");
                return Answer::new(reply, format!("404: {message}"));
            }
        };
        let ids = match authorize(&self.world, &request.headers, environment, wallet) {
            Ok(ids) => ids,
            Err(refusal) => return refusal,
        };
        let served = match operation {
            Operation::Create => create::create(self, request, ids, now),
            Operation::Read => read::read(self, ids, now),
        };
        served.unwrap_or_else(|refusal| refusal)
    }

    /// Upstream's 429 when a window of the rate limits is full, else `None` (the request is
    /// then counted in each window).
    fn rate_limit(&mut self, request: &Request, now: Instant) -> Option<Answer> {
        let client = client_address(request);
        let environment = environment_of(request.url.path());
        let refusal = self.limiter.admit(client, environment, now).err()?;
        self.rate_limited += 1;
        let seconds = refusal.retry_after;
        let reply = Reply::error(429, "Too many requests. Please try again later.")
            .with_header(RETRY_AFTER, HeaderValue::from(seconds));
        let outcome = format!(
            "429: rate limited by {}, retry after {seconds} s",
            refusal.windows(client, environment)
        );
        Some(Answer::new(reply, outcome))
    }
}

/// The client's address as upstream sees it behind its load balancer: the first entry of
/// `X-Forwarded-For`, else the one loopback client.
fn client_address(request: &Request) -> &str {
    request
        .headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|first| !first.is_empty())
        .unwrap_or(LOOPBACK_CLIENT)
}

/// The `{environmentId}` of a path under `/environments/{environmentId}/`, when well formed.
fn environment_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/environments/")?;
    let environment = rest.split('/').next()?;
    dynamic_waas_api::ids::validate("environmentId", environment)
        .ok()
        .map(|()| environment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::http::{HeaderMap, HeaderName, Method, Url};

    fn request(path: &str, forwarded_for: Option<&[u8]>) -> Request {
        let mut headers = HeaderMap::new();
        if let Some(value) = forwarded_for {
            headers.insert(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        Request {
            url: Url::parse(&format!("http://127.0.0.1{path}")).unwrap(),
            method: Method::GET,
            headers,
            body: Vec::new(),
        }
    }

    #[test]
    fn the_client_is_the_first_forwarded_address_else_loopback() {
        let client = |value: Option<&[u8]>| client_address(&request("/", value)).to_owned();
        assert_eq!(client(Some(b"203.0.113.7")), "203.0.113.7");
        assert_eq!(client(Some(b" 203.0.113.7 , 10.0.0.1")), "203.0.113.7");
        assert_eq!(client(Some(b"2001:db8::1,10.0.0.1")), "2001:db8::1");
        for nobody in [
            None,
            Some(&b""[..]),
            Some(&b" , 10.0.0.1"[..]),
            Some(&b"\xff"[..]),
        ] {
            assert_eq!(client(nobody), LOOPBACK_CLIENT, "{nobody:?}");
        }
    }

    #[test]
    fn the_environment_is_a_well_formed_path_segment() {
        let id = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
        for path in [
            format!("/environments/{id}/waas/w"),
            format!("/environments/{id}/waas/w/keyShares/backup/locations"),
            format!("/environments/{id}/anything"),
            format!("/environments/{id}"),
        ] {
            assert_eq!(environment_of(&path), Some(id), "{path}");
        }
        for path in [
            "/",
            "/environments/",
            "/environments/e/waas/w",
            "/environments/0B1C2D3E-4F50-4617-8899-AABBCCDDEEFF/waas/w",
            "/waas/0b1c2d3e-4f50-4617-8899-aabbccddeeff",
        ] {
            assert_eq!(environment_of(path), None, "{path}");
        }
    }
}
