//! Where kiln's signing and verification keys come from.
//!
//! 1. Signing: `--key` (a path), else `KILN_SIGNING_KEY` (a path, or the PEM itself as CI
//!    secrets usually hold it), decrypted with `KILN_SIGNING_PASSWORD` (or cosign's
//!    `COSIGN_PASSWORD`).
//! 2. Without either, kiln's local development key in `KILN_HOME/signing/`, made on first
//!    use with an empty password, as a laptop or a one-off pipeline needs no setup to get
//!    a signed, verifiable artifact. Under CI that key does not outlive the runner: kiln
//!    says so.
//! 3. Verification: `--key` (a path), else `KILN_VERIFY_KEY` (path or PEM), else the
//!    local development public key.
//!
//! Keyless signing ([`choose`]) comes between 1 and 2: without a key, when the CI offers an
//! OIDC identity token (`SIGSTORE_ID_TOKEN`, or GitHub Actions' token endpoint), kiln signs
//! with Fulcio and Rekor instead of the local development key.
//!
//! Key material and passwords are [`SecretString`]s and are never printed.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::keyless::{DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL, KeylessOptions, TokenSource};
use super::keys::{self, KeyError, PublicKey, SigningKey};
use crate::diagnose::{Blame, Diagnose};

/// The private key file name `kiln keygen` and `cosign generate-key-pair` write.
pub const PRIVATE_KEY_FILE: &str = "cosign.key";
/// The public key file name `kiln keygen` and `cosign generate-key-pair` write.
pub const PUBLIC_KEY_FILE: &str = "cosign.pub";

/// Which key signed, as the summary and the logs name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `--key PATH` or `KILN_SIGNING_KEY=PATH`.
    File(PathBuf),
    /// `KILN_SIGNING_KEY` holding the PEM itself.
    Env,
    /// kiln's local development key.
    Local(PathBuf),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::File(path) => write!(f, "key {}", path.display()),
            KeyOrigin::Env => write!(f, "key from ${}", crate::env::KILN_SIGNING_KEY),
            KeyOrigin::Local(path) => write!(f, "local development key {}", path.display()),
        }
    }
}

/// A private key ready to sign, and where it came from.
#[derive(Debug)]
pub struct Signer {
    pub key: SigningKey,
    pub public: PublicKey,
    pub origin: KeyOrigin,
}

/// Whether to sign keylessly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeylessMode {
    /// When no key is given and the CI offers an OIDC token.
    #[default]
    Auto,
    /// Always: fail without an OIDC token (`--keyless`).
    Always,
    /// Never: sign with a key pair (`--no-keyless`).
    Never,
}

/// How `kiln build` signs: a key, or keyless with which Fulcio and Rekor.
#[derive(Debug, Clone, Default)]
pub struct SigningOptions {
    /// `--key`.
    pub key: Option<PathBuf>,
    pub keyless: KeylessMode,
    /// `--fulcio-url` [default: the public-good Fulcio].
    pub fulcio_url: Option<String>,
    /// `--rekor-url` [default: the public-good Rekor].
    pub rekor_url: Option<String>,
}

/// How a build will sign, decided before it starts.
#[derive(Debug)]
pub enum Choice {
    /// A key pair, read (and its password checked) already.
    Key(Signer),
    /// Keyless: the certificate is requested just before signing, as it lives minutes.
    Keyless(KeylessOptions),
}

/// `--key` or `KILN_SIGNING_KEY` sign with that key pair; else, when the CI offers an OIDC
/// token (and `--no-keyless` is not given), keyless; else kiln's local development key.
pub fn choose(options: &SigningOptions, keys: &Keys<'_>) -> Result<Choice, KeyringError> {
    let has_key = options.key.is_some() || keys.env.get(crate::env::KILN_SIGNING_KEY).is_some();
    if !has_key && options.keyless != KeylessMode::Never {
        match TokenSource::detect(keys.env) {
            Some(token) => {
                return Ok(Choice::Keyless(KeylessOptions {
                    token,
                    fulcio_url: options
                        .fulcio_url
                        .clone()
                        .unwrap_or_else(|| DEFAULT_FULCIO_URL.to_string()),
                    rekor_url: options
                        .rekor_url
                        .clone()
                        .unwrap_or_else(|| DEFAULT_REKOR_URL.to_string()),
                }));
            }
            None if options.keyless == KeylessMode::Always => {
                return Err(KeyringError::NoToken);
            }
            None => {}
        }
    }
    if has_key && options.keyless == KeylessMode::Always {
        return Err(KeyringError::KeyAndKeyless);
    }
    signer(options.key.as_deref(), keys).map(Choice::Key)
}

/// Where keys are found besides `--key`: kiln's environment (`KILN_SIGNING_KEY`,
/// `KILN_VERIFY_KEY`, passwords) and the directory of its local development key pair.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    pub env: &'a crate::env::Env,
    pub local_dir: &'a Path,
}

