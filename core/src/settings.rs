//! CLI flags + environment + `kiln.toml` → one resolved [`Settings`].
//!
//! Precedence, highest first: command-line flags, `KILN_*` variables (clap reads them
//! for the flags that have one), the project's `kiln.toml`, then kiln's defaults.

use std::path::{Path, PathBuf};

use std::os::unix::fs::OpenOptionsExt;

use serde::Deserialize;

use kiln_cli::ToolchainChoice;

use crate::diagnose::Diagnose;
use crate::env::Env;

/// The file at a project's root that overrides what detection guesses.
pub const KILN_TOML: &str = "kiln.toml";

/// `kiln.toml`: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KilnToml {
    /// Skip detection: `rust` or `python`.
    pub language: Option<Language>,
    /// The artifact's name (default: the binary or distribution name).
    pub name: Option<String>,
    /// The artifact's version (default: the package's version).
    pub version: Option<String>,
    #[serde(default)]
    pub rust: RustConfig,
    #[serde(default)]
    pub python: PythonConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
}

/// `[rust]` in `kiln.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RustConfig {
    pub package: Option<String>,
    pub bin: Option<String>,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub no_default_features: bool,
    pub toolchain: Option<ToolchainChoice>,
}

/// `[python]` in `kiln.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PythonConfig {
    /// `package.module:function`, `app.py`, or a package with `__main__.py`.
    pub entry: Option<String>,
}

impl KilnToml {
    /// Reads `dir/kiln.toml`; a missing file is an empty configuration.
    pub fn read(dir: &Path) -> Result<KilnToml, SettingsError> {
        let path = dir.join(KILN_TOML);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(KilnToml::default());
            }
            Err(source) => return Err(SettingsError::Read { path, source }),
        };
        toml::from_str(&text).map_err(|source| SettingsError::Parse { path, source })
    }
}

/// Everything a `kiln build` or `kiln plan` run needs to know, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The project directory as given.
    pub project_dir: PathBuf,
    /// `kiln.toml` merged with the CLI's project selection flags.
    pub config: KilnToml,
    pub package: Option<String>,
    pub bin: Option<String>,
    pub entry: Option<String>,
    pub rust_toolchain: ToolchainChoice,
    /// `--allow-toolchain-path`: a `rust-toolchain.toml` may name a toolchain `path`.
    pub allow_toolchain_path: bool,
    /// Where artifacts are stored (an OCI image layout).
    pub layout: PathBuf,
    /// `NAME[:TAG]` given with `--tag`.
    pub tag: Option<String>,
    /// kiln's data directory: tools and caches.
    pub home: KilnHome,
    /// The environment kiln was started with.
    pub env: Env,
}

/// Which project, and which part of it, to build: what the command line selected.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The project directory.
    pub path: PathBuf,
    pub package: Option<String>,
    pub bin: Option<String>,
    /// Added to `[rust] features`.
    pub features: Vec<String>,
    pub no_default_features: bool,
    pub allow_toolchain_path: bool,
    pub rust_toolchain: Option<ToolchainChoice>,
    pub entry: Option<String>,
    pub layout: Option<PathBuf>,
    pub tag: Option<String>,
}

impl Settings {
    pub fn resolve(args: &Selection, env: Env) -> Result<Settings, SettingsError> {
        let project_dir = args.path.clone();
        let mut config = if project_dir.is_dir() {
            KilnToml::read(&project_dir)?
        } else {
            KilnToml::default()
        };
        config.rust.features.extend(args.features.iter().cloned());
        config.rust.no_default_features |= args.no_default_features;
        let rust_toolchain = args
            .rust_toolchain
            .or(config.rust.toolchain)
            .unwrap_or_default();
        let layout = args
            .layout
            .clone()
            .unwrap_or_else(|| default_layout(&project_dir));
        Ok(Settings {
            project_dir,
            config,
            package: args.package.clone(),
            bin: args.bin.clone(),
            entry: args.entry.clone(),
            rust_toolchain,
            allow_toolchain_path: args.allow_toolchain_path,
            layout,
            tag: args.tag.clone(),
            home: KilnHome::from_env(&env)?,
            env,
        })
    }
}

