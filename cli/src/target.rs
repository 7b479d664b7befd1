//! Where calls go: the configured API, or a sandbox started for this command, and the client
//! that sends them there.

use dynamic_waas::{Client, Pacing, RetryPolicy};
#[cfg(feature = "sandbox")]
use dynamic_waas_sandbox::{Sandbox, Seed};

use crate::args::GlobalArgs;
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
    pub async fn new(global: &GlobalArgs) -> Self {
        #[cfg(feature = "sandbox")]
        return Self::seeded(global, |builder, _| Ok(builder))
            .await
            .unwrap_or(Target::Api);
        #[cfg(not(feature = "sandbox"))]
        {
            let _ = global;
            Target::Api
        }
    }

    /// With `--sandbox`, a sandbox seeded with the example and whatever `more` adds (given the
    /// example seed); else the API.
    #[cfg(feature = "sandbox")]
    pub async fn seeded(
        global: &GlobalArgs,
        more: impl FnOnce(
            dynamic_waas_sandbox::SandboxBuilder,
            &Seed,
        ) -> Result<dynamic_waas_sandbox::SandboxBuilder, CliError>,
    ) -> Result<Self, CliError> {
        if !global.sandbox {
            return Ok(Target::Api);
        }
        let seed = Seed::example();
        let sandbox = Sandbox::start(more(seed.builder(), &seed)?).await;
        tracing::debug!(uri = %sandbox.uri(), "sandbox started");
        Ok(Target::Sandbox(Box::new((sandbox, seed))))
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

    /// A client for the target, paced by `pacing`; the configuration is checked, nothing is
    /// sent.
    pub fn client(&self, global: &GlobalArgs, pacing: Pacing) -> Result<Client, CliError> {
        let builder = match self {
            Target::Api => Client::builder()
                .base_url(global.base_url.as_str())
                .token_from_env()?,
            #[cfg(feature = "sandbox")]
            Target::Sandbox(running) => Client::builder()
                .base_url(running.0.uri())
                .token(running.1.token.clone()),
        };
        let mut policy = RetryPolicy::default();
        if let Some(attempts) = global.max_attempts {
            policy = policy.with_max_attempts(attempts);
        }
        let mut builder = builder;
        if let Some(timeout) = global.timeout {
            // The whole call gets room for every attempt, and never less than the default.
            let all_attempts = timeout.saturating_mul(policy.max_attempts());
            let total = all_attempts.max(policy.total_timeout());
            policy = policy
                .with_attempt_timeout(timeout)
                .with_total_timeout(total);
            builder = builder.connect_timeout(timeout.min(dynamic_waas::DEFAULT_CONNECT_TIMEOUT));
        }
        let client = builder.retry_policy(policy).pacing(pacing).build()?;
        tracing::debug!(base_url = client.base_url(), "client configured");
        Ok(client)
    }
}
