//! GitHub Actions: the step summary, the step's outputs, and one sticky pull request
//! comment per artifact.
//!
//! 1. Appends the Markdown summary to `$GITHUB_STEP_SUMMARY` (cut to 1 MiB).
//! 2. Appends the outputs (`image`, `digest`, `sbom-digest`, `cache-hit`, `skipped`) to
//!    `$GITHUB_OUTPUT`; a value with a line break goes in the heredoc form, behind a random
//!    delimiter it cannot contain.
//! 3. On a `pull_request` or `pull_request_target` event (the number read from the event
//!    file), with a token from `KILN_GITHUB_TOKEN` or `GITHUB_TOKEN`, lists the pull
//!    request's comments through the REST API at `GITHUB_API_URL` (GHES included), updates
//!    the one holding kiln's marker for this artifact, or creates it.

use octocrab::Octocrab;
use secrecy::SecretString;
use serde::Deserialize;

use super::markdown::{self, GITHUB_COMMENT_LIMIT, STEP_SUMMARY_LIMIT};
use super::{ApiError, Outputs, Platform, PostError, Posts, Report};
use crate::env::Env;

/// `true` in every GitHub Actions job.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// The step summary file (Markdown).
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
/// The step outputs file.
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
/// The event that started the workflow (`pull_request`, `push`, ...).
pub const GITHUB_EVENT_NAME: &str = "GITHUB_EVENT_NAME";
/// The event's JSON payload.
pub const GITHUB_EVENT_PATH: &str = "GITHUB_EVENT_PATH";
/// `OWNER/NAME`.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
/// The REST API's root: `https://api.github.com`, or `https://HOST/api/v3` on GHES.
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// The job's token, when the workflow passes it to kiln.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// The ref the run is for: `refs/heads/B`, `refs/tags/T`, `refs/pull/N/merge`.
pub const GITHUB_REF: &str = "GITHUB_REF";
/// A pull request's base branch, on pull request events.
pub const GITHUB_BASE_REF: &str = "GITHUB_BASE_REF";

const DEFAULT_API_URL: &str = "https://api.github.com";
const TOKEN_NAMES: &str = "KILN_GITHUB_TOKEN or GITHUB_TOKEN";

pub(crate) async fn post(report: Report<'_>, env: &Env, posts: &Posts<'_>) {
    match env.path(GITHUB_STEP_SUMMARY) {
        Some(path) => {
            let mut text = markdown::truncate(markdown::render(report), STEP_SUMMARY_LIMIT);
            text.push('\n');
            posts.outcome(
                super::append_file(&path, text.as_bytes())
                    .map(|()| "wrote the step summary".to_string()),
            );
        }
        None => posts.failed(&PostError::Missing {
            name: GITHUB_STEP_SUMMARY,
            what: "write the step summary",
        }),
    }
    // A failed build has no outputs to set.
    match (report.summary(), env.path(GITHUB_OUTPUT)) {
        (None, _) => {}
        (Some(summary), Some(path)) => posts.outcome(
            super::append_file(&path, output_lines(&Outputs::of(summary)).as_bytes())
                .map(|()| "set the step outputs".to_string()),
        ),
        (Some(_), None) => posts.failed(&PostError::Missing {
            name: GITHUB_OUTPUT,
            what: "set the step outputs",
        }),
    }
    if !posts.comments() {
        return;
    }
    match pull_request(env) {
        Ok(Some(pr)) => posts.outcome(comment(report, env, &pr).await),
        Ok(None) => {}
        Err(err) => posts.failed(&err),
    }
}

/// The `GITHUB_OUTPUT` lines for `outputs`.
pub fn output_lines(outputs: &Outputs) -> String {
    outputs
        .named()
        .iter()
        .map(|(name, value)| output_line(name, value))
        .collect()
}

