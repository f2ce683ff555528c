//! tocsin-gateway: receives notifications over HTTP, stores them durably and pushes
//! them over WebSocket.
//!
//! # Layout
//! - [`auth`]: passwords, access tokens, external JWTs, API keys, refresh tokens.

pub mod auth;
pub mod config;
pub mod hub;
pub mod store;
pub mod access;
pub mod api;
pub mod error;
pub mod state;
pub mod ws;
pub mod server;
pub mod cli;
