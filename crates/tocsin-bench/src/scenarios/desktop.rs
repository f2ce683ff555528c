//! **desktop**: PLACEHOLDER — being written; must be replaced before landing.

use anyhow::Result;

use super::Ctx;
use crate::report::Report;

/// Runs the scenario.
pub async fn run(_ctx: &Ctx) -> Result<Report> {
    anyhow::bail!("the desktop scenario is not written yet")
}
