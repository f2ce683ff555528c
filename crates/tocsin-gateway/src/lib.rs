//! tocsin-gateway: receives notifications over HTTP, stores them durably and pushes
//! them over WebSocket.
//!
//! # Layout
//! - [`auth`]: passwords, access tokens, external JWTs, API keys, refresh tokens.

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod deadlines;
pub mod email;
pub mod error;
pub mod hub;
pub mod listener;
pub mod metrics;
pub mod metrics_serve;
pub mod queue;
pub mod server;
pub mod state;
pub mod store;
pub mod webhooks;
pub mod ws;
