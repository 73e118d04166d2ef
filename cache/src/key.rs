//! Cache keys: what a key is computed from ([`KeyInputs`]), the key itself
//! (`SCOPE-PREFIX-KIND-OS-ARCH-TOOLCHAINS-LOCKHASH`), its restore prefix for partial hits,
//! and the trust [`Scope`] it belongs to.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The longest `--cache-prefix` kept in a key.
pub const MAX_PREFIX: usize = 40;

/// How much of a scope's name is kept, readable, in its tag.
const SCOPE_READABLE: usize = 16;

/// Whose caches a build reads and writes, as actions/cache scopes by branch: a build
/// saves only under its own scope, and restores from its own, then from the scopes it
/// trusts (a pull request: its base branch's, then the default branch's). A pull
/// request's save is therefore never what a protected branch restores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The scope this build writes (`refs/heads/main`, `refs/pull/12`, `gitlab-protected`).
    pub name: String,
    /// The scopes it may also restore from, in order of preference.
    pub reads: Vec<String>,
}

impl Scope {
    /// A scope that reads only itself.
    pub fn new(name: impl Into<String>) -> Scope {
        Scope {
            name: name.into(),
            reads: Vec::new(),
        }
    }

    /// Also restores from `other` (after the ones before), unless it is this scope.
    pub fn reading(mut self, other: impl Into<String>) -> Scope {
        let other = other.into();
        if other != self.name && !self.reads.contains(&other) {
            self.reads.push(other);
        }
        self
    }
}

impl Default for Scope {
    /// A machine with no CI: every build is its owner's.
    fn default() -> Scope {
        Scope::new("local")
    }
}

/// A scope as it appears in keys: a readable part (`[A-Za-z0-9-]`, at most
/// [`SCOPE_READABLE`] characters) and `.`, then 12 hex digits of the name's SHA-256.
/// The readable part never holds a `.`, so two scopes' tags are never prefixes of one
/// another, however the names are chosen: a key starts with a scope's tag only if it
/// was saved in that scope.
fn scope_tag(name: &str) -> String {
    let short = name
        .strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("refs/"))
        .unwrap_or(name);
    let readable: String = short
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .skip_while(|&c| c == '-')
        .take(SCOPE_READABLE)
        .collect();
    // A tag starts with a letter or digit.
    let readable = if readable.is_empty() {
        "scope".into()
    } else {
        readable
    };
    format!(
        "{readable}.{}",
        hex_prefix(&Sha256::digest(name.as_bytes()), 6)
    )
}

/// Which tool's cache a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKind {
    /// pip's HTTP/wheel cache and kiln's provisioned tools.
    Pip,
    /// cargo's registry index and archives, git checkouts, and the wasm target dir.
    Cargo,
}

impl CacheKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Pip => "pip",
            CacheKind::Cargo => "cargo",
        }
    }

    /// The lockfiles whose content decides an exact hit, relative to the project root.
    pub fn lockfiles(self) -> &'static [&'static str] {
        match self {
            CacheKind::Pip => &[
                "requirements.txt",
                "requirements-dev.txt",
                "poetry.lock",
                "uv.lock",
                "pyproject.toml",
            ],
            CacheKind::Cargo => &[
                "Cargo.lock",
                "Cargo.toml",
                "rust-toolchain.toml",
                "rust-toolchain",
            ],
        }
    }
}

/// What a key is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInputs {
    /// A user-chosen namespace (default `kiln`), e.g. per job.
    pub prefix: String,
    /// Whose caches these are.
    pub scope: Scope,
    pub kind: CacheKind,
    /// Toolchain versions that make cached artifacts incompatible when they change
    /// (`rustc 1.95.0`, `componentize-py 0.25.1`).
    pub toolchains: Vec<String>,
    /// The project directory; its lockfiles are hashed.
    pub project: PathBuf,
}

/// A computed cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The scope's tag, which the key starts with.
    scope: String,
    /// The tags of the other scopes it restores from.
    reads: Vec<String>,
    /// `PREFIX-KIND-OS-ARCH-TOOLCHAINS`.
    rest: String,
    lock_hash: String,
}

impl CacheKey {
    /// Computes the key; missing lockfiles count as absent (their absence is hashed too).
    pub fn compute(inputs: &KeyInputs) -> std::io::Result<CacheKey> {
        let toolchains = short_hash(inputs.toolchains.join("\n").as_bytes());
        // Keys become OCI tags (at most 128 characters): the prefix is kept short.
        let prefix: String = sanitize(&inputs.prefix).chars().take(MAX_PREFIX).collect();
        let rest = format!(
            "{}-{}-{}-{}-{}",
            prefix,
            inputs.kind.as_str(),
            std::env::consts::OS,
            std::env::consts::ARCH,
            toolchains
        );
        Ok(CacheKey {
            scope: scope_tag(&inputs.scope.name),
            reads: inputs.scope.reads.iter().map(|s| scope_tag(s)).collect(),
            rest,
            lock_hash: lockfile_hash(&inputs.project, inputs.kind.lockfiles())?,
        })
    }

