//! The Docker config (`$DOCKER_CONFIG/config.json` or `.dockerconfigjson`, else
//! `~/.docker/config.json`): the registry's `credHelpers` entry, then its `auths` entry,
//! then `credsStore`, with registries matched by host.
//!
//! The config is the user's, but kiln reads whatever a CI image left there: nothing here
//! indexes or slices (`fuzz/`'s `docker_config` target checks that no input panics).
#![deny(clippy::indexing_slicing, clippy::string_slice)]

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use secrecy::zeroize::Zeroizing;
use serde_json::{Map, Value};

use super::{Basic, Credential, CredentialError, CredentialSource};
use crate::env::Env;

use super::helper::ask_helper;

/// The host every spelling of Docker Hub is normalised to.
pub(super) const DOCKER_HUB: &str = "docker.io";
/// The key Docker stores Docker Hub's credentials under, and asks helpers for.
pub(super) const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";
/// Docker's username for an identity (refresh) token, in `config.json` and from helpers.
pub(super) const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// The config file in a `DOCKER_CONFIG` directory: `config.json`, else
/// `.dockerconfigjson`, the key a Kubernetes `kubernetes.io/dockerconfigjson` Secret
/// mounts as (a Tekton `dockerconfig` workspace bound to such a Secret). Both hold the
/// same `{"auths": ...}` document.
fn config_in(dir: &std::path::Path) -> PathBuf {
    let config = dir.join("config.json");
    let secret = dir.join(".dockerconfigjson");
    if !config.exists() && secret.is_file() {
        secret
    } else {
        config
    }
}

pub(super) async fn from_docker_config(
    registry: &str,
    host: &str,
    env: &Env,
    helper_timeout: Duration,
) -> Result<Option<Credential>, CredentialError> {
    let path = match env.var("DOCKER_CONFIG") {
        Some(dir) => config_in(&PathBuf::from(dir)),
        None => match env.path("HOME") {
            Some(home) => home.join(".docker").join("config.json"),
            None => return Ok(None),
        },
    };
    let Some(config) = DockerConfig::load(path).await? else {
        return Ok(None);
    };
    let server_url = helper_server_url(host);

    if let Some((key, helper)) = config.cred_helper(registry, host)? {
        let configured = format!("`credHelpers.\"{key}\"` in `{}`", config.path.display());
        if let Some(found) =
            ask_helper(&helper, &server_url, &configured, env, helper_timeout).await?
        {
            return Ok(Some(
                found.into_credential(CredentialSource::CredentialHelper { helper }),
            ));
        }
    }
    if let Some(found) = config.auth(registry, host)? {
        let source = CredentialSource::DockerConfig {
            path: config.path.clone(),
        };
        return Ok(Some(found.into_credential(source)));
    }
    if let Some(helper) = config.creds_store()? {
        let configured = format!("`credsStore` in `{}`", config.path.display());
        if let Some(found) =
            ask_helper(&helper, &server_url, &configured, env, helper_timeout).await?
        {
            return Ok(Some(
                found.into_credential(CredentialSource::CredentialHelper { helper }),
            ));
        }
    }
    Ok(None)
}