/// The signing key `--key` or the environment names, else the local development key
/// (made if missing).
pub fn signer(key: Option<&Path>, keys: &Keys<'_>) -> Result<Signer, KeyringError> {
    let password = password(keys.env);
    let (pem, origin) = match key {
        // The key itself on the command line is in every process listing, and would be
        // echoed as a path: refused without repeating it.
        Some(path) if looks_like_pem(&path.to_string_lossy()) => {
            return Err(KeyringError::KeyInArguments);
        }
        Some(path) => (read(path)?, KeyOrigin::File(path.to_path_buf())),
        None => match keys.env.var(crate::env::KILN_SIGNING_KEY) {
            Some(value) if looks_like_pem(&value) => (SecretString::from(value), KeyOrigin::Env),
            // Neither a PEM nor a file: perhaps a key in another encoding, which must not
            // be echoed as if it were a path.
            Some(value) if !Path::new(&value).is_file() => {
                return Err(KeyringError::NotAKey {
                    variable: crate::env::KILN_SIGNING_KEY,
                });
            }
            Some(path) => {
                let path = PathBuf::from(path);
                (read(&path)?, KeyOrigin::File(path))
            }
            None => {
                let dir = keys.local_dir;
                ensure_local_pair(dir)?;
                let path = dir.join(PRIVATE_KEY_FILE);
                // The local key is made with an empty password; a password meant for
                // another key does not apply to it.
                let key = keys::load_private(read(&path)?.expose_secret(), &SecretString::from(""))
                    .map_err(|source| KeyringError::Key {
                        origin: KeyOrigin::Local(path.clone()),
                        source,
                    })?;
                let public = key.public_key().map_err(|source| KeyringError::Key {
                    origin: KeyOrigin::Local(path.clone()),
                    source,
                })?;
                return Ok(Signer {
                    key,
                    public,
                    origin: KeyOrigin::Local(path),
                });
            }
        },
    };
    let key =
        keys::load_private(pem.expose_secret(), &password).map_err(|source| KeyringError::Key {
            origin: origin.clone(),
            source,
        })?;
    let public = key.public_key().map_err(|source| KeyringError::Key {
        origin: origin.clone(),
        source,
    })?;
    Ok(Signer {
        key,
        public,
        origin,
    })
}

/// The public key `--key` or `KILN_VERIFY_KEY` names, else the local development key's.
pub fn verifier(
    key: Option<&Path>,
    keys: &Keys<'_>,
) -> Result<(PublicKey, KeyOrigin), KeyringError> {
    let (pem, origin) = match key {
        Some(path) => (read(path)?, KeyOrigin::File(path.to_path_buf())),
        None => match keys.env.var(crate::env::KILN_VERIFY_KEY) {
            Some(value) if looks_like_pem(&value) => (SecretString::from(value), KeyOrigin::Env),
            Some(path) => {
                let path = PathBuf::from(path);
                (read(&path)?, KeyOrigin::File(path))
            }
            None => {
                let path = keys.local_dir.join(PUBLIC_KEY_FILE);
                if !path.is_file() {
                    return Err(KeyringError::NoVerifyKey);
                }
                (read(&path)?, KeyOrigin::Local(path))
            }
        },
    };
    let public = keys::load_public(pem.expose_secret()).map_err(|source| KeyringError::Key {
        origin: origin.clone(),
        source,
    })?;
    Ok((public, origin))
}

