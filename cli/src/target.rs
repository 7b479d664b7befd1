//! Where calls go: the configured API, or a sandbox started for this command, and the client
//! that sends them there, with every configuration problem reported at once.

use std::io::BufRead;

use dynamic_waas::{Client, ClientBuilder, Pacing, RetryPolicy};
#[cfg(feature = "sandbox")]
use dynamic_waas_sandbox::{Sandbox, Seed};

use crate::args::ApiArgs;
use crate::exit::CliError;

/// The ids a sandbox was seeded with, the defaults of the id flags under `--sandbox`.
pub struct SeededIds {
    pub environment_id: String,
    pub wallet_id: String,
    pub user_id: String,
}

/// Where calls go: the configured API, or a sandbox started for this command.
pub enum Target {
    Api,
    #[cfg(feature = "sandbox")]
    Sandbox(Box<(Sandbox, Seed)>),
}

impl Target {
    pub async fn new(api: &ApiArgs) -> Result<Self, CliError> {
        #[cfg(feature = "sandbox")]
        return Self::seeded(api, |builder, _| Ok(builder)).await;
        #[cfg(not(feature = "sandbox"))]
        {
            let _ = api;
            Ok(Target::Api)
        }
    }

    /// With `--sandbox`, a sandbox seeded with the example and whatever `more` adds (given the
    /// example seed); else the API.
    #[cfg(feature = "sandbox")]
    pub async fn seeded(
        api: &ApiArgs,
        more: impl FnOnce(
            dynamic_waas_sandbox::SandboxBuilder,
            &Seed,
        ) -> Result<dynamic_waas_sandbox::SandboxBuilder, CliError>,
    ) -> Result<Self, CliError> {
        if !api.sandbox {
            return Ok(Target::Api);
        }
        let seed = Seed::example();
        let sandbox = Sandbox::start(more(seed.builder(), &seed)?).await;
        tracing::debug!(uri = %sandbox.uri(), "sandbox started");
        Ok(Target::Sandbox(Box::new((sandbox, seed))))
    }

    /// Whether calls go to an embedded sandbox.
    pub fn is_sandbox(&self) -> bool {
        !matches!(self, Target::Api)
    }

    pub fn seeded_ids(&self) -> Option<SeededIds> {
        match self {
            Target::Api => None,
            #[cfg(feature = "sandbox")]
            Target::Sandbox(running) => Some(SeededIds {
                environment_id: running.1.environment_id.to_string(),
                wallet_id: running.1.wallet_id.to_string(),
                user_id: running.1.user_id.to_string(),
            }),
        }
    }

    /// A client for the target, paced by `pacing` (an embedded sandbox is not paced: it has
    /// no limits). The configuration is checked and nothing is sent; every problem, the
    /// command's own (`problems`) included, is reported at once.
    pub fn client(
        &self,
        api: &ApiArgs,
        pacing: Pacing,
        mut problems: Vec<String>,
    ) -> Result<Client, CliError> {
        let (builder, base_url, pacing) = match self {
            Target::Api => {
                let builder = match token_builder(api) {
                    Ok(builder) => builder,
                    Err(problem) => {
                        problems.push(problem);
                        Client::builder()
                    }
                };
                (builder, api.base_url.clone(), pacing)
            }
            #[cfg(feature = "sandbox")]
            Target::Sandbox(running) => (
                Client::builder().token(running.1.token.clone()),
                running.0.uri(),
                Pacing::unlimited(),
            ),
        };
        // The base URL's own rules, checked with a stand-in token, so that its problem is
        // reported beside a missing token.
        let probe = Client::builder()
            .base_url(base_url.as_str())
            .token("dyn_probe")
            .pacing(Pacing::unlimited())
            .build();
        if let Err(e) = probe {
            problems.push(crate::exit::problem(&e));
        }
        if !problems.is_empty() {
            return Err(CliError::problems(problems));
        }
        let mut policy = RetryPolicy::default();
        if let Some(attempts) = api.max_attempts {
            policy = policy.with_max_attempts(attempts);
        }
        if let Some(settle_after) = api.settle_after {
            policy = policy.with_settle_after(settle_after);
        }
        let mut builder = builder.base_url(base_url);
        if let Some(timeout) = api.timeout {
            // The whole call gets room for every attempt, and never less than the default.
            let all_attempts = timeout.saturating_mul(policy.max_attempts());
            let total = all_attempts
                .saturating_add(policy.settle_after())
                .max(policy.total_timeout());
            policy = policy
                .with_attempt_timeout(timeout)
                .with_total_timeout(total);
            builder = builder.connect_timeout(timeout.min(dynamic_waas::DEFAULT_CONNECT_TIMEOUT));
        }
        let client = builder
            .retry_policy(policy)
            .pacing(pacing)
            .build()
            .map_err(|e| CliError::problems(vec![crate::exit::problem(&e)]))?;
        tracing::debug!(base_url = client.base_url(), "client configured");
        Ok(client)
    }
}

/// A builder holding the token: from stdin with `--token-stdin`, else from the environment.
fn token_builder(api: &ApiArgs) -> Result<ClientBuilder, String> {
    if api.token_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("token: cannot read it from stdin: {e}"))?;
        let token = line.trim_end_matches(['\n', '\r']);
        if token.is_empty() {
            return Err("token: --token-stdin read an empty line".into());
        }
        return Ok(Client::builder().token(token.to_owned()));
    }
    Client::builder()
        .token_from_env()
        .map_err(|e| crate::exit::problem(&e))
}
