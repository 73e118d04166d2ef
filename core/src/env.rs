//! The one environment reader: a snapshot of the variables kiln was started with.
//!
//! Nothing in kiln reads the process environment but [`Env::from_process`], called once
//! by the binary; everything else is handed an [`Env`], so tests give each case exactly
//! the variables it needs. The names kiln reads are documented in [`kiln_cli::env`] and
//! re-exported here.
//!
//! [`Env::for_subprocess`] is the allowlist every child process starts from (see
//! [`crate::process`]): what toolchains need to find themselves, their caches, proxies and
//! certificates, and nothing else. Tokens, passwords and keys are never on it.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use kiln_cli::env::*;

/// Variables a subprocess inherits, by exact name.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "TZ",
    "TERM",
    "TMPDIR",
    SOURCE_DATE_EPOCH,
    // TLS roots and proxies, which downloads need.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    // The Rust toolchain and its C compilers.
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_WRAPPER",
    "CC",
    "CXX",
    "AR",
    "CFLAGS",
    "CXXFLAGS",
    "WASI_SDK_PATH",
    "RUSTC",
    "LD_LIBRARY_PATH",
    // Git dependencies over ssh, and git's own configuration (safe.directory on CI).
    "SSH_AUTH_SOCK",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    // Certificates and login files Python's HTTP clients read.
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NETRC",
    "PYENV_VERSION",
    "PYENV_ROOT",
];

/// Variables a subprocess inherits, by prefix: cargo's, rustup's and pip's settings, the
/// locale, and the `cc` crate's per-target variables. A name with a credential word in it
/// is dropped even when its prefix matches (`CARGO_REGISTRY_TOKEN`).
const INHERITED_PREFIXES: &[&str] = &[
    "LC_",
    "CARGO_",
    "RUSTUP_",
    "PIP_",
    "CC_",
    "CXX_",
    "AR_",
    "CFLAGS_",
    "CXXFLAGS_",
    "SCCACHE_",
];

/// Words (between `_`s) that mark a variable as a credential, whatever its prefix.
const CREDENTIAL_WORDS: &[&str] = &[
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "CREDENTIAL",
    "CREDENTIALS",
    "KEY",
];

/// A snapshot of environment variables. Empty values count as unset. Its `Debug` shows
/// names only: the environment holds tokens.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Env {
    /// No variables at all.
    pub const fn new() -> Env {
        Env {
            vars: BTreeMap::new(),
        }
    }

    /// The variables of this process (those that are valid UTF-8).
    pub fn from_process() -> Env {
        let mut env = Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        };
        // A runner without `HOME` still has a home in the password database.
        if env.get("HOME").is_none()
            && let Some(home) =
                std::env::home_dir().and_then(|h| h.into_os_string().into_string().ok())
        {
            env.set("HOME", home);
        }
        env
    }

    /// Every variable, unfiltered: for programs that exist to read credentials (Docker
    /// credential helpers need their cloud's `AWS_*` or `GOOGLE_*`).
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A variable's value, owned.
    pub fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// A path-valued variable.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }

    /// A boolean variable: set to anything but `0`, `false`, `no` or `off`.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            )
        })
    }

    /// This environment with one more variable (a path is taken as its text).
    pub fn with(mut self, name: impl Into<String>, value: impl AsRef<std::ffi::OsStr>) -> Env {
        self.set(name, value.as_ref().to_string_lossy());
        self
    }

    /// Sets a variable (tests, and values kiln derives for itself).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// The variables a subprocess starts with: the allowlist above, applied.
    pub fn for_subprocess(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .filter(|(name, _)| inherited(name))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn inherited(name: &str) -> bool {
    if INHERITED.contains(&name) {
        return true;
    }
    INHERITED_PREFIXES.iter().any(|p| name.starts_with(p))
        && !name
            .to_ascii_uppercase()
            .split('_')
            .any(|word| CREDENTIAL_WORDS.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subprocesses_get_the_allowlist_only() {
        let env = Env::from_pairs([
            ("PATH", "/bin"),
            ("HOME", "/home/u"),
            ("CARGO_HOME", "/c"),
            ("CARGO_NET_OFFLINE", "true"),
            ("CARGO_REGISTRY_TOKEN", "t0ken"),
            ("CARGO_REGISTRIES_ACME_TOKEN", "t0ken"),
            ("PIP_KEYRING_PROVIDER", "import"),
            ("PIP_INDEX_KEY", "k"),
            ("PIP_INDEX_URL", "https://pypi.example"),
            ("LC_ALL", "C.UTF-8"),
            ("CC_wasm32_wasip1", "clang"),
            (KILN_REGISTRY_PASSWORD, "hunter2"),
            (KILN_SIGNING_KEY, "-----BEGIN"),
            (SIGSTORE_ID_TOKEN, "eyJ"),
            (ACTIONS_ID_TOKEN_REQUEST_TOKEN, "eyJ"),
            (ACTIONS_ID_TOKEN_REQUEST_URL, "https://x"),
            ("GITHUB_TOKEN", "ghs"),
            ("CI_JOB_TOKEN", "glcbt"),
            ("CI_REGISTRY_PASSWORD", "glcbt"),
            ("DOCKER_CONFIG", "/d"),
            ("GITHUB_ENV", "/e"),
            ("GITHUB_PATH", "/p"),
            ("AWS_SECRET_ACCESS_KEY", "a"),
            ("MY_JOB_SECRET", "s"),
        ]);
        let got: Vec<&str> = env.for_subprocess().map(|(k, _)| k).collect();
        assert_eq!(
            got,
            [
                "CARGO_HOME",
                "CARGO_NET_OFFLINE",
                "CC_wasm32_wasip1",
                "HOME",
                "LC_ALL",
                "PATH",
                "PIP_INDEX_URL",
                "PIP_KEYRING_PROVIDER",
            ]
        );
    }

    #[test]
    fn empty_is_unset_and_debug_hides_values() {
        let env = Env::from_pairs([("A", ""), ("B", "secret")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("secret"));
        assert!(!format!("{env:?}").contains("secret"));
    }
}
