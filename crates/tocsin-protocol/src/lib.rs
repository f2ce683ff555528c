//! Tocsin's v1 wire contract, shared by the gateway and every client.
//!
//! This crate holds types only: no I/O, no tokio. `docs/PROTOCOL.md` is the prose
//! version of the same contract; the two change together.
//!
//! # Layout
//! - [`stream`]: stream names (`user:…`, `tenant:…`, `conversation:…`, `all`) and
//!   positions `(epoch, offset)`.
//! - [`notification`]: the stored notification and its typed kinds.
//! - [`frames`]: WebSocket frames in both directions, tagged by `type`.
//! - [`audit`]: the audit trail's records (`/v1/audit`).
//! - [`deadline`]: deadlines the gateway owns (`/v1/deadlines`) and acknowledgements.
//! - [`close`]: close codes in their two ranges (reconnect / do not reconnect).
//! - [`http`]: request and response bodies of the HTTP API under `/v1`.
//! - [`error`]: stable error codes shared by HTTP answers and action results.
//! - `openapi` (feature `openapi`): the JSON Schemas of the hand-written serde forms.
//! - [`ts`] (feature `ts`): the TypeScript declarations of the wire types, for the web
//!   SDK (`cargo xtask gen-types`).

pub mod audit;
pub mod close;
pub mod deadline;
pub mod error;
pub mod frames;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod http;
pub mod notification;
#[cfg(feature = "openapi")]
mod openapi;
pub mod stream;
#[cfg(feature = "ts")]
pub mod ts;

pub use close::CloseCode;
pub use error::{ErrorBody, ErrorCode};
pub use frames::{ClientFrame, ServerFrame};
pub use notification::{Kind, Notification, NotificationData, Urgency};
pub use stream::{Position, StreamName};

/// The WebSocket subprotocol a client must offer (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "tocsin.v1";

/// The path of the WebSocket endpoint.
pub const WS_PATH: &str = "/v1/ws";
