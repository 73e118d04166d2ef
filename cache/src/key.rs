//! Cache keys: what a key is computed from ([`KeyInputs`]), the key itself
//! (`PREFIX-KIND-OS-ARCH-TOOLCHAINS-LOCKHASH`) and its restore prefix for partial hits.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The longest `--cache-prefix` kept in a key.
pub const MAX_PREFIX: usize = 48;

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
    restore_prefix: String,
    lock_hash: String,
}

impl CacheKey {
    /// Computes the key; missing lockfiles count as absent (their absence is hashed too).
    pub fn compute(inputs: &KeyInputs) -> std::io::Result<CacheKey> {
        let toolchains = short_hash(inputs.toolchains.join("\n").as_bytes());
        // Keys become OCI tags (at most 128 characters): the prefix is kept short.
        let prefix: String = sanitize(&inputs.prefix).chars().take(MAX_PREFIX).collect();
        let restore_prefix = format!(
            "{}-{}-{}-{}-{}",
            prefix,
            inputs.kind.as_str(),
            std::env::consts::OS,
            std::env::consts::ARCH,
            toolchains
        );
        Ok(CacheKey {
            restore_prefix,
            lock_hash: lockfile_hash(&inputs.project, inputs.kind.lockfiles())?,
        })
    }

    /// Everything but the lockfile hash: entries sharing it are partial hits.
    pub fn restore_prefix(&self) -> &str {
        &self.restore_prefix
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.restore_prefix, self.lock_hash)
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
    Ok(hex::encode(&hasher.finalize()[..8]))
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..4])
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
        assert!(before.to_string().starts_with("job_1-cargo-"), "{before}");
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
    fn moving_content_between_lockfiles_changes_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "ab").unwrap();
        let one = CacheKey::compute(&inputs(dir.path())).unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "a").unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "b").unwrap();
        assert_ne!(one, CacheKey::compute(&inputs(dir.path())).unwrap());
    }
}
