//! One binary package staged as a directory tree and built with `dpkg-deb`: files
//! copied with their modes, the docs every Debian package carries (`copyright`,
//! `changelog.gz`), maintainer scripts, `md5sums` and the control file
//! (`Installed-Size` summed from what was staged).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::process::{self, run_step};

/// Who the packages name as their maintainer (lintian wants a name and an address).
const MAINTAINER: &str = "Tocsin packagers <packages@tocsin.example>";

/// A package being staged.
#[derive(Debug)]
pub struct Package {
    name: String,
    version: String,
    arch: String,
    stage: PathBuf,
    installed_bytes: u64,
}

impl Package {
    /// An empty tree for `name` under `work` (an earlier one is removed).
    pub fn new(work: &Path, name: &str, version: &str, arch: &str) -> Result<Package> {
        let stage = work.join(format!("{name}_{version}_{arch}"));
        if stage.exists() {
            std::fs::remove_dir_all(&stage)
                .with_context(|| format!("removing the old stage {}", stage.display()))?;
        }
        std::fs::create_dir_all(stage.join("DEBIAN"))?;
        Ok(Package {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            stage,
            installed_bytes: 0,
        })
    }

    /// Copies `from` to `/to` in the package, with `mode`.
    pub fn add(&mut self, from: &Path, to: &str, mode: u32) -> Result<()> {
        let dest = self.stage.join(to);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let size = std::fs::copy(from, &dest)
            .with_context(|| format!("copying {} to {}", from.display(), dest.display()))?;
        set_mode(&dest, mode)?;
        self.installed_bytes += size;
        Ok(())
    }

    /// A symbolic link `/to` → `target` in the package.
    pub fn symlink(&mut self, target: &str, to: &str) -> Result<()> {
        let dest = self.stage.join(to);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(target, &dest)
            .with_context(|| format!("linking {} to {target}", dest.display()))
    }

    /// `/usr/share/doc/<name>/copyright` and a one-entry `changelog.gz`, which
    /// Debian policy asks of every binary package.
    pub fn docs(&mut self, copyright: &Path) -> Result<()> {
        let doc = format!("usr/share/doc/{}", self.name);
        self.add(copyright, &format!("{doc}/copyright"), 0o644)?;
        let changelog = format!(
            "{} ({}) unstable; urgency=medium\n\n  * Built by `cargo xtask bundle` from the Tocsin workspace.\n\n -- {MAINTAINER}  {}\n",
            self.name,
            self.version,
            changelog_date()
        );
        let plain = self.stage.join(&doc).join("changelog");
        std::fs::write(&plain, changelog)?;
        // -n: no name or time stamp in the header, so the same input gives the same bytes.
        run_step(
            "gzip the changelog",
            process::tool("gzip").args(["-9", "-n", "-f"]).arg(&plain),
        )?;
        let gz = self.stage.join(&doc).join("changelog.gz");
        set_mode(&gz, 0o644)?;
        self.installed_bytes += std::fs::metadata(&gz)?.len();
        Ok(())
    }

    /// `DEBIAN/<name>`: a maintainer script (postinst, prerm, postrm).
    pub fn script(&mut self, name: &str, from: &Path) -> Result<()> {
        let dest = self.stage.join("DEBIAN").join(name);
        std::fs::copy(from, &dest)
            .with_context(|| format!("copying {} to {}", from.display(), dest.display()))?;
        set_mode(&dest, 0o755)
    }

    /// Writes `md5sums` and the control file (the common fields, then `fields`), and
    /// builds `<out_dir>/<name>_<version>_<arch>.deb`.
    pub fn build(self, out_dir: &Path, fields: &str) -> Result<PathBuf> {
        let md5sums = process::tool("sh")
            .args([
                "-c",
                "find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum",
            ])
            .current_dir(&self.stage)
            .output()
            .context("running md5sum over the staged files")?;
        if !md5sums.status.success() {
            bail!(
                "md5sum failed: {}",
                String::from_utf8_lossy(&md5sums.stderr)
            );
        }
        let debian = self.stage.join("DEBIAN");
        std::fs::write(debian.join("md5sums"), &md5sums.stdout)?;
        set_mode(&debian.join("md5sums"), 0o644)?;
        let control = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: {MAINTAINER}\nInstalled-Size: {}\n{fields}",
            self.name,
            self.version,
            self.arch,
            self.installed_bytes.div_ceil(1024)
        );
        std::fs::write(debian.join("control"), control)?;
        set_mode(&debian.join("control"), 0o644)?;
        let deb = out_dir.join(format!("{}_{}_{}.deb", self.name, self.version, self.arch));
        run_step(
            &format!("dpkg-deb {}", self.name),
            process::tool("dpkg-deb")
                .args(["--root-owner-group", "-Zxz", "--build"])
                .arg(&self.stage)
                .arg(&deb),
        )?;
        Ok(deb)
    }
}

/// The changelog's date (RFC 2822): `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else now.
fn changelog_date() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|value| value.parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    epoch.unwrap_or_else(chrono::Utc::now).to_rfc2822()
}

/// `chmod mode`.
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}