/// `<project>/.kiln/oci`: the default OCI image layout.
pub fn default_layout(project_dir: &Path) -> PathBuf {
    project_dir.join(".kiln").join("oci")
}

/// kiln's own data directory and what lives in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KilnHome {
    root: PathBuf,
    pip_cache: PathBuf,
    cargo_home: PathBuf,
}

impl KilnHome {
    /// `KILN_HOME`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`; never a shared
    /// directory such as `/tmp/kiln`, which another user could create first. It holds
    /// keys and code kiln maps as executable, so it is created private (0700) and must
    /// belong to this user and be writable by no one else.
    pub fn from_env(env: &Env) -> Result<KilnHome, SettingsError> {
        let root = if let Some(home) = env.path(crate::env::KILN_HOME) {
            home
        } else if let Some(cache) = env.path("XDG_CACHE_HOME") {
            cache.join("kiln")
        } else {
            match env.path("HOME") {
                Some(home) => home.join(".cache").join("kiln"),
                None => return Err(SettingsError::NoHome),
            }
        };
        private_dir(&root)?;
        Ok(KilnHome {
            // `PIP_CACHE_DIR` when the user set one; kiln sets it for every pip it runs.
            pip_cache: env
                .path("PIP_CACHE_DIR")
                .unwrap_or_else(|| root.join("pip")),
            cargo_home: cargo_home(env),
            root,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Provisioned tools (componentize-py's venv).
    pub fn tools(&self) -> PathBuf {
        self.root.join("tools")
    }

    /// The default cache store, and a registry store's local chunk copies.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// The compiled-code cache of `kiln run`.
    pub fn compiled(&self) -> PathBuf {
        self.root.join("compiled")
    }

    /// kiln's keys: the local development signing key, and the key that authenticates
    /// compiled code. Hidden from every build step.
    pub fn signing(&self) -> PathBuf {
        self.root.join("signing")
    }

    /// The key that authenticates the compiled-code cache (32 random bytes, 0600),
    /// created on first use.
    pub fn code_key(&self) -> Result<[u8; 32], SettingsError> {
        let dir = self.signing();
        private_dir(&dir)?;
        let path = dir.join(CODE_KEY_FILE);
        let failed = |source| SettingsError::Key {
            path: path.clone(),
            source,
        };
        if let Ok(bytes) = std::fs::read(&path) {
            return bytes
                .try_into()
                .map_err(|_| failed(std::io::Error::other("it is not 32 bytes long")));
        }
        let key: [u8; 32] = rand::random();
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, &key));
        match created {
            Ok(()) => Ok(key),
            // Another kiln made it first: use that one.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(&path).map_err(failed)?;
                bytes
                    .try_into()
                    .map_err(|_| failed(std::io::Error::other("it is not 32 bytes long")))
            }
            Err(err) => Err(failed(err)),
        }
    }

    /// The directory pip caches in.
    pub fn pip_cache(&self) -> &Path {
        &self.pip_cache
    }

    /// Cargo's home, as cargo finds it (`CARGO_HOME`, else `~/.cargo`).
    pub fn cargo_home(&self) -> &Path {
        &self.cargo_home
    }
}

/// The compiled-code key's file name in [`KilnHome::signing`].
const CODE_KEY_FILE: &str = "compiled-code.key";

/// Creates `dir` (0700) when it is missing; an existing one must belong to this user and
/// be writable by no one else, since kiln keeps keys and executable code in it.
fn private_dir(dir: &Path) -> Result<(), SettingsError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let failed = |source| SettingsError::Home {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(failed(err));
            }
            _ => {}
        }
    }
    let meta = std::fs::metadata(dir).map_err(failed)?;
    let user = nix::unistd::getuid().as_raw();
    if meta.uid() != user || meta.permissions().mode() & 0o022 != 0 {
        return Err(SettingsError::NotPrivate {
            path: dir.to_owned(),
            owner: meta.uid(),
            mode: meta.permissions().mode() & 0o7777,
            user,
        });
    }
    Ok(())
}

