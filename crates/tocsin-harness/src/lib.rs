//! The real parts the tests, the benchmarks and the demo start: today a throwaway
//! PostgreSQL cluster ([`postgres`]). Everything here returns errors instead of
//! panicking, so a benchmark or the demo can explain what is missing.
//!
//! Tests that need a part call it and fail when it cannot start: a missing
//! PostgreSQL is never a silent skip (`cargo xtask setup` installs it).

pub mod env;
pub mod postgres;
