//! The wiremock responder: one shared state behind a mutex, and a guarantee that no request
//! can break the server for the next one.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use wiremock::{Request, Respond, ResponseTemplate};

use super::reply::Reply;
use super::state::State;

pub(crate) struct Responder {
    pub(crate) state: Arc<Mutex<State>>,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        // The handlers do not panic on any input, but if one ever did, the client would see a
        // dropped connection and the test a confusing transport error. A loud 500 is better.
        let handled = panic::catch_unwind(AssertUnwindSafe(|| {
            lock(&self.state).handle(request, Instant::now())
        }));
        match handled {
            Ok(reply) => reply.into_template(),
            Err(_) => Reply::error(500, "dynamic_waas_sandbox: the sandbox panicked on this request (a bug: please report it)").into_template(),
        }
    }
}

/// Locks the state even if a panic poisoned the mutex: each request leaves the state whole
/// or changes one wallet at most, so one failed request must not fail every later one.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Seed;
    use wiremock::http::{HeaderMap, Method, Url};

    #[test]
    fn a_poisoned_state_keeps_serving() {
        let seed = Seed::example();
        let state = Arc::new(Mutex::new(State::new(&seed.builder())));
        let poisoner = Arc::clone(&state);
        let crashed = std::thread::spawn(move || {
            let _guard = poisoner.lock();
            panic!("a panic while holding the state (expected by this test)");
        })
        .join();
        assert!(crashed.is_err() && state.is_poisoned());

        let responder = Responder {
            state: Arc::clone(&state),
        };
        let url = format!(
            "http://127.0.0.1/environments/{}/waas/{}",
            seed.environment_id, seed.wallet_id
        );
        let request = Request {
            url: Url::parse(&url).unwrap(),
            method: Method::GET,
            headers: HeaderMap::new(),
            body: Vec::new(),
        };
        let _template = responder.respond(&request);
        let log = lock(&state).log.snapshot();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].status, 401);
    }
}
