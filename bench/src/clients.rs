//! The clients measured, each making the same create call the way its user would.

use std::fmt;

use dynamic_waas_api::{ids, types};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::server::TOKEN;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// The ids of the API's documented example; the wallet is the one its 201 names (the facade
// does not take an answer about another wallet for its own).
const ENVIRONMENT_ID: &str = "95b11417-f18f-457f-8804-68e361f9164f";
const WALLET_ID: &str = "95b11417-f18f-457f-8804-68e361f9164f";
const USER_ID: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Raw,
    /// Raw reqwest sending the two headers every correct client of this API sends
    /// (`User-Agent`, a fresh `x-dyn-request-id`): the floor for what the SDK itself adds.
    RawWithHeaders,
    Generated,
    Facade,
    /// The facade with its pacer on (as by default), at a rate that never binds: what the
    /// pacer's bookkeeping costs a call.
    FacadePaced,
    /// The facade's call sent with `.send()`: its future unboxed.
    FacadeSend,
}

impl Kind {
    pub const COUNT: usize = 6;
    pub const ALL: [Kind; Kind::COUNT] = [
        Kind::Raw,
        Kind::RawWithHeaders,
        Kind::Generated,
        Kind::Facade,
        Kind::FacadePaced,
        Kind::FacadeSend,
    ];

    /// The position in [`Kind::ALL`], for per-client arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::RawWithHeaders => "raw+headers",
            Kind::Generated => "generated",
            Kind::Facade => "facade",
            Kind::FacadePaced => "facade+pace",
            Kind::FacadeSend => "facade.send",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// All the clients against one server; each has its own connection pool, so none warms
/// connections for another.
pub struct Clients {
    raw: Raw,
    raw_with_headers: Raw,
    generated: Generated,
    facade: Facade,
    facade_paced: Facade,
}

impl Clients {
    pub fn new(base: &str) -> Result<Self, BoxError> {
        Ok(Self {
            raw: Raw::new(base, false)?,
            raw_with_headers: Raw::new(base, true)?,
            generated: Generated::new(base)?,
            facade: Facade::new(base, dynamic_waas::Pacing::unlimited())?,
            // A limit per process and per environment (as the default has), far above what
            // the benchmark reaches.
            facade_paced: Facade::new(
                base,
                dynamic_waas::Pacing::unlimited()
                    .with_per_process(1_000_000_000)
                    .with_per_environment(1_000_000_000),
            )?,
        })
    }

    /// One create call; fails unless the seed answer came back and was decoded.
    pub async fn call(&self, kind: Kind) -> Result<(), BoxError> {
        // A `match` rather than boxed futures: boxing would add an allocation to every call.
        match kind {
            Kind::Raw => self.raw.call().await,
            Kind::RawWithHeaders => self.raw_with_headers.call().await,
            Kind::Generated => self.generated.call().await,
            Kind::Facade => self.facade.call().await,
            Kind::FacadePaced => self.facade_paced.call().await,
            Kind::FacadeSend => self.facade.send().await,
        }
    }
}

/// The floor: reqwest by hand, as lean as a careful user would write it (the header value
/// built once, the body borrowed, the answer decoded into a small struct).
struct Raw {
    http: reqwest::Client,
    base: String,
    authorization: HeaderValue,
    /// Send `User-Agent` and a fresh `x-dyn-request-id`, as the facade does.
    identify: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest<'a> {
    user_id: &'a str,
    locations: &'a [RawLocation<'a>],
}

