//! Which credentials kiln pushes to a registry with, and where they came from.
//!
//! oci-client authenticates with whatever [`RegistryAuth`] it is given, but reads neither
//! the environment nor `~/.docker/config.json`. [`resolve`] finds the credential for one
//! registry host, looking in order at:
//!
//! 1. `KILN_REGISTRY_USERNAME` and `KILN_REGISTRY_PASSWORD` (both, or neither), for one
//!    host only: `KILN_REGISTRY_HOST`, else the registry the command pushes to (or pulls
//!    from). A cache registry elsewhere, or a registry a reference names, never gets them;
//! 2. the CI's own credential: `GITHUB_TOKEN` for `ghcr.io` under GitHub Actions (as `GITHUB_ACTOR`, else
//!    `token`); GitLab's `CI_REGISTRY_USER`/`CI_REGISTRY_PASSWORD` for `CI_REGISTRY`;
//! 3. the Docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//!    the registry's `credHelpers` entry, then its `auths` entry, then `credsStore`;
//! 4. none: anonymous.
//!
//! Registries are matched by host (and port), never by URL: `https://ghcr.io/v2/`,
//! `ghcr.io` and `ghcr.io/acme` are one registry, and `docker.io`, `index.docker.io`,
//! `registry-1.docker.io` and `https://index.docker.io/v1/` are all Docker Hub. (wkg
//! matched URLs and pushed without credentials after `docker login`, wasm-pkg-tools#176.)
//!
//! Secrets never reach a message, a log line or a `Debug` string: they are held as
//! [`SecretString`] until the [`RegistryAuth`] is built, and that is redacted by
//! [`Credential`]'s `Debug`.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

mod docker_config;
mod helper;

pub use helper::HELPER_TIMEOUT;

use docker_config::{from_docker_config, normalise_host};

use crate::diagnose::Diagnose;
use crate::env::Env;
use crate::process::ProcessError;
use oci_client::secrets::RegistryAuth;
use secrecy::{ExposeSecret, SecretString};

pub use crate::env::{KILN_REGISTRY_PASSWORD, KILN_REGISTRY_USERNAME};

/// Where a credential came from, for messages ("401 from ghcr.io using GITHUB_TOKEN").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `KILN_REGISTRY_USERNAME` and `KILN_REGISTRY_PASSWORD`.
    KilnEnv,
    /// GitHub Actions' `GITHUB_TOKEN`, for `ghcr.io`.
    GithubToken,
    /// GitLab CI's `CI_REGISTRY_USER` and `CI_REGISTRY_PASSWORD`, for `CI_REGISTRY`.
    GitlabCi,
    /// An `auths` entry of the Docker config at `path`.
    DockerConfig { path: PathBuf },
    /// `docker-credential-<helper>`, named by `credHelpers` or `credsStore`.
    CredentialHelper { helper: String },
    /// Nothing was found.
    Anonymous,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KilnEnv => write!(f, "{KILN_REGISTRY_USERNAME}/{KILN_REGISTRY_PASSWORD}"),
            Self::GithubToken => f.write_str("GITHUB_TOKEN"),
            Self::GitlabCi => f.write_str("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
            Self::DockerConfig { path } => write!(f, "{} (auths)", path.display()),
            Self::CredentialHelper { helper } => write!(f, "docker-credential-{helper}"),
            Self::Anonymous => f.write_str("no credentials (anonymous)"),
        }
    }
}

/// The credential to push with, and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub auth: RegistryAuth,
    pub source: CredentialSource,
}

impl Credential {
    /// No credential at all.
    pub fn anonymous() -> Self {
        Self {
            auth: RegistryAuth::Anonymous,
            source: CredentialSource::Anonymous,
        }
    }

    /// The password or token, for the one thing that may see it besides the registry:
    /// masking it in CI logs (`::add-mask::` under GitHub Actions). Never print it.
    pub fn secret(&self) -> Option<&str> {
        match &self.auth {
            RegistryAuth::Anonymous => None,
            RegistryAuth::Basic(_, password) => Some(password),
            RegistryAuth::Bearer(token) => Some(token),
        }
    }
}