/// `name=value`, or for a value with a line break
/// `name<<DELIMITER`, the value, `DELIMITER`, with a delimiter the value does not contain.
pub fn output_line(name: &str, value: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return format!("{name}={value}\n");
    }
    let delimiter = loop {
        let delimiter = format!("ghadelimiter_{:032x}", rand::random::<u128>());
        if !value.contains(&delimiter) {
            break delimiter;
        }
    };
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// The pull request a `pull_request` / `pull_request_target` run belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub owner: String,
    pub repo: String,
    pub number: u64,
}

impl std::fmt::Display for PullRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}#{}", self.owner, self.repo, self.number)
    }
}

/// Whose caches this run's are, as actions/cache scopes them, only stricter: a run saves
/// under its ref and restores from it, then from the default branch. A pull request's
/// run (also on `pull_request_target`, which has the base branch's ref but may build the
/// pull request's code) saves under `refs/pull/N` and reads its base branch, then the
/// default branch; it can never save where a branch's run restores from.
pub fn cache_scope(env: &Env) -> kiln_cache::Scope {
    use kiln_cache::Scope;
    let event = event_json(env);
    let pull = env
        .get(GITHUB_REF)
        .and_then(|r| r.strip_prefix("refs/pull/"))
        .and_then(|rest| rest.split('/').next())
        .map(str::to_string);
    let scope = if pull.is_some()
        || matches!(
            env.get(GITHUB_EVENT_NAME),
            Some("pull_request" | "pull_request_target")
        ) {
        let number = pull
            .or_else(|| {
                let number = event.as_ref()?.pointer("/pull_request/number")?;
                Some(number.as_u64()?.to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let scope = Scope::new(format!("refs/pull/{number}"));
        match env.get(GITHUB_BASE_REF).filter(|b| !b.is_empty()) {
            Some(base) => scope.reading(format!("refs/heads/{base}")),
            None => scope,
        }
    } else {
        Scope::new(
            env.get(GITHUB_REF)
                .filter(|r| !r.is_empty())
                .unwrap_or("github"),
        )
    };
    let default_branch = event
        .as_ref()
        .and_then(|e| e.pointer("/repository/default_branch")?.as_str());
    match default_branch {
        Some(branch) => scope.reading(format!("refs/heads/{branch}")),
        None => scope,
    }
}

/// The event payload, when there is one and it parses.
fn event_json(env: &Env) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(env.path(GITHUB_EVENT_PATH)?).ok()?;
    serde_json::from_str(&text).ok()
}

/// The pull request this run is for, when the event is one.
pub fn pull_request(env: &Env) -> Result<Option<PullRequest>, PostError> {
    if !matches!(
        env.get(GITHUB_EVENT_NAME),
        Some("pull_request" | "pull_request_target")
    ) {
        return Ok(None);
    }
    let path = env.path(GITHUB_EVENT_PATH).ok_or(PostError::Missing {
        name: GITHUB_EVENT_PATH,
        what: "comment on the pull request",
    })?;
    #[derive(Deserialize)]
    struct Event {
        pull_request: Option<Number>,
        number: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Number {
        number: u64,
    }
    let event_error = |source: Box<dyn std::error::Error + Send + Sync>| PostError::Event {
        path: path.clone(),
        source,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| event_error(e.into()))?;
    let event: Event = serde_json::from_str(&text).map_err(|e| event_error(e.into()))?;
    let number = event
        .pull_request
        .map(|pr| pr.number)
        .or(event.number)
        .ok_or_else(|| event_error("it has no `pull_request.number`".into()))?;
    let repository = env.get(GITHUB_REPOSITORY).ok_or(PostError::Missing {
        name: GITHUB_REPOSITORY,
        what: "comment on the pull request",
    })?;
    let (owner, repo) = repository
        .split_once('/')
        .ok_or_else(|| PostError::Invalid {
            name: GITHUB_REPOSITORY,
            value: repository.to_string(),
            expected: "`OWNER/NAME`",
        })?;
    Ok(Some(PullRequest {
        owner: owner.to_string(),
        repo: repo.to_string(),
        number,
    }))
}

/// The part of an issue comment kiln reads.
#[derive(Debug, Deserialize)]
struct IssueComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<Login>,
}

#[derive(Debug, serde::Deserialize)]
struct Login {
    login: String,
}

/// Who a GitHub Actions `GITHUB_TOKEN` comments as (it may not ask `GET /user`).
const ACTIONS_BOT: &str = "github-actions[bot]";

/// Creates or updates kiln's comment for this artifact on `pr`.
async fn comment(report: Report<'_>, env: &Env, pr: &PullRequest) -> Result<String, PostError> {
    let token = env
        .get(crate::env::KILN_GITHUB_TOKEN)
        .or_else(|| env.get(GITHUB_TOKEN))
        .map(|t| SecretString::from(t.to_string()))
        .ok_or_else(|| PostError::NoToken {
            what: format!("comment on pull request {pr}"),
            names: TOKEN_NAMES,
            platform: Platform::GitHub,
        })?;
    let api = env
        .get(GITHUB_API_URL)
        .unwrap_or(DEFAULT_API_URL)
        .trim_end_matches('/');
    let failed = |what: String| {
        let api = api.to_string();
        move |err: octocrab::Error| PostError::Api {
            what,
            platform: Platform::GitHub,
            source: api_error(&api, err),
        }
    };
    let crab = Octocrab::builder()
        .base_uri(api)
        .map_err(failed(format!("reach the GitHub API at {api}")))?
        .personal_token(token)
        .set_connect_timeout(Some(super::API_TIMEOUT))
        .set_read_timeout(Some(super::API_TIMEOUT))
        .build()
        .map_err(failed(format!("reach the GitHub API at {api}")))?;

    let marker = markdown::marker(report);
    let body = serde_json::json!({ "body": markdown::sticky(report, GITHUB_COMMENT_LIMIT) });
    let (owner, repo, number) = (&pr.owner, &pr.repo, pr.number);
    let listed = format!("list the comments of pull request {pr}");
    let first: octocrab::Page<IssueComment> = crab
        .get(
            format!("/repos/{owner}/{repo}/issues/{number}/comments"),
            Some(&[("per_page", 100)]),
        )
        .await
        .map_err(failed(listed.clone()))?;
    let comments = crab.all_pages(first).await.map_err(failed(listed))?;
    // The marker is text anyone can paste: only a comment of the token's own user is
    // kiln's to update.
    let own: String = match crab.get::<Login, _, ()>("/user", None).await {
        Ok(user) => user.login,
        Err(_) => ACTIONS_BOT.to_string(),
    };
    let existing = comments.iter().find(|c| {
        c.user.as_ref().is_some_and(|u| u.login == own)
            && c.body.as_deref().is_some_and(|b| b.contains(&marker))
    });
    match existing {
        Some(existing) => {
            let _: serde_json::Value = crab
                .patch(
                    format!("/repos/{owner}/{repo}/issues/comments/{}", existing.id),
                    Some(&body),
                )
                .await
                .map_err(failed(format!(
                    "update kiln's comment on pull request {pr}"
                )))?;
            Ok(format!("updated the comment on pull request {pr}"))
        }
        None => {
            let _: serde_json::Value = crab
                .post(
                    format!("/repos/{owner}/{repo}/issues/{number}/comments"),
                    Some(&body),
                )
                .await
                .map_err(failed(format!("comment on pull request {pr}")))?;
            Ok(format!("commented on pull request {pr}"))
        }
    }
}

/// octocrab's error as one kiln can print in a line or two.
fn api_error(api: &str, err: octocrab::Error) -> ApiError {
    match err {
        octocrab::Error::GitHub { source, .. } => ApiError::Status {
            service: "GitHub",
            status: source.status_code.as_u16(),
            message: source.message.clone(),
        },
        other => ApiError::Transport {
            service: "GitHub",
            url: api.to_string(),
            source: other.to_string().into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_use_the_actions_names() {
        let outputs = Outputs::of(&crate::platform::tests::summary());
        let lines = output_lines(&outputs);
        assert!(
            lines.starts_with("image=oci:/work/hello/.kiln/oci:hello:1.2.3\n"),
            "{lines}"
        );
        assert!(lines.contains(&format!("\ndigest=sha256:{}\n", "a".repeat(64))));
        assert!(
            lines.contains(&format!(
                "\nsbom-digest=sha256:{}\ncache-hit=\nskipped=false\n",
                "f".repeat(64)
            )),
            "{lines}"
        );
    }

    #[test]
    fn multi_line_values_use_a_heredoc() {
        let line = output_line("note", "one\ntwo");
        let (head, rest) = line.split_once('\n').unwrap();
        let delimiter = head.strip_prefix("note<<").unwrap();
        assert!(delimiter.starts_with("ghadelimiter_") && delimiter.len() > 20);
        assert_eq!(rest, format!("one\ntwo\n{delimiter}\n"));
        assert_ne!(
            output_line("note", "one\ntwo"),
            line,
            "the delimiter is random"
        );
    }

    #[test]
    fn cache_scopes_follow_the_ref_and_keep_pull_requests_apart() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"pull_request":{"number":42},"repository":{"default_branch":"trunk"}}"#,
        )
        .unwrap();
        let scope = |vars: &[(&str, &str)]| {
            let mut all: Vec<(&str, String)> =
                vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
            all.push((GITHUB_EVENT_PATH, event.display().to_string()));
            let scope = cache_scope(&Env::from_pairs(all));
            (scope.name, scope.reads)
        };
        let pr = (
            "refs/pull/42".to_string(),
            vec!["refs/heads/dev".to_string(), "refs/heads/trunk".to_string()],
        );
        assert_eq!(
            scope(&[
                (GITHUB_EVENT_NAME, "pull_request"),
                (GITHUB_REF, "refs/pull/42/merge"),
                (GITHUB_BASE_REF, "dev"),
            ]),
            pr
        );
        // `pull_request_target` runs with the base branch's ref: still the pull request's.
        assert_eq!(
            scope(&[
                (GITHUB_EVENT_NAME, "pull_request_target"),
                (GITHUB_REF, "refs/heads/dev"),
                (GITHUB_BASE_REF, "dev"),
            ]),
            pr
        );
        assert_eq!(
            scope(&[(GITHUB_EVENT_NAME, "push"), (GITHUB_REF, "refs/tags/v1")]),
            (
                "refs/tags/v1".to_string(),
                vec!["refs/heads/trunk".to_string()]
            )
        );
        // The default branch reads only itself.
        assert_eq!(
            scope(&[
                (GITHUB_EVENT_NAME, "push"),
                (GITHUB_REF, "refs/heads/trunk")
            ]),
            ("refs/heads/trunk".to_string(), vec![])
        );
    }

    #[test]
    fn pull_requests_are_found_from_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"action":"opened","pull_request":{"number":42}}"#,
        )
        .unwrap();
        let env = |name: &str| {
            Env::from_pairs([
                (GITHUB_EVENT_NAME, name.to_string()),
                (GITHUB_EVENT_PATH, event.display().to_string()),
                (GITHUB_REPOSITORY, "acme/app".to_string()),
            ])
        };
        let pr = pull_request(&env("pull_request_target")).unwrap().unwrap();
        assert_eq!(pr.to_string(), "acme/app#42");
        assert_eq!(pull_request(&env("push")).unwrap(), None);
        std::fs::write(&event, "{}").unwrap();
        assert!(matches!(
            pull_request(&env("pull_request")),
            Err(PostError::Event { .. })
        ));
    }
}
