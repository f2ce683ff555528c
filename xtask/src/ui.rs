//! The panel's web front end (`ui/`): installed with `npm ci` and built with Vite into
//! `ui/dist`, which the desktop crate embeds at compile time (Tauri's `frontendDist`).
//! So the UI is built before any cargo command that compiles `tocsin-desktop`.

use anyhow::Result;

use crate::npm::Package;

/// The panel's package.
const UI: Package = Package {
    dir: "ui",
    label: "ui",
};

/// Builds `ui/dist`.
pub fn build() -> Result<()> {
    UI.run("build", "build")
}

/// Type-checks the UI and runs its unit tests.
pub fn test() -> Result<()> {
    UI.run("check", "svelte-check")?;
    UI.run("test", "unit tests")
}