/// Shows the username and the source, never the password or token.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a RegistryAuth);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    RegistryAuth::Anonymous => f.write_str("Anonymous"),
                    RegistryAuth::Basic(username, _) => f
                        .debug_tuple("Basic")
                        .field(username)
                        .field(&format_args!("<redacted>"))
                        .finish(),
                    RegistryAuth::Bearer(_) => f
                        .debug_tuple("Bearer")
                        .field(&format_args!("<redacted>"))
                        .finish(),
                }
            }
        }
        f.debug_struct("Credential")
            .field("auth", &Redacted(&self.auth))
            .field("source", &self.source)
            .finish()
    }
}

/// A username and password found somewhere, before it becomes a [`RegistryAuth`].
struct Basic {
    username: String,
    password: SecretString,
}

impl Basic {
    fn new(username: impl Into<String>, password: impl Into<SecretString>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    fn into_credential(self, source: CredentialSource) -> Credential {
        Credential {
            auth: RegistryAuth::Basic(self.username, self.password.expose_secret().to_owned()),
            source,
        }
    }
}

/// Finds the credential for `registry`, a host with an optional port as in an image
/// reference (`ghcr.io`, `localhost:5000`, `docker.io`); a scheme or a path is ignored.
///
/// Sources are tried in the order the [module documentation](self) gives. A Docker
/// credential helper that answers "credentials not found" passes on to the next
/// source; one that is missing, fails or takes longer than [`HELPER_TIMEOUT`] is an
/// error, as is a Docker config that cannot be read.
///
/// `primary` is the host the command is about (the push destination's, or the one it
/// pulls from): kiln's own credential variables are for it alone, unless
/// `KILN_REGISTRY_HOST` names another.
pub async fn resolve(
    registry: &str,
    env: &Env,
    primary: Option<&str>,
) -> Result<Credential, CredentialError> {
    resolve_within(registry, env, primary, HELPER_TIMEOUT).await
}

async fn resolve_within(
    registry: &str,
    env: &Env,
    primary: Option<&str>,
    helper_timeout: Duration,
) -> Result<Credential, CredentialError> {
    let host = normalise_host(registry);
    let scope = env
        .var(crate::env::KILN_REGISTRY_HOST)
        .or(primary.map(str::to_owned));
    let kiln_env = if scope.is_some_and(|scope| normalise_host(&scope) == host) {
        from_kiln_env(env)?
    } else {
        None
    };
    let credential = match kiln_env {
        Some(found) => found,
        None => match from_ci(&host, env) {
            Some(found) => found,
            None => from_docker_config(registry, &host, env, helper_timeout)
                .await?
                .unwrap_or_else(Credential::anonymous),
        },
    };
    tracing::debug!(registry = %host, source = %credential.source, "registry credentials");
    Ok(credential)
}

fn from_kiln_env(env: &Env) -> Result<Option<Credential>, CredentialError> {
    match (
        env.var(KILN_REGISTRY_USERNAME),
        env.var(KILN_REGISTRY_PASSWORD),
    ) {
        (Some(username), Some(password)) => Ok(Some(
            Basic::new(username, password).into_credential(CredentialSource::KilnEnv),
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(CredentialError::IncompleteEnv {
            set: KILN_REGISTRY_USERNAME,
            missing: KILN_REGISTRY_PASSWORD,
        }),
        (None, Some(_)) => Err(CredentialError::IncompleteEnv {
            set: KILN_REGISTRY_PASSWORD,
            missing: KILN_REGISTRY_USERNAME,
        }),
    }
}

fn from_ci(host: &str, env: &Env) -> Option<Credential> {
    // Only inside GitHub Actions: a local GITHUB_TOKEN (from `gh`, say) often lacks
    // `write:packages` and must not shadow `docker login ghcr.io`.
    if host == "ghcr.io"
        && env.var("GITHUB_ACTIONS").is_some_and(|v| v == "true")
        && let Some(token) = env.var("GITHUB_TOKEN")
    {
        let username = env.var("GITHUB_ACTOR").unwrap_or_else(|| "token".into());
        return Some(Basic::new(username, token).into_credential(CredentialSource::GithubToken));
    }
    if env
        .var("CI_REGISTRY")
        .is_some_and(|ci_registry| normalise_host(&ci_registry) == host)
        && let (Some(username), Some(password)) =
            (env.var("CI_REGISTRY_USER"), env.var("CI_REGISTRY_PASSWORD"))
    {
        return Some(Basic::new(username, password).into_credential(CredentialSource::GitlabCi));
    }
    None
}

/// Why no credential could be resolved. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("`{set}` is set but `{missing}` is not")]
    IncompleteEnv {
        set: &'static str,
        missing: &'static str,
    },
    #[error("Failed to read the Docker config `{}`", path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Failed to parse the Docker config `{}`", path.display())]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("Invalid Docker config `{}`: {problem}", path.display())]
    InvalidConfig { path: PathBuf, problem: String },
    #[error("Credential helper `{program}` is not on `PATH`")]
    HelperMissing {
        program: String,
        /// Where the helper is named, for the hint: "`credsStore` in `~/.docker/config.json`".
        configured: String,
    },
    #[error("Failed to run credential helper `{program}`")]
    HelperRun {
        program: String,
        #[source]
        source: ProcessError,
    },
    #[error("`{program} get` failed for `{server}` ({status}){output}")]
    HelperFailed {
        program: String,
        server: String,
        status: ExitStatus,
        output: String,
    },
    #[error("`{program} get` did not answer for `{server}` within {}s", timeout.as_secs_f32())]
    HelperTimedOut {
        program: String,
        server: String,
        timeout: Duration,
    },
    #[error(
        "`{program} get` printed something other than `{{\"Username\": ..., \"Secret\": ...}}`"
    )]
    HelperOutput {
        program: String,
        #[source]
        source: Option<serde_json::Error>,
    },
}

