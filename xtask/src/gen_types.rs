//! `cargo xtask gen-types`: the web SDK's protocol types (`sdk/web/src/protocol/`),
//! generated from tocsin-protocol (its `ts` feature renders them), and
//! `--check`, the pipeline's step that fails when the committed files are not what
//! the Rust types generate now.
//!
//! The directory holds generated files only: writing it also removes any file the
//! types no longer generate, so a renamed type leaves no stale declaration behind.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::process::{header, repo_root};

/// Where the generated files go, relative to the repository root.
pub const OUT_DIR: &str = "sdk/web/src/protocol";

/// Options of `cargo xtask gen-types`.
#[derive(Debug, Args)]
pub struct GenTypesArgs {
    /// Write nothing: fail, listing each file, if the committed files are out of date.
    #[arg(long)]
    check: bool,
}

/// Runs the command.
pub fn run(args: &GenTypesArgs) -> Result<()> {
    if args.check {
        return check();
    }
    let dir = repo_root().join(OUT_DIR);
    write(&dir)?;
    println!("wrote {}", dir.display());
    Ok(())
}

/// Regenerates into a temporary directory and compares it with the committed one.
pub fn check() -> Result<()> {
    header(&format!("generated TypeScript types: {OUT_DIR}"));
    let fresh = tempfile::tempdir().context("creating a temporary directory")?;
    write(fresh.path())?;
    let committed = repo_root().join(OUT_DIR);
    let differences = compare(fresh.path(), &committed)?;
    if !differences.is_empty() {
        bail!(
            "{OUT_DIR} is out of date with crates/tocsin-protocol:\n{}\nrun `cargo xtask gen-types` and commit the result",
            differences.join("\n")
        );
    }
    Ok(())
}

/// Writes every generated file into `dir` and removes the files it holds that are no
/// longer generated.
fn write(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = tocsin_protocol::ts::files();
    for stale in file_names(dir)? {
        if !files.contains_key(&stale) {
            let path = dir.join(&stale);
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    for (name, text) in &files {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One line per file that differs, is missing from `committed` or should not be there.
fn compare(fresh: &Path, committed: &Path) -> Result<Vec<String>> {
    let generated = file_names(fresh)?;
    let present = file_names(committed)?;
    let mut differences = Vec::new();
    for name in generated.union(&present) {
        let line = match (generated.contains(name), present.contains(name)) {
            (true, false) => format!("  missing: {name}"),
            (false, true) => format!("  extra (no longer generated): {name}"),
            _ if read(&fresh.join(name))? != read(&committed.join(name))? => {
                format!("  stale: {name}")
            }
            _ => continue,
        };
        differences.push(line);
    }
    Ok(differences)
}

/// The names of the files directly in `dir` (none when it does not exist), sorted.
fn file_names(dir: &Path) -> Result<BTreeSet<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", dir.display())),
    };
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type()?.is_file() {
            names.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// A file's bytes, with its path in the error.
fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}
