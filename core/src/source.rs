//! Facts about the project's source that go into the artifact's annotations:
//! revision, repository URL and a reproducible creation time.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::env::Env;
use crate::process::Cmd;

/// `git` in `dir`, as kiln runs it: through the subprocess allowlist, and with the
/// settings through which a repository's own config runs programs (`core.fsmonitor`,
/// hooks) switched off, since the project is not trusted.
pub fn git(dir: &Path, env: &Env) -> Cmd {
    Cmd::new("git", env)
        .args(["-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null"])
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
}

/// What kiln knows about where the source came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// The commit the work tree is at.
    pub revision: Option<String>,
    /// The repository URL, without credentials.
    pub url: Option<String>,
    /// RFC 3339 creation time for the artifact.
    pub created: Option<String>,
    /// Where `created` came from: `SOURCE_DATE_EPOCH` or `git commit time`.
    pub created_from: Option<String>,
}

impl SourceInfo {
    /// Reads git (when the project is in a work tree) and the CI's variables.
    pub async fn read(dir: &Path, env: &Env) -> SourceInfo {
        let read = |args: &'static [&'static str]| async move {
            git(dir, env)
                .args(args)
                .output()
                .await
                .ok()
                .map(|o| o.stdout.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let (revision, url, committed) = tokio::join!(
            read(&["rev-parse", "HEAD"]),
            read(&["remote", "get-url", "origin"]),
            read(&["log", "-1", "--format=%ct"])
        );
        let url = url
            .map(|u| redact_url(&u))
            .or_else(|| ci_repository_url(env));
        let (created, created_from) = match env
            .get(crate::env::SOURCE_DATE_EPOCH)
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            Some(epoch) => (Some(rfc3339(epoch)), Some("SOURCE_DATE_EPOCH".to_string())),
            None => match committed
                .filter(|_| revision.is_some())
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(epoch) => (Some(rfc3339(epoch)), Some("git commit time".to_string())),
                None => (None, None),
            },
        };
        SourceInfo {
            revision,
            url,
            created,
            created_from,
        }
    }
}

fn ci_repository_url(env: &Env) -> Option<String> {
    if let (Some(server), Some(repo)) = (env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"))
    {
        return Some(format!("{server}/{repo}"));
    }
    env.var("CI_PROJECT_URL")
}

/// Seconds since the epoch as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(epoch)).to_string()
}

/// Removes `user:password@` from a URL so it can be printed and stored.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://{host}/{path}")
                .trim_end_matches('/')
                .to_string();
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact_url("https://x-access-token:ghs_abc@github.com/acme/app.git"),
            "https://github.com/acme/app.git"
        );
        assert_eq!(
            redact_url("git@github.com:acme/app.git"),
            "git@github.com:acme/app.git"
        );
        assert_eq!(redact_url("https://example.com/a"), "https://example.com/a");
    }

    #[test]
    fn formats_epoch() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