/// The registry's host and port, lowercased, with every spelling of Docker Hub as
/// `docker.io`: `https://Index.Docker.io/v1/` → `docker.io`, `ghcr.io/acme` → `ghcr.io`.
pub(super) fn normalise_host(registry: &str) -> String {
    let registry = registry.trim();
    let without_scheme = ["https://", "http://"]
        .iter()
        .find_map(|scheme| {
            registry
                .get(..scheme.len())
                .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
                .and_then(|_| registry.get(scheme.len()..))
        })
        .unwrap_or(registry);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

/// What a credential helper is asked for: the host, except Docker Hub, which Docker
/// (and so every helper's store) keys by its legacy index URL.
pub(super) fn helper_server_url(host: &str) -> String {
    if host == DOCKER_HUB {
        DOCKER_HUB_SERVER_URL.to_owned()
    } else {
        host.to_owned()
    }
}

/// The parts of a Docker `config.json` kiln reads, checked only where it reads them.
///
/// It is parsed into a [`Value`], not a typed struct, so that no error can quote a
/// value: serde's type errors include the offending value, which may be a password.
pub(super) struct DockerConfig {
    path: PathBuf,
    root: Map<String, Value>,
}

impl DockerConfig {
    /// The config at `path`; `None` when it does not exist or is empty, as for Docker.
    async fn load(path: PathBuf) -> Result<Option<Self>, CredentialError> {
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CredentialError::ReadConfig { path, source }),
        };
        if bytes.trim_ascii().is_empty() {
            return Ok(None);
        }
        let root = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(root)) => root,
            Ok(_) => {
                return Err(CredentialError::InvalidConfig {
                    path,
                    problem: "it is not a JSON object".into(),
                });
            }
            Err(source) => return Err(CredentialError::ParseConfig { path, source }),
        };
        Ok(Some(Self { path, root }))
    }

    /// The `credHelpers` entry for the registry: its key and the helper's name.
    fn cred_helper(
        &self,
        registry: &str,
        host: &str,
    ) -> Result<Option<(String, String)>, CredentialError> {
        let Some(helpers) = self.object(&self.root, "credHelpers", "credHelpers")? else {
            return Ok(None);
        };
        for (key, _) in matching(helpers, registry, host) {
            let field = format!("credHelpers.\"{key}\"");
            if let Some(helper) = self.string(helpers, key, &field)? {
                return Ok(Some((key.clone(), self.helper_name(helper, &field)?)));
            }
        }
        Ok(None)
    }

    /// The global `credsStore` helper's name.
    fn creds_store(&self) -> Result<Option<String>, CredentialError> {
        self.string(&self.root, "credsStore", "credsStore")?
            .map(|helper| self.helper_name(helper, "credsStore"))
            .transpose()
    }

    /// The first `auths` entry for the registry that holds a credential. An empty entry
    /// (`{}`, as Docker writes when a `credsStore` keeps the secret) holds none.
    fn auth(&self, registry: &str, host: &str) -> Result<Option<Basic>, CredentialError> {
        let Some(auths) = self.object(&self.root, "auths", "auths")? else {
            return Ok(None);
        };
        for (key, entry) in matching(auths, registry, host) {
            let field = format!("auths.\"{key}\"");
            let Some(entry) = entry.as_object() else {
                return Err(self.invalid(format!("`{field}` is not an object")));
            };
            if let Some(found) = self.entry_credential(entry, &field)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// `auth` (base64 `user:password`), else `username` and `password`, else
    /// `identitytoken`, which Docker pairs with the username `<token>`.
    fn entry_credential(
        &self,
        entry: &Map<String, Value>,
        field: &str,
    ) -> Result<Option<Basic>, CredentialError> {
        let auth_field = format!("{field}.auth");
        if let Some(auth) = self.string(entry, "auth", &auth_field)? {
            return self.decode_auth(auth, &auth_field).map(Some);
        }
        let username = self.string(entry, "username", &format!("{field}.username"))?;
        let password = self.string(entry, "password", &format!("{field}.password"))?;
        if let (Some(username), Some(password)) = (username, password) {
            return Ok(Some(Basic::new(username, password)));
        }
        let token = self.string(entry, "identitytoken", &format!("{field}.identitytoken"))?;
        Ok(token.map(|token| Basic::new(IDENTITY_TOKEN_USERNAME, token)))
    }

    /// Decodes `auth` as Docker does: base64 (padded or not) of `username:password`,
    /// split at the first colon, NULs trimmed from the password.
    fn decode_auth(&self, auth: &str, field: &str) -> Result<Basic, CredentialError> {
        const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        // The decoder's errors name the offending byte: never pass them on.
        let decoded = LENIENT
            .decode(auth.trim())
            .map(Zeroizing::new)
            .map_err(|_| self.invalid(format!("`{field}` is not valid base64")))?;
        let text = std::str::from_utf8(&decoded)
            .map_err(|_| self.invalid(format!("`{field}` does not decode to UTF-8 text")))?;
        let Some((username, password)) = text.split_once(':') else {
            return Err(self.invalid(format!("`{field}` does not decode to `username:password`")));
        };
        Ok(Basic::new(username, password.trim_matches('\0')))
    }

    /// `parent[key]` as an object; absent or `null` is `None`.
    fn object<'a>(
        &self,
        parent: &'a Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<Option<&'a Map<String, Value>>, CredentialError> {
        match parent.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(object)) => Ok(Some(object)),
            Some(_) => Err(self.invalid(format!("`{field}` is not an object"))),
        }
    }

    /// `parent[key]` as a string; absent, `null` or empty is `None`.
    fn string<'a>(
        &self,
        parent: &'a Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<Option<&'a str>, CredentialError> {
        match parent.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
            Some(_) => Err(self.invalid(format!("`{field}` is not a string"))),
        }
    }

    /// A helper is named, not located: `pass` means `docker-credential-pass` on `PATH`.
    fn helper_name(&self, helper: &str, field: &str) -> Result<String, CredentialError> {
        if helper.contains(['/', '\\']) {
            return Err(self.invalid(format!(
                "`{field}` must name a helper (`pass` for `docker-credential-pass`), not a path"
            )));
        }
        Ok(helper.to_owned())
    }

    fn invalid(&self, problem: String) -> CredentialError {
        CredentialError::InvalidConfig {
            path: self.path.clone(),
            problem,
        }
    }
}

/// The entries of `map` whose key is the registry: the exact key first, then every key
/// with the same host (`https://index.docker.io/v1/` for `docker.io`).
pub(super) fn matching<'a>(
    map: &'a Map<String, Value>,
    registry: &str,
    host: &str,
) -> Vec<(&'a String, &'a Value)> {
    let mut entries: Vec<_> = map
        .iter()
        .filter(|(key, _)| normalise_host(key) == host)
        .collect();
    entries.sort_by_key(|(key, _)| key.as_str() != registry);
    entries
}
