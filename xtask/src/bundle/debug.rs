//! Debug info split off a release binary, the way debhelper's `dh_strip` does it:
//! `objcopy --only-keep-debug` (compressed) into a `.debug` file, the binary fully
//! stripped with a `.gnu_debuglink` to it, and a `<name>-dbgsym` package holding the
//! file at `/usr/lib/debug/.build-id/xx/yyyy.debug` (its GNU build id), where gdb and
//! debuginfod-style tools find it from the stripped binary's build id.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::deb::Package;
use crate::process::{self, run_step};

/// A binary and its split debug info.
#[derive(Debug)]
pub struct Split {
    /// The stripped binary (same name as the original, in the work dir).
    pub stripped: PathBuf,
    /// The debug info.
    pub debug: PathBuf,
    /// The GNU build id, lowercase hex.
    pub build_id: String,
}

/// Splits `binary` into `dir` (created).
pub fn split(binary: &Path, dir: &Path) -> Result<Split> {
    std::fs::create_dir_all(dir)?;
    let name = binary
        .file_name()
        .with_context(|| format!("{} has no file name", binary.display()))?;
    let stripped = dir.join(name);
    let debug = dir.join(format!("{}.debug", name.to_string_lossy()));
    let build_id = build_id(binary)?;
    run_step(
        "keep the debug info",
        process::tool("objcopy")
            .args(["--only-keep-debug", "--compress-debug-sections"])
            .arg(binary)
            .arg(&debug),
    )?;
    // .comment only names the compilers; the build-id note stays (`.note.gnu.build-id`).
    let mut strip = process::tool("objcopy");
    strip
        .args(["--strip-all", "--remove-section=.comment"])
        .arg(format!("--add-gnu-debuglink={}", debug.display()))
        .arg(binary)
        .arg(&stripped);
    run_step("strip", &mut strip)?;
    Ok(Split {
        stripped,
        debug,
        build_id,
    })
}

/// `<name>-dbgsym`, depending on exactly this version of `<name>`.
pub fn package(
    split: &Split,
    name: &str,
    version: &str,
    arch: &str,
    work: &Path,
    out_dir: &Path,
) -> Result<PathBuf> {
    let dbgsym = format!("{name}-dbgsym");
    let mut package = Package::new(work, &dbgsym, version, arch)?;
    let (dir, file) = split.build_id.split_at(2);
    package.add(
        &split.debug,
        &format!("usr/lib/debug/.build-id/{dir}/{file}.debug"),
        0o644,
    )?;
    // As Debian's dbgsym packages do: the docs are the main package's.
    package.symlink(name, &format!("usr/share/doc/{dbgsym}"))?;
    package.build(
        out_dir,
        &format!(
            "Depends: {name} (= {version})\n\
             Section: debug\n\
             Priority: optional\n\
             Auto-Built-Package: debug-symbols\n\
             Build-Ids: {}\n\
             Description: debug symbols for {name}\n \
             Line tables of the stripped binaries in {name}, found by build id, so\n \
             backtraces of a crash can be symbolised.\n",
            split.build_id
        ),
    )
}

/// The GNU build id `readelf -n` prints for `binary`.
fn build_id(binary: &Path) -> Result<String> {
    let output = process::tool("readelf")
        .arg("-n")
        .arg(binary)
        .output()
        .context("running readelf (package binutils)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let id = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: "))
        .map(|id| id.trim().to_ascii_lowercase());
    match id {
        Some(id) if id.len() > 2 && id.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(id),
        _ => bail!(
            "{} has no GNU build id (the linker's --build-id is on by default: was it turned off?)",
            binary.display()
        ),
    }
}