    /// Everything but the lockfile hash: entries of this scope sharing it are partial
    /// hits.
    pub fn restore_prefix(&self) -> String {
        format!("{}-{}", self.scope, self.rest)
    }

    /// The exact key and restore prefix in each scope this key restores from: its own
    /// first, then the ones it trusts, in order.
    pub fn read_order(&self) -> Vec<(String, String)> {
        std::iter::once(&self.scope)
            .chain(&self.reads)
            .map(|scope| {
                let prefix = format!("{scope}-{}", self.rest);
                (format!("{prefix}-{}", self.lock_hash), prefix)
            })
            .collect()
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.scope, self.rest, self.lock_hash)
    }
}

/// Hashes each lockfile's name and content (or its absence), in a fixed order.
fn lockfile_hash(project: &Path, files: &[&str]) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    for name in files {
        hasher.update(name.as_bytes());
        match std::fs::read(project.join(name)) {
            Ok(bytes) => {
                hasher.update([1]);
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => hasher.update([0]),
            Err(err) => return Err(err),
        }
    }
    Ok(hex_prefix(&hasher.finalize(), 8))
}

fn short_hash(bytes: &[u8]) -> String {
    hex_prefix(&Sha256::digest(bytes), 4)
}

/// The hex of the first `bytes` bytes of a SHA-256 digest (32 bytes: never fewer).
fn hex_prefix(digest: &[u8], bytes: usize) -> String {
    hex::encode(digest).chars().take(2 * bytes).collect()
}

/// Keys travel through CI caches and OCI tags: `[A-Za-z0-9_.-]` only.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(dir: &Path) -> KeyInputs {
        KeyInputs {
            prefix: "job/1".into(),
            scope: Scope::new("refs/heads/main"),
            kind: CacheKind::Cargo,
            toolchains: vec!["rustc 1.95.0".into()],
            project: dir.to_path_buf(),
        }
    }

    #[test]
    fn lockfile_change_keeps_the_restore_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "a").unwrap();
        let before = CacheKey::compute(&inputs(dir.path())).unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "b").unwrap();
        let after = CacheKey::compute(&inputs(dir.path())).unwrap();
        assert_ne!(before, after);
        assert_eq!(before.restore_prefix(), after.restore_prefix());
        assert!(
            before.to_string().starts_with("main.") && before.to_string().contains("-job_1-cargo-"),
            "{before}"
        );
    }

    #[test]
    fn toolchain_and_kind_change_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let base = CacheKey::compute(&inputs(dir.path())).unwrap();
        let mut other = inputs(dir.path());
        other.toolchains = vec!["rustc 1.96.0".into()];
        assert_ne!(
            base.restore_prefix(),
            CacheKey::compute(&other).unwrap().restore_prefix()
        );
        let mut pip = inputs(dir.path());
        pip.kind = CacheKind::Pip;
        assert_ne!(
            base.restore_prefix(),
            CacheKey::compute(&pip).unwrap().restore_prefix()
        );
    }

    #[test]
    fn scopes_never_share_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let key = |scope: &str| {
            let mut i = inputs(dir.path());
            i.scope = Scope::new(scope);
            CacheKey::compute(&i).unwrap()
        };
        let main = key("refs/heads/main");
        // Names chosen to look like main's tag, or to hold its whole prefix.
        for other in [
            "main",
            "refs/heads/main.",
            "refs/pull/1",
            &main.restore_prefix(),
            &format!("refs/heads/{}", main.restore_prefix()),
        ] {
            let other = key(other);
            assert!(
                !other.to_string().starts_with(&main.restore_prefix()),
                "{other} is in main's scope"
            );
            assert!(!main.to_string().starts_with(&other.restore_prefix()));
        }
    }

    #[test]
    fn a_key_reads_its_own_scope_first_then_the_trusted_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut pr = inputs(dir.path());
        pr.scope = Scope::new("refs/pull/7")
            .reading("refs/heads/main")
            .reading("refs/pull/7")
            .reading("refs/heads/main");
        let key = CacheKey::compute(&pr).unwrap();
        let order = key.read_order();
        assert_eq!(order.len(), 2, "{order:?}");
        assert_eq!(order[0].0, key.to_string());
        assert_eq!(order[0].1, key.restore_prefix());
        assert!(order[1].0.starts_with("main."), "{order:?}");
    }

    #[test]
    fn the_longest_key_is_a_valid_tag() {
        let dir = tempfile::tempdir().unwrap();
        let mut long = inputs(dir.path());
        long.prefix = "p".repeat(500);
        long.scope = Scope::new(format!("/{}", "s".repeat(500)));
        let key = CacheKey::compute(&long).unwrap().to_string();
        // The OCI distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
        assert!(key.len() <= 128, "{} characters: {key}", key.len());
        assert!(key.starts_with('s'), "{key}");
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        );
    }

    #[test]
    fn moving_content_between_lockfiles_changes_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "ab").unwrap();
        let one = CacheKey::compute(&inputs(dir.path())).unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "a").unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "b").unwrap();
        assert_ne!(one, CacheKey::compute(&inputs(dir.path())).unwrap());
    }
}
