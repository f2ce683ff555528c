//! With `--headless`: whole-screen screenshots of the virtual display after each step
//! (`import -window root`, ImageMagick), kept in `target/demo-screenshots/` as
//! `NN-step.png` so they can be looked at (or kept by CI) after the demo.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::headless::Headless;

/// How long one screenshot may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The screenshots of one run.
#[derive(Debug)]
pub struct Screenshots {
    /// Where they go.
    dir: PathBuf,
    /// Those taken so far.
    taken: Vec<PathBuf>,
}

impl Screenshots {
    /// Empties `dir` of a previous run's PNG files (creating it if needed).
    pub fn prepare(dir: &Path) -> Result<Screenshots> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "png") {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing the old {}", path.display()))?;
            }
        }
        Ok(Screenshots {
            dir: dir.to_owned(),
            taken: Vec::new(),
        })
    }

    /// Saves the whole screen as `NN-name.png` and says where.
    pub async fn take(&mut self, session: &Headless, name: &str) -> Result<()> {
        let path = self.dir.join(format!("{:02}-{name}.png", self.taken.len()));
        let output = session
            .command("import")
            .args(["-window", "root"])
            .arg(&path)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(TIMEOUT, output)
            .await
            .with_context(|| format!("`import` took more than {TIMEOUT:?}"))?
            .context("could not run ImageMagick's `import` (package imagemagick)")?;
        if !output.status.success() {
            bail!(
                "import -window root {} failed ({}): {}",
                path.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        println!("  screenshot: {}", path.display());
        self.taken.push(path);
        Ok(())
    }

    /// Checks every screenshot is a non-empty file.
    pub fn check(&self) -> Result<()> {
        for path in &self.taken {
            let size = std::fs::metadata(path)
                .with_context(|| format!("screenshot {} is missing", path.display()))?
                .len();
            if size == 0 {
                bail!("screenshot {} is empty", path.display());
            }
        }
        Ok(())
    }

    /// How many were taken.
    pub fn count(&self) -> usize {
        self.taken.len()
    }

    /// Where they are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