/// Cargo's home as the `home` crate finds it, from `env` rather than the process.
fn cargo_home(env: &Env) -> PathBuf {
    struct Vars<'a>(&'a Env);
    impl home::env::Env for Vars<'_> {
        fn home_dir(&self) -> Option<PathBuf> {
            self.0.path("HOME")
        }
        fn current_dir(&self) -> std::io::Result<PathBuf> {
            std::env::current_dir()
        }
        fn var_os(&self, key: &str) -> Option<std::ffi::OsString> {
            self.0.get(key).map(Into::into)
        }
    }
    home::env::cargo_home_with_env(&Vars(env))
        .unwrap_or_else(|_| std::env::temp_dir().join(".cargo"))
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("kiln has no home directory: neither KILN_HOME nor HOME is set")]
    NoHome,
    #[error("Failed to create kiln's home `{}`", path.display())]
    Home {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "kiln's home `{}` is not private: owned by uid {owner} with mode {mode:o}, and kiln runs as uid {user}",
        path.display()
    )]
    NotPrivate {
        path: PathBuf,
        owner: u32,
        mode: u32,
        user: u32,
    },
    #[error("Failed to read or create the compiled-code key `{}`", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to parse `{}`", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}

impl Diagnose for SettingsError {
    fn hint(&self) -> Option<String> {
        match self {
            SettingsError::NoHome => Some(format!(
                "set {} to a directory of this user's (kiln keeps keys and compiled code there)",
                crate::env::KILN_HOME
            )),
            SettingsError::Home { .. } | SettingsError::Key { .. } => Some(format!(
                "check the directory's permissions, or point {} elsewhere",
                crate::env::KILN_HOME
            )),
            SettingsError::NotPrivate { path, .. } => Some(format!(
                "another user could plant keys or code there: `chown $(id -u) {0}` and \
                 `chmod go-w {0}`, or point {1} at a directory of your own",
                path.display(),
                crate::env::KILN_HOME
            )),
            SettingsError::Read { .. } => Some("check the file's permissions".into()),
            SettingsError::Parse { .. } => Some(
                "kiln.toml takes `language`, `name`, `version`, `[rust]` (package, bin, features, \
                 no-default-features, toolchain) and `[python]` (entry); see the README"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kiln_toml() {
        let dir = tempfile::tempdir().unwrap();
        assert!(KilnToml::read(dir.path()).unwrap().language.is_none());
        std::fs::write(
            dir.path().join(KILN_TOML),
            "language = \"rust\"\n[rust]\nno-default-features = true\nfeatures = [\"a\"]\ntoolchain = \"build-std\"\n",
        )
        .unwrap();
        let config = KilnToml::read(dir.path()).unwrap();
        assert_eq!(config.language, Some(Language::Rust));
        assert!(config.rust.no_default_features);
        assert_eq!(config.rust.features, ["a"]);
        assert_eq!(config.rust.toolchain, Some(ToolchainChoice::BuildStd));
    }

    #[test]
    fn kiln_home_is_private_and_never_a_shared_default() {
        use std::os::unix::fs::PermissionsExt;
        // No KILN_HOME and no HOME: an error, not /tmp/kiln.
        assert!(matches!(
            KilnHome::from_env(&Env::new()),
            Err(SettingsError::NoHome)
        ));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("kiln");
        let env = Env::new().with(crate::env::KILN_HOME, &root);
        let home = KilnHome::from_env(&env).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(home.root()), 0o700);
        // The compiled-code key: created once, 0600, the same on every read.
        let key = home.code_key().unwrap();
        assert_eq!(home.code_key().unwrap(), key);
        assert_eq!(mode(&home.signing().join(CODE_KEY_FILE)), 0o600);
        assert_eq!(mode(&home.signing()), 0o700);
        // A home others can write to is refused, with what to do.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = KilnHome::from_env(&env).unwrap_err();
        assert!(matches!(err, SettingsError::NotPrivate { .. }), "{err}");
        assert!(err.hint().unwrap().contains("chmod go-w"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KILN_TOML), "[rust]\nfeature = [\"a\"]\n").unwrap();
        let err = KilnToml::read(dir.path()).unwrap_err();
        assert!(matches!(err, SettingsError::Parse { .. }));
        assert!(
            std::error::Error::source(&err)
                .unwrap()
                .to_string()
                .contains("unknown field `feature`")
        );
    }
}
