//! Everything a sandbox holds, and the order in which a request meets it: the log, then
//! faults (a proxy in front of the service), then the rate limit, then the operation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dynamic_waas_api::ids::WalletId;
use reqwest::header::RETRY_AFTER;
use wiremock::http::HeaderValue;
use wiremock::Request;

use super::faults::{Fault, Faults};
use super::rate_limit::Limiter;
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
    pub(crate) limiter: Option<Limiter>,
    pub(crate) log: Log,
    /// Creates received, whatever became of them.
    pub(crate) creates_received: usize,
    /// Creates applied (answered 201 or not), per wallet.
    pub(crate) creates: HashMap<WalletId, usize>,
    /// How long reads lag behind creates.
    pub(crate) read_lag: Duration,
    /// Per wallet: until when reads show only its first `n` key shares.
    pub(crate) lagging: HashMap<WalletId, (Instant, usize)>,
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
            limiter: builder.rate_limit.map(Limiter::new),
            log: Log::default(),
            creates_received: 0,
            creates: HashMap::new(),
            read_lag: builder.read_lag,
            lagging: HashMap::new(),
        }
    }

    /// Handles one request and logs it with the answer.
    pub(crate) fn handle(&mut self, request: &Request, now: Instant) -> Reply {
        let route = Route::parse(&request.method, request.url.path());
        if route.operation() == Some(super::faults::Operation::Create) {
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
                return Answer::new(response.0, format!("fault: rejected with {status}"));
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
                Answer::new(response.0, outcome)
            }
            Some(Fault::Reject(_)) | None => answer,
        }
    }

    fn serve(&mut self, request: &Request, route: Route<'_>, now: Instant) -> Answer {
        if let Some(limiter) = &mut self.limiter {
            if let Err(seconds) = limiter.admit(now) {
                let reply = Reply::error(429, "Too many requests. Please try again later.")
                    .with_header(RETRY_AFTER, HeaderValue::from(seconds));
                return Answer::new(reply, format!("429: rate limited, retry after {seconds} s"));
            }
        }
        match route {
            Route::Create {
                environment,
                wallet,
            } => create::create(self, request, environment, wallet, now)
                .unwrap_or_else(|refusal| refusal),
            Route::Read {
                environment,
                wallet,
            } => read::read(self, request, environment, wallet, now)
                .unwrap_or_else(|refusal| refusal),
            Route::Unknown => {
                let message = format!(
                    "the sandbox has no route {} {}; it serves {KNOWN_ROUTES}",
                    request.method,
                    request.url.path()
                );
                let reply = Reply::coded(404, &message, "unknown_route");
                Answer::new(reply, format!("404: {message}"))
            }
        }
    }
}
