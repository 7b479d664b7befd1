//! The engine: how a call becomes requests. Read top to bottom, a create goes
//!
//! 1. `create.rs`: the create's flow: send it, settle it if its answer was lost, send it
//!    again only when a late enough read licenses it;
//! 2. `attempt.rs`: the one attempt loop (permit, token, time, budget, retries, spans), for
//!    every operation;
//! 3. `wire.rs`: one attempt over HTTP, its answer turned into an output or a failure;
//! 4. `classify.rs`: what a failed attempt means (retry, settle, stop) and how it is reported;
//! 5. `settle.rs`: the wallet reads that settle a create in doubt, and when one licenses a
//!    resend.
//!
//! A wallet read is steps 2 to 4. Everything here is crate-private: the public calls are in
//! `client.rs` and `call.rs`.

pub(crate) mod attempt;
pub(crate) mod classify;
pub(crate) mod create;
pub(crate) mod settle;
pub(crate) mod wire;