/// Writes a new key pair as `<prefix>.key` and `<prefix>.pub`, refusing to overwrite.
pub fn write_pair(dir: &Path, password: &SecretString) -> Result<(PathBuf, PathBuf), KeyringError> {
    let private = dir.join(PRIVATE_KEY_FILE);
    let public = dir.join(PUBLIC_KEY_FILE);
    for path in [&private, &public] {
        if path.exists() {
            return Err(KeyringError::Exists { path: path.clone() });
        }
    }
    let (private_pem, public_pem) =
        keys::generate(password).map_err(|source| KeyringError::Key {
            origin: KeyOrigin::File(private.clone()),
            source,
        })?;
    std::fs::create_dir_all(dir).map_err(|source| KeyringError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_new(&private, private_pem.as_bytes(), true)?;
    write_new(&public, public_pem.as_bytes(), false)?;
    Ok((private, public))
}

/// The password for a private key: `KILN_SIGNING_PASSWORD`, else `COSIGN_PASSWORD`, else
/// empty.
pub fn password(env: &crate::env::Env) -> SecretString {
    env.var(crate::env::KILN_SIGNING_PASSWORD)
        .or_else(|| env.var(crate::env::COSIGN_PASSWORD))
        .map(SecretString::from)
        .unwrap_or_else(|| SecretString::from(""))
}

/// Makes the local development pair unless it exists. Two kiln processes may race: the
/// pair is made in a temporary directory and moved into place whole.
fn ensure_local_pair(dir: &Path) -> Result<(), KeyringError> {
    if dir.join(PRIVATE_KEY_FILE).is_file() && dir.join(PUBLIC_KEY_FILE).is_file() {
        return Ok(());
    }
    let parent = dir.parent().expect("the signing dir has a parent");
    std::fs::create_dir_all(parent).map_err(|source| KeyringError::Io {
        path: parent.to_path_buf(),
        source,
    })?;
    let tmp = tempfile::tempdir_in(parent).map_err(|source| KeyringError::Io {
        path: parent.to_path_buf(),
        source,
    })?;
    write_pair(tmp.path(), &SecretString::from(""))?;
    // Durable before it is in place: a crash never leaves an empty key file behind.
    for file in [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE] {
        let path = tmp.path().join(file);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|source| KeyringError::Io { path, source })?;
    }
    match std::fs::rename(tmp.path(), dir) {
        Ok(()) => {
            // The directory is now `dir`; nothing is left to clean up.
            let _ = tmp.keep();
            kiln_cache::fsutil::sync_dir(parent).map_err(|source| KeyringError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
            tracing::info!(dir = %dir.display(), "made kiln's local development signing key");
            Ok(())
        }
        // Another process won the race (or an empty dir was there): use theirs.
        Err(_) if dir.join(PRIVATE_KEY_FILE).is_file() => Ok(()),
        Err(source) => Err(KeyringError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn looks_like_pem(value: &str) -> bool {
    value.trim_start().starts_with("-----BEGIN")
}

fn read(path: &Path) -> Result<SecretString, KeyringError> {
    std::fs::read_to_string(path)
        .map(SecretString::from)
        .map_err(|source| KeyringError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes a new key file whole, never over an existing one: unlike a replacement (kiln's
/// one atomic write, `kiln_cache::fsutil::write_atomic`), two `kiln keygen`s racing must
/// not leave one's private key under the other's public key.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), KeyringError> {
    use std::io::Write as _;
    let io = |source| KeyringError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().expect("a key file has a parent");
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    #[cfg(unix)]
    if !private {
        use std::os::unix::fs::PermissionsExt as _;
        // NamedTempFile is 0600; a public key is for everyone to read.
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io)?;
    }
    file.write_all(bytes).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    file.persist_noclobber(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A key could not be found, read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("Failed to use the signing {origin}")]
    Key {
        origin: KeyOrigin,
        #[source]
        source: KeyError,
    },
    #[error("Failed to access `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` already exists", path.display())]
    Exists { path: PathBuf },
    #[error("No public key to verify with")]
    NoVerifyKey,
    #[error("`{variable}` holds neither a PEM key nor the path of a file")]
    NotAKey { variable: &'static str },
    #[error("`--key` was given the private key itself rather than the path of its file")]
    KeyInArguments,
    #[error("Keyless signing needs an OIDC identity token, and none is offered")]
    NoToken,
    #[error("`--keyless` and a signing key (`--key` or `KILN_SIGNING_KEY`) exclude each other")]
    KeyAndKeyless,
}

impl Diagnose for KeyringError {
    fn hint(&self) -> Option<String> {
        match self {
            KeyringError::Key { source, .. } => source.hint(),
            KeyringError::Exists { .. } => Some(
                "move the existing pair away, or pass `--output-dir` to write elsewhere".into(),
            ),
            KeyringError::KeyInArguments => Some(format!(
                "a command line is visible to every process on the machine: put the PEM in \
                 `{}` (a CI secret) or in a file and pass its path",
                crate::env::KILN_SIGNING_KEY
            )),
            KeyringError::NotAKey { variable } => Some(format!(
                "put the PEM itself (`-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----` …) or \
                 a file path in `{variable}`; a base64-encoded PEM must be decoded first"
            )),
            KeyringError::NoVerifyKey => Some(format!(
                "pass `--key cosign.pub` (or set `{}`); without one kiln uses its local \
                 development key, and none has been made on this machine",
                crate::env::KILN_VERIFY_KEY
            )),
            KeyringError::NoToken => Some(format!(
                "in GitHub Actions grant `permissions: id-token: write`; in GitLab add \
                 `id_tokens: {token}: aud: sigstore`; elsewhere set `{token}`",
                token = crate::env::SIGSTORE_ID_TOKEN
            )),
            KeyringError::KeyAndKeyless => Some(format!(
                "drop `--keyless`, or unset `{}`",
                crate::env::KILN_SIGNING_KEY
            )),
            KeyringError::Io { .. } => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            KeyringError::Key { source, .. } => source.blame(),
            _ => Blame::User,
        }
    }
}
