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
//! - With the project's `Cargo.lock` ([`CargoLock`]), only what it names is kept: the
//!   `.crate` archives and sparse-index entries of its packages (so a developer's
//!   shared `~/.cargo` does not become a cache of every crate ever built), and the target
//!   artifacts of its registry and git packages. Artifacts of crates no longer in the
//!   lockfile are dropped; so are those of a library whose name is not its package's
//!   (`md-5` builds `libmd5`), which costs a rebuild, never a wrong build.
//!
//! Nothing is deleted: the helpers return a [`Selection`] for [`crate::save`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::walk::Selection;

/// The subpaths of `CARGO_HOME` to save.
pub const CARGO_HOME_PATHS: [&str; 3] = ["registry/index", "registry/cache", "git/db"];

/// What of a git database under `git/db/` is never cached: its `config` (where
/// `core.sshCommand`, `core.fsmonitor` or a filter driver would run a program), `hooks/`
/// and `info/`. cargo opens a database without them and fetches into it as before.
pub const GIT_DB_EXCLUDED: [&str; 3] = ["git/db/*/config", "git/db/*/hooks", "git/db/*/info"];

/// A selection of [`CARGO_HOME_PATHS`] (the missing ones are skipped by the save). It is
/// also what a restore of a cargo home admits, whoever saved it: cargo's downloads,
/// never `bin/` (programs kiln and cargo run), `config.toml` (`build.rustc-wrapper`),
/// `credentials.toml`, or a git database's configuration and hooks
/// ([`GIT_DB_EXCLUDED`]).
pub fn cargo_home() -> Selection {
    Selection {
        include: Some(CARGO_HOME_PATHS.iter().map(PathBuf::from).collect()),
        exclude: GIT_DB_EXCLUDED.iter().map(PathBuf::from).collect(),
    }
}

/// The packages of a `Cargo.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoLock {
    /// Packages without a source: the workspace's members and path dependencies.
    pub local: Vec<String>,
    /// `(name, version)` of packages from a registry.
    pub registry: Vec<(String, String)>,
    /// Names of packages from git.
    pub git: Vec<String>,
}

impl CargoLock {
    /// Reads `Cargo.lock`; a missing file is an empty lock.
    pub fn read(path: &Path) -> io::Result<CargoLock> {
        #[derive(serde::Deserialize)]
        struct Lock {
            #[serde(default)]
            package: Vec<Package>,
        }
        #[derive(serde::Deserialize)]
        struct Package {
            name: String,
            version: String,
            source: Option<String>,
        }
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(CargoLock::default()),
            Err(err) => return Err(err),
        };
        let lock: Lock =
            toml::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut out = CargoLock::default();
        for p in lock.package {
            match p.source.as_deref() {
                None => out.local.push(p.name),
                Some(s) if s.starts_with("git+") => out.git.push(p.name),
                Some(_) => out.registry.push((p.name, p.version)),
            }
        }
        Ok(out)
    }

    /// Every package name that builds from a registry or git.
    pub fn dependencies(&self) -> Vec<&str> {
        self.registry
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(self.git.iter().map(String::as_str))
            .collect()
    }
}

/// A selection of `CARGO_HOME` holding only what `lock` names: each registry's
/// `config.json`, the sparse-index entries and `.crate` archives of its packages (a
/// git-protocol index is kept whole), and `git/db` when it has git packages.
pub fn cargo_home_for(home: &Path, lock: &CargoLock) -> io::Result<Selection> {
    let mut include = Vec::new();
    for registry in subdirs(&home.join("registry/index"))? {
        let index = Path::new("registry/index").join(&registry);
        if !home.join(&index).join(".cache").is_dir() {
            include.push(index);
            continue;
        }
        include.push(index.join("config.json"));
        for (name, _) in &lock.registry {
            // A name cargo would refuse (not ASCII) names no index file: skip it rather
            // than fail the save.
            if let Some(path) = sparse_index_path(name) {
                include.push(index.join(".cache").join(path));
            }
        }
    }
    for registry in subdirs(&home.join("registry/cache"))? {
        let cache = Path::new("registry/cache").join(&registry);
        for (name, version) in &lock.registry {
            include.push(cache.join(format!("{name}-{version}.crate")));
        }
    }
    if !lock.git.is_empty() {
        include.push(PathBuf::from("git/db"));
    }
    include.sort();
    include.dedup();
    Ok(Selection {
        include: Some(include),
        exclude: GIT_DB_EXCLUDED.iter().map(PathBuf::from).collect(),
    })
}

