//! What of cargo's directories is worth saving, after Swatinem/rust-cache.
//!
//! - In `CARGO_HOME`: the registry index, the downloaded `.crate` archives and the git
//!   databases. Never `registry/src` (cargo re-extracts it from `registry/cache`
//!   faster than a cache restores it) nor `git/checkouts` (rebuilt from `git/db`).
//! - In a target directory: every profile directory (`debug`, `release`, and
//!   `<triple>/<profile>` such as `wasm32-wasip2/release`, which must survive: see
//!   rust-cache#245) is kept, minus its `incremental/` directory and the artifacts of the
//!   workspace's own crates, which every build recompiles anyway.
//!
//! Nothing is deleted: the helpers return a [`Selection`] for [`crate::LocalStore::save`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::Selection;

/// The subpaths of `CARGO_HOME` to save.
pub const CARGO_HOME_PATHS: [&str; 3] = ["registry/index", "registry/cache", "git/db"];

/// A selection of [`CARGO_HOME_PATHS`] (the missing ones are skipped by the save).
pub fn cargo_home() -> Selection {
    Selection {
        include: Some(CARGO_HOME_PATHS.iter().map(PathBuf::from).collect()),
        exclude: Vec::new(),
    }
}

/// A selection of `target_dir` without `incremental/` directories and without the
/// artifacts of `workspace_crates` (package or target names; `-` and `_` are alike).
pub fn cargo_target(target_dir: &Path, workspace_crates: &[&str]) -> io::Result<Selection> {
    let crates: Vec<String> = workspace_crates.iter().map(|c| normalize(c)).collect();
    let mut exclude = Vec::new();
    for profile in profile_dirs(target_dir)? {
        exclude.push(profile.join("incremental"));
        let abs = target_dir.join(&profile);
        // Uplifted artifacts: `kiln`, `kiln.d`, `libkiln_cache.rlib`.
        for name in file_names(&abs)? {
            if is_workspace_artifact(&name, &crates, true) {
                exclude.push(profile.join(name));
            }
        }
        for (sub, allow_lib) in [(".fingerprint", false), ("build", false), ("deps", true)] {
            for name in file_names(&abs.join(sub))? {
                if is_workspace_artifact(&name, &crates, allow_lib) {
                    exclude.push(profile.join(sub).join(name));
                }
            }
        }
    }
    exclude.sort();
    Ok(Selection {
        include: None,
        exclude,
    })
}

/// Directories holding a `.fingerprint/`, one or two levels down, relative to `target`.
fn profile_dirs(target: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for first in subdirs(target)? {
        if target.join(&first).join(".fingerprint").is_dir() {
            found.push(first);
            continue;
        }
        for second in subdirs(&target.join(&first))? {
            let rel = first.join(second);
            if target.join(&rel).join(".fingerprint").is_dir() {
                found.push(rel);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for item in read_dir_or_empty(dir)? {
        let item = item?;
        if item.file_type()?.is_dir() {
            out.push(PathBuf::from(item.file_name()));
        }
    }
    Ok(out)
}

fn file_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for item in read_dir_or_empty(dir)? {
        if let Some(name) = item?.file_name().to_str() {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

fn read_dir_or_empty(dir: &Path) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(listing) => Ok(Box::new(listing)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(err) => Err(err),
    }
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// `kiln-cache-0123456789abcdef`, `libkiln_cache-0123456789abcdef.rlib`, `kiln.d`:
/// the name before any extension and `-<16 hex>` hash, with an optional `lib` prefix
/// for files in `deps/` and the profile root.
fn is_workspace_artifact(file_name: &str, crates: &[String], allow_lib: bool) -> bool {
    let stem = file_name.split('.').next().unwrap_or(file_name);
    let stem = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name
        }
        _ => stem,
    };
    let stem = normalize(stem);
    crates.iter().any(|c| {
        stem == *c || (allow_lib && stem.strip_prefix("lib").is_some_and(|rest| rest == c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names() {
        let crates = vec![normalize("kiln-cache"), normalize("kiln")];
        for hit in [
            "kiln-cache-0123456789abcdef",
            "libkiln_cache-0123456789abcdef.rlib",
            "kiln_cache-0123456789abcdef.d",
            "kiln",
            "kiln.d",
            "libkiln_cache.rlib",
        ] {
            assert!(is_workspace_artifact(hit, &crates, true), "{hit}");
        }
        for miss in [
            "kiln-cachex-0123456789abcdef",
            "serde-0123456789abcdef",
            "libserde-0123456789abcdef.rlib",
            "kilnish",
        ] {
            assert!(!is_workspace_artifact(miss, &crates, true), "{miss}");
        }
        assert!(!is_workspace_artifact(
            "libkiln-0123456789abcdef",
            &crates,
            false
        ));
    }
}
