//! A fake `xdg-open` that records how the app asked the system to open a link.
//!
//! Why this is the real counterpart: on Linux the app opens links through the `open`
//! crate, which runs the first of `xdg-open`, `gio open`, … found on `PATH` with the URL
//! as its one argument — `xdg-open` is the desktop's own "open with the default
//! handler". Putting this script first on the app's `PATH` replaces only the desktop's
//! handler (no browser starts on the test machine); everything in the app down to the
//! process it spawns is the real code path. The script exits 0 at once, as
//! `xdg-open` does once it handed the URL to a browser.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::session::DesktopSession;
use super::steps::poll;

/// The fake opener's directory (put first on `PATH`) and what it recorded.
pub struct FakeOpener {
    /// Holds `xdg-open`.
    bin: PathBuf,
    /// One line per call: the argument count, then each argument, tab-separated.
    record: PathBuf,
}

impl FakeOpener {
    /// Writes `xdg-open` into a directory of `session`.
    pub fn install(session: &DesktopSession) -> Result<FakeOpener> {
        let bin = session.dir("fake-opener-bin")?;
        let record = session.dir("fake-opener")?.join("calls.tsv");
        let script = format!(
            "#!/bin/sh\n\
             # Fake xdg-open (tests/src/desktop/opener.rs): records its arguments.\n\
             {{ printf '%s' \"$#\"; for arg in \"$@\"; do printf '\\t%s' \"$arg\"; done; printf '\\n'; }} >> '{}'\n\
             exit 0\n",
            record.display()
        );
        let path = bin.join("xdg-open");
        std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(FakeOpener { bin, record })
    }

    /// `PATH` for the app: this directory first, then the test's own `PATH`.
    pub fn path_env(&self) -> (String, String) {
        let rest = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned());
        ("PATH".to_owned(), format!("{}:{rest}", self.bin.display()))
    }

    /// Where the calls are recorded.
    pub fn record(&self) -> &Path {
        &self.record
    }

    /// The arguments of every call so far, in order.
    pub fn calls(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines()
            .map(|line| {
                let mut fields = line.split('\t');
                let count: usize = fields.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let args: Vec<String> = fields.map(str::to_owned).collect();
                // A miscount (an argument holding a tab) shows in the assertion.
                if args.len() == count {
                    args
                } else {
                    vec![format!("<{count} arguments, recorded as {args:?}>")]
                }
            })
            .collect()
    }

    /// Waits until at least one call was recorded; returns them all.
    pub async fn wait_calls(&self, timeout: Duration) -> Result<Vec<Vec<String>>> {
        poll("the system opener to be run", timeout, async || {
            let calls = self.calls();
            Ok((!calls.is_empty()).then_some(calls))
        })
        .await
    }
}