impl Diagnose for CredentialError {
    fn hint(&self) -> Option<String> {
        const BYPASS: &str = "set `KILN_REGISTRY_USERNAME` and `KILN_REGISTRY_PASSWORD`";
        Some(match self {
            Self::IncompleteEnv { .. } => format!(
                "set both `{KILN_REGISTRY_USERNAME}` and `{KILN_REGISTRY_PASSWORD}`, or neither \
                 to use the CI's or Docker's credentials"
            ),
            Self::ReadConfig { .. } => format!(
                "check the file's permissions, point `DOCKER_CONFIG` at another directory, or {BYPASS}"
            ),
            Self::ParseConfig { path, .. } | Self::InvalidConfig { path, .. } => format!(
                "fix `{}`, point `DOCKER_CONFIG` at another directory, or {BYPASS}",
                path.display()
            ),
            Self::HelperMissing {
                program,
                configured,
                ..
            } => format!("install `{program}`, remove {configured}, or {BYPASS}"),
            Self::HelperRun { program, .. } => {
                format!("check that `{program}` is executable, or {BYPASS}")
            }
            Self::HelperFailed { server, .. } => format!(
                "unlock or repair the helper's store (`docker login {server}` stores the \
                 credential again), or {BYPASS}"
            ),
            Self::HelperTimedOut { .. } => format!(
                "the helper may be waiting for a passphrase or an unlock prompt that no one \
                 can answer here; {BYPASS}"
            ),
            Self::HelperOutput { program, .. } => {
                format!("update `{program}`, or {BYPASS}")
            }
        })
    }
}

#[cfg(test)]
mod tests {

    use std::path::Path;

    use base64::Engine as _;

    use super::docker_config::*;
    use super::*;

    /// Exactly the variables a case sets, with `HOME` for the Docker config.
    struct FakeEnv;

    impl FakeEnv {
        #[allow(clippy::new_ret_no_self, clippy::should_implement_trait)]
        fn default() -> Env {
            Env::default()
        }

        fn home(home: &Path) -> Env {
            Env::default().with("HOME", home)
        }
    }

