//! A private desktop session per test: the harness's
//! ([`tocsin_harness::desktop::session`]), whose directory (logs included) is kept when
//! a test fails.

pub use tocsin_harness::desktop::session::*;