/// Where the sparse index keeps a crate: `1/a`, `2/ab`, `3/a/abc`, `se/rd/serde`.
/// `None` for a name that is not ASCII (or is empty): cargo allows no such package name,
/// and slicing its bytes could split a character.
fn sparse_index_path(name: &str) -> Option<PathBuf> {
    if name.is_empty() || !name.is_ascii() {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let at = |range: std::ops::Range<usize>| lower.get(range).unwrap_or_default();
    Some(match lower.len() {
        1 => Path::new("1").join(&lower),
        2 => Path::new("2").join(&lower),
        3 => Path::new("3").join(at(0..1)).join(&lower),
        _ => Path::new(at(0..2)).join(at(2..4)).join(&lower),
    })
}

/// True when every registry package of `lock` has its `.crate` in `home`: the
/// downloads of a build finished.
pub fn downloads_complete(home: &Path, lock: &CargoLock) -> bool {
    let registries = subdirs(&home.join("registry/cache")).unwrap_or_default();
    lock.registry.iter().all(|(name, version)| {
        registries.iter().any(|r| {
            home.join("registry/cache")
                .join(r)
                .join(format!("{name}-{version}.crate"))
                .is_file()
        })
    })
}

/// A selection of `target_dir` without `incremental/` directories and without the
/// artifacts of `workspace_crates` (package or target names; `-` and `_` are alike).
pub fn cargo_target(target_dir: &Path, workspace_crates: &[&str]) -> io::Result<Selection> {
    cargo_target_with(target_dir, workspace_crates, None)
}

/// [`cargo_target`], also dropping the hashed artifacts (in `.fingerprint/`, `build/`,
/// `deps/`) of crates not in `dependencies`, when given.
pub fn cargo_target_with(
    target_dir: &Path,
    workspace_crates: &[&str],
    dependencies: Option<&[&str]>,
) -> io::Result<Selection> {
    let crates: Vec<String> = workspace_crates.iter().map(|c| normalize(c)).collect();
    let deps: Option<Vec<String>> = dependencies.map(|d| d.iter().map(|c| normalize(c)).collect());
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
                let unused = deps
                    .as_ref()
                    .is_some_and(|deps| is_unused_artifact(&name, deps, allow_lib));
                if unused || is_workspace_artifact(&name, &crates, allow_lib) {
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

/// A hashed artifact (`serde-0123456789abcdef`, `libserde-0123456789abcdef.rlib`) of a
/// crate not in `deps`; files without a hash are never unused.
fn is_unused_artifact(file_name: &str, deps: &[String], allow_lib: bool) -> bool {
    let stem = file_name.split('.').next().unwrap_or(file_name);
    let Some((name, hash)) = stem.rsplit_once('-') else {
        return false;
    };
    if hash.len() != 16 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let name = normalize(name);
    let known = |n: &str| deps.iter().any(|d| d == n);
    !(known(&name) || (allow_lib && name.strip_prefix("lib").is_some_and(known)))
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

    #[test]
    fn unused_artifacts() {
        let deps = vec![normalize("serde-json"), normalize("itoa")];
        for used in [
            "serde_json-0123456789abcdef",
            "libserde_json-0123456789abcdef.rlib",
            "itoa-0123456789abcdef.d",
            ".cargo-lock",
            "rust-bin.wasm",
        ] {
            assert!(!is_unused_artifact(used, &deps, true), "{used}");
        }
        for unused in [
            "rand-0123456789abcdef",
            "librand-0123456789abcdef.rlib",
            "libitoa-0123456789abcdef.rlib",
        ] {
            let allow_lib = !unused.starts_with("libitoa");
            assert!(is_unused_artifact(unused, &deps, allow_lib), "{unused}");
        }
    }

    #[test]
    fn sparse_index_paths() {
        assert_eq!(sparse_index_path("a").unwrap(), Path::new("1/a"));
        assert_eq!(sparse_index_path("ab").unwrap(), Path::new("2/ab"));
        assert_eq!(sparse_index_path("abc").unwrap(), Path::new("3/a/abc"));
        // Not ASCII: no path, and no panic on a byte index inside a character.
        assert_eq!(sparse_index_path("ñandú"), None);
        assert_eq!(sparse_index_path("aé"), None);
        assert_eq!(sparse_index_path(""), None);
        assert_eq!(
            sparse_index_path("Serde_json").unwrap(),
            Path::new("se/rd/serde_json")
        );
    }
}
