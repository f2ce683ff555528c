//! tocsin-gateway: receives notifications over HTTP, stores them durably and pushes
//! them over WebSocket.
//!
//! # Layout
//! - [`auth`]: passwords, access tokens, external JWTs, API keys, refresh tokens.

pub mod auth;