    /// A home directory whose `.docker/config.json` is `config`.
    fn home_with_config(config: &str) -> (tempfile::TempDir, PathBuf) {
        let home = tempfile::tempdir().unwrap();
        let docker = home.path().join(".docker");
        std::fs::create_dir(&docker).unwrap();
        let path = docker.join("config.json");
        std::fs::write(&path, config).unwrap();
        (home, path)
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn basic(username: &str, password: &str) -> RegistryAuth {
        RegistryAuth::Basic(username.into(), password.into())
    }

    async fn resolve_ok(registry: &str, env: &Env) -> Credential {
        resolve(registry, env, Some(registry)).await.unwrap()
    }

    #[tokio::test]
    async fn nothing_configured_is_anonymous() {
        assert_eq!(
            resolve_ok("ghcr.io", &FakeEnv::default()).await,
            Credential::anonymous()
        );
        let home = tempfile::tempdir().unwrap();
        let env = FakeEnv::home(home.path());
        assert_eq!(resolve_ok("ghcr.io", &env).await, Credential::anonymous());
        let (home, _) = home_with_config("  \n");
        let env = FakeEnv::home(home.path());
        assert_eq!(resolve_ok("ghcr.io", &env).await, Credential::anonymous());
    }

    #[tokio::test]
    async fn kiln_env_comes_before_everything() {
        let config = format!(
            r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
            b64("d:p")
        );
        let (home, _) = home_with_config(&config);
        let env = FakeEnv::home(home.path())
            .with("GITHUB_TOKEN", "gh-token")
            .with(KILN_REGISTRY_USERNAME, "kiln-user")
            .with(KILN_REGISTRY_PASSWORD, "kiln-pass");
        let credential = resolve_ok("ghcr.io", &env).await;
        assert_eq!(credential.auth, basic("kiln-user", "kiln-pass"));
        assert_eq!(credential.source, CredentialSource::KilnEnv);
        // Without them the CI's token wins over the Docker config ...
        let env = FakeEnv::home(home.path())
            .with("GITHUB_ACTIONS", "true")
            .with("GITHUB_TOKEN", "gh-token");
        let credential = resolve_ok("ghcr.io", &env).await;
        assert_eq!(credential.source, CredentialSource::GithubToken);
        // Outside GitHub Actions a GITHUB_TOKEN is someone's own, not the CI's.
        let env = FakeEnv::home(home.path()).with("GITHUB_TOKEN", "gh-token");
        let credential = resolve_ok("ghcr.io", &env).await;
        assert_eq!(credential.auth, basic("d", "p"));
        // ... and without that, the Docker config is read.
        let credential = resolve_ok("ghcr.io", &FakeEnv::home(home.path())).await;
        assert_eq!(credential.auth, basic("d", "p"));
    }

    #[tokio::test]
    async fn kiln_env_is_for_one_host_only() {
        let env = FakeEnv::default()
            .with(KILN_REGISTRY_USERNAME, "kiln-user")
            .with(KILN_REGISTRY_PASSWORD, "kiln-pass");
        // The push host gets them; a cache registry or a reference elsewhere does not.
        let push = resolve("ghcr.io", &env, Some("ghcr.io")).await.unwrap();
        assert_eq!(push.source, CredentialSource::KilnEnv);
        for (host, primary) in [("evil.example", Some("ghcr.io")), ("ghcr.io", None)] {
            let other = resolve(host, &env, primary).await.unwrap();
            assert_eq!(other, Credential::anonymous(), "{host} {primary:?}");
        }
        // KILN_REGISTRY_HOST names the one host they are for.
        let env = env.with(crate::env::KILN_REGISTRY_HOST, "cache.example");
        let cache = resolve("cache.example", &env, Some("ghcr.io"))
            .await
            .unwrap();
        assert_eq!(cache.source, CredentialSource::KilnEnv);
        let push = resolve("ghcr.io", &env, Some("ghcr.io")).await.unwrap();
        assert_eq!(push, Credential::anonymous());
    }

    #[tokio::test]
    async fn kiln_env_needs_both_variables() {
        for (set, missing) in [
            (KILN_REGISTRY_USERNAME, KILN_REGISTRY_PASSWORD),
            (KILN_REGISTRY_PASSWORD, KILN_REGISTRY_USERNAME),
        ] {
            let env = FakeEnv::default().with(set, "x").with(missing, "");
            let err = resolve("ghcr.io", &env, Some("ghcr.io")).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("`{set}` is set but `{missing}` is not")
            );
            assert!(err.hint().unwrap().contains("or neither"));
        }
    }

