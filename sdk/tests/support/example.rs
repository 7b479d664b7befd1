//! The example environment, wallet and user (those of the fixtures and of the sandbox's
//! `Seed::example()`) and the example wallet's paths: one definition for the generated
//! client's tests and, through `#[path]`, the facade's.

pub const ENV: &str = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
pub const WALLET: &str = "95b11417-f18f-457f-8804-68e361f9164f";
pub const USER: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";

/// The path of the example wallet's read.
pub fn wallet_path() -> String {
    format!("/environments/{ENV}/waas/{WALLET}")
}

/// The path of the example wallet's create.
pub fn create_path() -> String {
    wallet_path() + "/keyShares/backup/locations"
}
