//! The browser SDK (`sdk/web/`): type-checked, unit-tested (Vitest, with fakes),
//! its core bundle's size measured against the budget (printed), and built into
//! `sdk/web/dist`, which the end-to-end tests serve to a real Chromium
//! (tests/src/web_sdk.rs) and the demo serves with its examples.

use anyhow::Result;

use crate::npm::Package;

/// The SDK's package.
const SDK: Package = Package {
    dir: "sdk/web",
    label: "sdk",
};

/// Builds `sdk/web/dist`.
pub fn build() -> Result<()> {
    SDK.run("build", "build")
}

/// Type-checks the SDK, runs its unit tests and checks the size budget.
pub fn test() -> Result<()> {
    SDK.run("check", "tsc")?;
    SDK.run("test", "unit tests")?;
    SDK.run("size", "size budget")
}
