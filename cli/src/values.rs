//! The value types the command line's flags parse into. Plain data: kiln's library uses
//! them as they are, and only this crate knows they come from clap.

use std::path::PathBuf;
use std::str::FromStr;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Which Rust toolchain builds for `wasm32-wasip1` (`--rust-toolchain`, `[rust]
/// toolchain` in `kiln.toml`, `KILN_RUST_TOOLCHAIN`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ToolchainChoice {
    /// The first that works, in the documented order.
    #[default]
    Auto,
    /// Only rustc with the target installed, or rustup adding it.
    Rustup,
    /// Only std built from source with a wasi-libc sysroot.
    BuildStd,
}

/// The CI systems kiln posts summaries to (`--platform`, `KILN_PLATFORM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Platform {
    /// GitHub Actions: step summary, outputs, pull request comment.
    #[value(name = "github")]
    GitHub,
    /// GitLab CI/CD: dotenv report, merge request note.
    #[value(name = "gitlab")]
    GitLab,
    /// Tekton: result files.
    Tekton,
    /// Jenkins: summary files beside the workspace.
    Jenkins,
    /// Anywhere else: the summary on stderr only.
    Local,
}

impl Platform {
    /// The platform a `KILN_PLATFORM` value names, in any case.
    pub fn named(name: &str) -> Option<Platform> {
        <Platform as ValueEnum>::from_str(name, true).ok()
    }

    /// As shown to people.
    pub fn name(self) -> &'static str {
        match self {
            Platform::GitHub => "GitHub Actions",
            Platform::GitLab => "GitLab CI",
            Platform::Tekton => "Tekton",
            Platform::Jenkins => "Jenkins",
            Platform::Local => "local",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A host directory made visible to the guest, from `--dir HOST::GUEST` or `--dir HOST`.
///
/// The guest may read and write under it, and nothing outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    /// `:rw`: the guest may write; read-only otherwise.
    pub writable: bool,
}

impl FromStr for DirGrant {
    type Err = GrantParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (grant, writable) = match (s.strip_suffix(":rw"), s.strip_suffix(":ro")) {
            (Some(grant), _) => (grant, true),
            (None, Some(grant)) => (grant, false),
            (None, None) => (s, false),
        };
        let (host, guest) = grant.split_once("::").unwrap_or((grant, grant));
        if host.is_empty() || guest.is_empty() {
            return Err(GrantParseError::Dir { arg: s.to_owned() });
        }
        Ok(Self {
            host: PathBuf::from(host),
            guest: guest.to_owned(),
            writable,
        })
    }
}

/// An environment variable given to the guest, from `--env K=V`, or `--env K` for the
/// value `K` has in kiln's own environment (`value` is `None` until it is looked up
/// there, by whoever holds kiln's environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: Option<String>,
}

impl FromStr for EnvVar {
    type Err = GrantParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) = match s.split_once('=') {
            Some((key, value)) => (key, Some(value.to_owned())),
            None => (s, None),
        };
        if key.is_empty() {
            return Err(GrantParseError::EnvKey { arg: s.to_owned() });
        }
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }
}

/// A `--dir` or `--env` argument that cannot be understood.
#[derive(Debug, thiserror::Error)]
pub enum GrantParseError {
    #[error("Invalid directory grant `{arg}`: expected `HOST::GUEST` or `HOST`")]
    Dir { arg: String },
    #[error("Invalid environment variable `{arg}`: expected `KEY=VALUE` or `KEY`")]
    EnvKey { arg: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse() {
        assert_eq!(
            "./data::/data".parse::<DirGrant>().unwrap(),
            DirGrant {
                host: "./data".into(),
                guest: "/data".into(),
                writable: false,
            }
        );
        let rw = "./out::/out:rw".parse::<DirGrant>().unwrap();
        assert_eq!((rw.guest.as_str(), rw.writable), ("/out", true));
        let ro = "/srv:ro".parse::<DirGrant>().unwrap();
        assert_eq!(
            (ro.host.to_str(), ro.guest.as_str(), ro.writable),
            (Some("/srv"), "/srv", false)
        );
        assert!("::/x".parse::<DirGrant>().is_err());
        assert_eq!(
            "K=a=b".parse::<EnvVar>().unwrap(),
            EnvVar {
                key: "K".into(),
                value: Some("a=b".into())
            }
        );
        assert_eq!("K".parse::<EnvVar>().unwrap().value, None);
        assert!("=v".parse::<EnvVar>().is_err());
    }
}