#[derive(Serialize)]
struct RawLocation<'a> {
    location: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResponse {
    #[allow(dead_code)] // decoded because a real caller reads it
    message: String,
    #[allow(dead_code)]
    wallet_id: String,
    locations_with_key_shares: Vec<RawCreated>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // decoded because a real caller reads them
struct RawCreated {
    location: String,
    key_share_id: String,
    external_key_share_id: String,
}

impl Raw {
    fn new(base: &str, identify: bool) -> Result<Self, BoxError> {
        let mut authorization = HeaderValue::try_from(format!("Bearer {TOKEN}"))?;
        authorization.set_sensitive(true);
        let mut http = reqwest::Client::builder();
        if identify {
            http = http.user_agent("raw-bench/0");
        }
        Ok(Self {
            http: http.build()?,
            base: base.to_owned(),
            authorization,
            identify,
        })
    }

    async fn call(&self) -> Result<(), BoxError> {
        let url = format!(
            "{}/environments/{ENVIRONMENT_ID}/waas/{WALLET_ID}/keyShares/backup/locations",
            self.base
        );
        let body = RawRequest {
            user_id: USER_ID,
            locations: &[RawLocation {
                location: "googleDrive",
            }],
        };
        let mut request = self
            .http
            .post(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if self.identify {
            let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id = HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))?;
            request = request.header("x-dyn-request-id", id);
        }
        let response = request.json(&body).send().await?;
        if response.status() != StatusCode::CREATED {
            return Err(format!("raw: unexpected status {}", response.status()).into());
        }
        let created: RawResponse = response.json().await?;
        expect_one(created.locations_with_key_shares.len())
    }
}

/// The generated client alone, on a plain reqwest client configured like the raw one.
struct Generated {
    client: dynamic_waas_api::Client,
    /// A request with every optional field unset.
    blank: types::BackupKeySharesToLocationsWithUserIdRequest,
    environment: ids::EnvironmentId,
    wallet: ids::WalletId,
    user: uuid::Uuid,
}

impl Generated {
    fn new(base: &str) -> Result<Self, BoxError> {
        let options = dynamic_waas_api::RequestOptions::new().bearer_token(TOKEN)?;
        Ok(Self {
            client: dynamic_waas_api::Client::new_with_client(
                base,
                reqwest::Client::builder().build()?,
                options,
            ),
            environment: ENVIRONMENT_ID.parse()?,
            wallet: WALLET_ID.parse()?,
            user: USER_ID.parse()?,
            blank: serde_json::from_value(serde_json::json!({
                "userId": USER_ID,
                "locations": [{"location": "googleDrive"}],
            }))?,
        })
    }

    async fn call(&self) -> Result<(), BoxError> {
        // Built per call, as a caller whose user and locations change would (from blank
        // values, so that optional fields upstream adds later need no edit here).
        let body = types::BackupKeySharesToLocationsWithUserIdRequest {
            user_id: self.user,
            locations: vec![
                types::BackupKeySharesToLocationsWithUserIdRequestLocationsItem {
                    location: "googleDrive".into(),
                    ..self.blank.locations[0].clone()
                },
            ],
            ..self.blank.clone()
        };
        let created = self
            .client
            .backup_key_shares_to_locations_for_pregen(&self.environment, &self.wallet, &body)
            .await?;
        expect_one(created.into_inner().locations_with_key_shares.len())
    }
}

/// The facade, `dynamic_waas::Client` with its default policy (retries, timeouts, request
/// ids, reconciliation; on a 201 only the bookkeeping of those runs).
struct Facade {
    client: dynamic_waas::Client,
    environment: uuid::Uuid,
    wallet: uuid::Uuid,
    user: uuid::Uuid,
}

impl Facade {
    fn new(base: &str, pacing: dynamic_waas::Pacing) -> Result<Self, BoxError> {
        let client = dynamic_waas::Client::builder()
            .base_url(base)
            .token(secrecy::SecretString::from(TOKEN))
            // The engine's own cost is measured, not the pace of upstream's limits.
            .pacing(pacing)
            .build()?;
        Ok(Self {
            client,
            environment: ENVIRONMENT_ID.parse()?,
            wallet: WALLET_ID.parse()?,
            user: USER_ID.parse()?,
        })
    }

    fn create(&self) -> dynamic_waas::CreateBackupLocations {
        self.client.create_backup_locations(
            self.environment,
            self.wallet,
            self.user,
            [dynamic_waas::BackupLocation::GoogleDrive.into()],
        )
    }

    /// Awaited, as the README shows it: the call's future is boxed.
    async fn call(&self) -> Result<(), BoxError> {
        let created = self.create().await?;
        expect_one(created.locations_with_key_shares().len())
    }

    /// With `.send()`: the same call, its future unboxed.
    async fn send(&self) -> Result<(), BoxError> {
        let created = self.create().send().await?;
        expect_one(created.locations_with_key_shares().len())
    }
}

fn expect_one(created: usize) -> Result<(), BoxError> {
    if created == 1 {
        Ok(())
    } else {
        Err(format!("expected one created location, got {created}").into())
    }
}