    #[tokio::test]
    async fn github_token_is_only_for_ghcr() {
        let env = FakeEnv::default()
            .with("GITHUB_ACTIONS", "true")
            .with("GITHUB_TOKEN", "gh-token")
            .with("GITHUB_ACTOR", "octocat");
        let credential = resolve_ok("ghcr.io", &env).await;
        assert_eq!(credential.auth, basic("octocat", "gh-token"));
        assert_eq!(credential.source, CredentialSource::GithubToken);
        assert_eq!(
            resolve_ok("GHCR.io", &env).await.source,
            CredentialSource::GithubToken
        );
        for other in [
            "docker.io",
            "registry.example.com",
            "ghcr.io.example.com",
            "ghcr.io:5000",
        ] {
            assert_eq!(
                resolve_ok(other, &env).await,
                Credential::anonymous(),
                "{other}"
            );
        }
        let env = FakeEnv::default()
            .with("GITHUB_ACTIONS", "true")
            .with("GITHUB_TOKEN", "gh-token");
        assert_eq!(
            resolve_ok("ghcr.io", &env).await.auth,
            basic("token", "gh-token")
        );
    }

    #[tokio::test]
    async fn gitlab_credentials_are_only_for_ci_registry() {
        let env = FakeEnv::default()
            .with("CI_REGISTRY", "gitlab.example.com:5050")
            .with("CI_REGISTRY_USER", "gitlab-ci-token")
            .with("CI_REGISTRY_PASSWORD", "job-token");
        let credential = resolve_ok("gitlab.example.com:5050", &env).await;
        assert_eq!(credential.auth, basic("gitlab-ci-token", "job-token"));
        assert_eq!(credential.source, CredentialSource::GitlabCi);
        assert_eq!(
            resolve_ok("gitlab.example.com:5050/group/app", &env)
                .await
                .source,
            CredentialSource::GitlabCi
        );
        for other in ["gitlab.example.com", "gitlab.example.com:5000", "ghcr.io"] {
            assert_eq!(
                resolve_ok(other, &env).await,
                Credential::anonymous(),
                "{other}"
            );
        }
    }

