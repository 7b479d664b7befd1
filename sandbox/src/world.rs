//! The service's data: which token may use which environment, which user is in which
//! environment, and the wallets with their key shares.

use std::collections::HashMap;

use dynamic_waas_api::ids::{EnvironmentId, UserId, WalletId};

use super::reply::Answer;
use super::seed::{SandboxBuilder, Wallet};

#[derive(Debug, Default)]
pub(crate) struct World {
    tokens: HashMap<String, EnvironmentId>,
    users: HashMap<UserId, EnvironmentId>,
    pub(crate) wallets: HashMap<WalletId, Wallet>,
}

impl World {
    pub(crate) fn from_builder(builder: &SandboxBuilder) -> Self {
        let mut world = Self::default();
        for (token, environment) in &builder.tokens {
            world.tokens.insert(token.clone(), environment.clone());
        }
        for (user, environment) in &builder.users {
            world.users.insert(user.clone(), environment.clone());
        }
        for wallet in &builder.wallets {
            world
                .users
                .entry(wallet.owner.clone())
                .or_insert_with(|| wallet.environment.clone());
            world.wallets.insert(wallet.id.clone(), wallet.clone());
        }
        world
    }

    /// The environment a token may use.
    pub(crate) fn token_environment(&self, token: &str) -> Option<&EnvironmentId> {
        self.tokens.get(token)
    }

    /// The environment a user belongs to.
    pub(crate) fn user_environment(&self, user: &UserId) -> Option<&EnvironmentId> {
        self.users.get(user)
    }

    /// The wallet, when it exists in `environment`; else the 404 upstream gives (a wallet of
    /// another environment is as unknown as one that does not exist).
    pub(crate) fn wallet_in(
        &mut self,
        environment: &EnvironmentId,
        wallet: &WalletId,
    ) -> Result<&mut Wallet, Answer> {
        self.wallets
            .get_mut(wallet)
            .filter(|found| found.environment == *environment)
            .ok_or_else(|| {
                Answer::not_found(format_args!(
                    "wallet {wallet} is not in environment {environment}"
                ))
            })
    }
}