    #[tokio::test]
    async fn auths_entries_are_decoded() {
        let config = format!(
            r#"{{"auths": {{
                "ghcr.io": {{"auth": "{}"}},
                "unpadded.example.com": {{"auth": "{}"}},
                "nul.example.com": {{"auth": "{}"}},
                "registry.example.com": {{"username": "bob", "password": "hunter2"}},
                "acr.example.com": {{"auth": "", "identitytoken": "refresh"}},
                "empty.example.com": {{}}
            }}}}"#,
            b64("alice:pa:ss"),
            b64("carol:x").trim_end_matches('='),
            b64("dave:pw\0"),
        );
        let (home, path) = home_with_config(&config);
        let env = FakeEnv::home(home.path());
        let credential = resolve_ok("ghcr.io", &env).await;
        assert_eq!(credential.auth, basic("alice", "pa:ss"));
        assert_eq!(credential.source, CredentialSource::DockerConfig { path });
        let cases = [
            ("unpadded.example.com", basic("carol", "x")),
            ("nul.example.com", basic("dave", "pw")),
            ("registry.example.com", basic("bob", "hunter2")),
            ("acr.example.com", basic("<token>", "refresh")),
            ("empty.example.com", RegistryAuth::Anonymous),
            ("other.example.com", RegistryAuth::Anonymous),
        ];
        for (registry, auth) in cases {
            assert_eq!(resolve_ok(registry, &env).await.auth, auth, "{registry}");
        }
    }

    #[tokio::test]
    async fn auths_match_by_host_not_url() {
        let config = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "https://GHCR.io/v2/": {{"auth": "{}"}},
                "localhost:5000": {{"auth": "{}"}}
            }}}}"#,
            b64("hub:1"),
            b64("gh:2"),
            b64("local:3"),
        );
        let (home, _) = home_with_config(&config);
        let env = FakeEnv::home(home.path());
        for registry in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
        ] {
            assert_eq!(
                resolve_ok(registry, &env).await.auth,
                basic("hub", "1"),
                "{registry}"
            );
        }
        assert_eq!(resolve_ok("ghcr.io", &env).await.auth, basic("gh", "2"));
        assert_eq!(
            resolve_ok("localhost:5000", &env).await.auth,
            basic("local", "3")
        );
        assert_eq!(
            resolve_ok("localhost", &env).await.auth,
            RegistryAuth::Anonymous
        );

        // The other way round: a short key found from the index URL.
        let config = format!(
            r#"{{"auths": {{"docker.io": {{"auth": "{}"}}}}}}"#,
            b64("hub:4")
        );
        let (home, _) = home_with_config(&config);
        let env = FakeEnv::home(home.path());
        assert_eq!(
            resolve_ok("index.docker.io", &env).await.auth,
            basic("hub", "4")
        );

        // Two keys for one host: the registry's own spelling wins.
        let config = format!(
            r#"{{"auths": {{"docker.io": {{"auth": "{}"}}, "https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
            b64("short:5"),
            b64("url:6"),
        );
        let (home, _) = home_with_config(&config);
        let env = FakeEnv::home(home.path());
        assert_eq!(
            resolve_ok("docker.io", &env).await.auth,
            basic("short", "5")
        );
        let url = "https://index.docker.io/v1/";
        assert_eq!(resolve_ok(url, &env).await.auth, basic("url", "6"));
    }

    #[tokio::test]
    async fn docker_config_variable_replaces_home() {
        let (home, _) = home_with_config(&format!(
            r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
            b64("home:1")
        ));
        let other = tempfile::tempdir().unwrap();
        let path = other.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
                b64("dc:2")
            ),
        )
        .unwrap();
        let env = FakeEnv::home(home.path()).with("DOCKER_CONFIG", other.path());
        let credential = resolve_ok("ghcr.io", &env).await;
        assert_eq!(credential.auth, basic("dc", "2"));
        assert_eq!(
            credential.source.to_string(),
            format!("{} (auths)", path.display())
        );
    }

    #[tokio::test]
    async fn a_kubernetes_secrets_dockerconfigjson_is_read_too() {
        let (home, _) = home_with_config("{}");
        let secret = tempfile::tempdir().unwrap();
        let path = secret.path().join(".dockerconfigjson");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
                b64("k8s:3")
            ),
        )
        .unwrap();
        let env = FakeEnv::home(home.path()).with("DOCKER_CONFIG", secret.path());
        let credential = resolve_ok("ghcr.io", &env).await;
        assert_eq!(credential.auth, basic("k8s", "3"));
        assert_eq!(
            credential.source.to_string(),
            format!("{} (auths)", path.display())
        );
    }

    #[tokio::test]
    async fn malformed_config_names_the_file_and_never_the_secret() {
        let (home, path) = home_with_config(r#"{"auths": {"ghcr.io": {"auth": "#);
        let err = resolve("ghcr.io", &FakeEnv::home(home.path()), Some("ghcr.io"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CredentialError::ParseConfig { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("KILN_REGISTRY_USERNAME"));

        let cases = [
            (
                r#"{"auths": {"ghcr.io": {"password": 12345678, "username": "u"}}}"#,
                "`auths.\"ghcr.io\".password` is not a string",
                "12345678",
            ),
            (
                r#"{"auths": {"ghcr.io": {"auth": "not-base64-s3cr3t!"}}}"#,
                "`auths.\"ghcr.io\".auth` is not valid base64",
                "s3cr3t",
            ),
            (
                r#"{"auths": {"ghcr.io": "s3cr3t"}}"#,
                "`auths.\"ghcr.io\"` is not an object",
                "s3cr3t",
            ),
            (r#"{"auths": []}"#, "`auths` is not an object", "[]"),
            (r#"["s3cr3t"]"#, "it is not a JSON object", "s3cr3t"),
        ];
        for (config, problem, secret) in cases {
            let (home, path) = home_with_config(config);
            let err = resolve("ghcr.io", &FakeEnv::home(home.path()), Some("ghcr.io"))
                .await
                .unwrap_err();
            let message = format!("{err} {err:?}");
            assert_eq!(
                err.to_string(),
                format!("Invalid Docker config `{}`: {problem}", path.display())
            );
            assert!(!message.contains(secret), "{message}");
        }
        let no_colon = format!(
            r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
            b64("s3cr3t")
        );
        let (home, _) = home_with_config(&no_colon);
        let err = resolve("ghcr.io", &FakeEnv::home(home.path()), Some("ghcr.io"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("does not decode to `username:password`"),
            "{err}"
        );
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let credential = Basic::new("alice", "hunter2").into_credential(CredentialSource::KilnEnv);
        let debug = format!("{credential:?} {credential:#?}");
        assert!(
            debug.contains("alice") && !debug.contains("hunter2"),
            "{debug}"
        );
        let bearer = Credential {
            auth: RegistryAuth::Bearer("tok3n".into()),
            source: CredentialSource::Anonymous,
        };
        assert!(!format!("{bearer:?}").contains("tok3n"));
        assert_eq!(credential.secret(), Some("hunter2"));
        assert_eq!(Credential::anonymous().secret(), None);
    }

    #[test]
    fn sources_read_well_in_messages() {
        let cases = [
            (
                CredentialSource::KilnEnv,
                "KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD",
            ),
            (CredentialSource::GithubToken, "GITHUB_TOKEN"),
            (
                CredentialSource::GitlabCi,
                "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD",
            ),
            (
                CredentialSource::DockerConfig {
                    path: "/home/u/.docker/config.json".into(),
                },
                "/home/u/.docker/config.json (auths)",
            ),
            (
                CredentialSource::CredentialHelper {
                    helper: "pass".into(),
                },
                "docker-credential-pass",
            ),
            (CredentialSource::Anonymous, "no credentials (anonymous)"),
        ];
        for (source, text) in cases {
            assert_eq!(source.to_string(), text);
        }
    }

    #[test]
    fn hosts_are_normalised() {
        let cases = [
            ("ghcr.io", "ghcr.io"),
            ("GHCR.IO", "ghcr.io"),
            ("https://ghcr.io/v2/", "ghcr.io"),
            ("HTTP://localhost:5000", "localhost:5000"),
            ("ghcr.io/acme/app", "ghcr.io"),
            ("https://index.docker.io/v1/", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("registry.hub.docker.com", "docker.io"),
            ("docker.io:5000", "docker.io:5000"),
        ];
        for (input, host) in cases {
            assert_eq!(normalise_host(input), host, "{input}");
        }
    }

    /// Credential helpers, run for real: shell scripts on a `PATH` of their own.
    #[cfg(unix)]
    mod helpers {
        use std::os::unix::fs::PermissionsExt;

        use super::*;

        /// Answers with `user-for-<the URL it was given>` and `secret`.
        const ANSWERS: &str = r#"[ "$1" = get ] || exit 3
url=$(cat)
printf '{"ServerURL":"%s","Username":"user-for-%s","Secret":"secret"}' "$url" "$url""#;
        const NOT_FOUND: &str =
            "cat >/dev/null\necho 'credentials not found in native keychain'\nexit 1";

        struct Setup {
            _home: tempfile::TempDir,
            bin: tempfile::TempDir,
            config: PathBuf,
        }

        impl Setup {
            fn new(config: &str) -> Self {
                let (home, config_path) = home_with_config(config);
                Self {
                    _home: home,
                    bin: tempfile::tempdir().unwrap(),
                    config: config_path,
                }
            }

            fn helper(self, name: &str, body: &str) -> Self {
                let path = self.bin.path().join(format!("docker-credential-{name}"));
                std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
                self
            }

            fn env(&self) -> Env {
                // The helpers are scripts: they need the system's tools after them.
                let path = format!("{}:/usr/bin:/bin", self.bin.path().display());
                FakeEnv::home(self.config.parent().unwrap().parent().unwrap()).with("PATH", path)
            }
        }

        fn from_helper(name: &str) -> CredentialSource {
            CredentialSource::CredentialHelper {
                helper: name.into(),
            }
        }

        #[tokio::test]
        async fn cred_helpers_come_before_auths() {
            let config = format!(
                r#"{{"credHelpers": {{"ghcr.io": "gh", "https://index.docker.io/v1/": "gh"}},
                    "auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
                b64("file:1")
            );
            let setup = Setup::new(&config).helper("gh", ANSWERS);
            let env = setup.env();
            let credential = resolve_ok("ghcr.io", &env).await;
            assert_eq!(credential.auth, basic("user-for-ghcr.io", "secret"));
            assert_eq!(credential.source, from_helper("gh"));
            // Docker Hub is asked for by its index URL, whatever the reference says.
            let credential = resolve_ok("registry-1.docker.io", &env).await;
            assert_eq!(
                credential.auth,
                basic("user-for-https://index.docker.io/v1/", "secret")
            );
        }

        #[tokio::test]
        async fn not_found_falls_through_to_auths_then_creds_store() {
            let config = format!(
                r#"{{"credHelpers": {{"ghcr.io": "empty", "quay.io": "empty"}},
                    "credsStore": "store",
                    "auths": {{"ghcr.io": {{"auth": "{}"}}, "quay.io": {{}}}}}}"#,
                b64("file:1")
            );
            let setup = Setup::new(&config)
                .helper("empty", NOT_FOUND)
                .helper("store", ANSWERS);
            let env = setup.env();
            let credential = resolve_ok("ghcr.io", &env).await;
            assert_eq!(credential.auth, basic("file", "1"));
            assert_eq!(
                credential.source,
                CredentialSource::DockerConfig {
                    path: setup.config.clone()
                }
            );
            let credential = resolve_ok("quay.io", &env).await;
            assert_eq!(credential.auth, basic("user-for-quay.io", "secret"));
            assert_eq!(credential.source, from_helper("store"));
        }

        #[tokio::test]
        async fn a_store_without_the_credential_means_anonymous() {
            let setup = Setup::new(r#"{"credsStore": "empty"}"#).helper("empty", NOT_FOUND);
            assert_eq!(
                resolve_ok("ghcr.io", &setup.env()).await,
                Credential::anonymous()
            );
        }

        #[tokio::test]
        async fn identity_tokens_keep_dockers_username() {
            let answer = r#"cat >/dev/null; echo '{"ServerURL":"acr.example.com","Username":"<token>","Secret":"refresh"}'"#;
            let setup = Setup::new(r#"{"credsStore": "acr"}"#).helper("acr", answer);
            let credential = resolve_ok("acr.example.com", &setup.env()).await;
            assert_eq!(credential.auth, basic("<token>", "refresh"));
        }

        #[tokio::test]
        async fn a_missing_helper_is_an_error_with_a_hint() {
            let setup = Setup::new(r#"{"credsStore": "nowhere"}"#);
            let err = resolve("ghcr.io", &setup.env(), Some("ghcr.io"))
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "Credential helper `docker-credential-nowhere` is not on `PATH`"
            );
            let hint = err.hint().unwrap();
            assert!(
                hint.starts_with("install `docker-credential-nowhere`, remove `credsStore` in `"),
                "{hint}"
            );
            assert!(hint.contains(&setup.config.display().to_string()), "{hint}");
        }

        #[tokio::test]
        async fn a_failing_helper_is_an_error_with_its_output() {
            let body = "cat >/dev/null\necho 'gpg: decryption failed: No secret key' >&2\nexit 2";
            let setup = Setup::new(r#"{"credHelpers": {"ghcr.io": "pass"}}"#).helper("pass", body);
            let err = resolve("ghcr.io", &setup.env(), Some("ghcr.io"))
                .await
                .unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("`docker-credential-pass get` failed for `ghcr.io` ("),
                "{message}"
            );
            assert!(
                message.ends_with(
                    "--- stderr (last lines) ---\ngpg: decryption failed: No secret key"
                ),
                "{message}"
            );
        }

        #[tokio::test]
        async fn unreadable_answers_are_errors_that_hide_the_secret() {
            let body = r#"cat >/dev/null; echo '{"Username":"u","Secret":12345678}'"#;
            let setup = Setup::new(r#"{"credsStore": "odd"}"#).helper("odd", body);
            let err = resolve("ghcr.io", &setup.env(), Some("ghcr.io"))
                .await
                .unwrap_err();
            assert!(
                matches!(err, CredentialError::HelperOutput { .. }),
                "{err:?}"
            );
            assert!(!format!("{err} {err:?}").contains("12345678"));
        }

        #[tokio::test]
        async fn a_hung_helper_times_out() {
            let setup = Setup::new(r#"{"credsStore": "hang"}"#).helper("hang", "exec sleep 30");
            let err = resolve_within(
                "ghcr.io",
                &setup.env(),
                Some("ghcr.io"),
                Duration::from_millis(200),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(err, CredentialError::HelperTimedOut { .. }),
                "{err:?}"
            );
            assert!(err.to_string().ends_with("within 0.2s"), "{err}");
        }
    }
}
