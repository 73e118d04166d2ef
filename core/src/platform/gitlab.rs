//! GitLab CI/CD: a dotenv report for job outputs, and one sticky merge request note per
//! artifact.
//!
//! 1. Writes the outputs as a dotenv file (`KILN_DOTENV`, default `kiln.env`; the
//!    component declares it as `artifacts:reports:dotenv`): keys `KILN_IMAGE`,
//!    `KILN_DIGEST`, `KILN_SBOM_DIGEST`, `KILN_CACHE_HIT`, `KILN_SKIPPED`, one line each,
//!    within GitLab's 5 KB.
//! 2. In a merge request pipeline (`CI_MERGE_REQUEST_IID`), with `KILN_GITLAB_TOKEN`, lists
//!    the merge request's notes through `CI_API_V4_URL`, updates the one holding kiln's
//!    marker for this artifact, or creates it. `CI_JOB_TOKEN` cannot write notes.

use std::path::PathBuf;

use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::markdown::{self, GITLAB_NOTE_LIMIT};
use super::{ApiError, Outputs, Platform, PostError, Posts, Report};
use crate::env::Env;
use crate::summary::Summary;

/// `true` in every GitLab CI job.
pub const GITLAB_CI: &str = "GITLAB_CI";
/// The merge request's number within its project, in merge request pipelines.
pub const CI_MERGE_REQUEST_IID: &str = "CI_MERGE_REQUEST_IID";
/// `true` when the pipeline's ref is protected.
pub const CI_COMMIT_REF_PROTECTED: &str = "CI_COMMIT_REF_PROTECTED";

/// Whose caches this pipeline's are, as GitLab separates its own: protected refs'
/// pipelines and all others never share a cache, either way.
pub fn cache_scope(env: &Env) -> kiln_cache::Scope {
    if env.get(CI_COMMIT_REF_PROTECTED) == Some("true") {
        kiln_cache::Scope::new("gitlab-protected")
    } else {
        kiln_cache::Scope::new("gitlab-unprotected")
    }
}
/// The project's numeric id.
pub const CI_PROJECT_ID: &str = "CI_PROJECT_ID";
/// The REST API's root, `https://HOST/api/v4`.
pub const CI_API_V4_URL: &str = "CI_API_V4_URL";

/// The dotenv report's default path, relative to the job's working directory.
pub const DEFAULT_DOTENV: &str = "kiln.env";
/// GitLab's limit on a dotenv report.
pub const DOTENV_LIMIT: usize = 5 * 1024;
/// At most this many pages of 100 notes are searched for kiln's.
const MAX_NOTE_PAGES: u32 = 50;

pub(crate) async fn post(report: Report<'_>, env: &Env, posts: &Posts<'_>) {
    if let Some(summary) = report.summary() {
        write_dotenv(summary, env, posts);
    }
    if let Some(iid) = env.get(CI_MERGE_REQUEST_IID).filter(|_| posts.comments()) {
        posts.outcome(note(report, env, iid).await);
    }
}

/// The dotenv report of a build's outputs (a failed build has none).
fn write_dotenv(summary: &Summary, env: &Env, posts: &Posts<'_>) {
    let path = env
        .path(crate::env::KILN_DOTENV)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DOTENV));
    let (text, dropped) = dotenv(&dotenv_pairs(&Outputs::of(summary)));
    if !dropped.is_empty() {
        posts.warn(&format!(
            "Left {} out of the dotenv report: it would pass GitLab's {DOTENV_LIMIT} bytes",
            dropped.join(", ")
        ));
    }
    posts.outcome(
        super::write_file(&path, text.as_bytes())
            .map(|()| format!("wrote the dotenv report {}", path.display())),
    );
}

/// The outputs under their dotenv names.
pub fn dotenv_pairs(outputs: &Outputs) -> Vec<(String, String)> {
    outputs
        .named()
        .iter()
        .map(|(name, value)| {
            (
                format!("KILN_{}", name.replace('-', "_").to_uppercase()),
                value.to_string(),
            )
        })
        .collect()
}

/// A dotenv file GitLab accepts: keys of `[A-Za-z0-9_]` only, values on one line, at most
/// [`DOTENV_LIMIT`] bytes. Returns the text and the keys left out to stay within it.
pub fn dotenv(pairs: &[(String, String)]) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut dropped = Vec::new();
    for (key, value) in pairs {
        let key: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let value: String = value
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        let line = format!("{key}={value}\n");
        if key.is_empty() || text.len() + line.len() > DOTENV_LIMIT {
            dropped.push(key);
        } else {
            text.push_str(&line);
        }
    }
    (text, dropped)
}

/// The part of a note kiln reads.
#[derive(Debug, Deserialize)]
struct Note {
    id: u64,
    #[serde(default)]
    body: String,
    #[serde(default)]
    system: bool,
    author: Option<User>,
}

/// A GitLab user, as `GET /user` and a note's `author` show it.
#[derive(Debug, Deserialize)]
struct User {
    id: u64,
}

/// Creates or updates kiln's note for this artifact on merge request `iid`.
async fn note(report: Report<'_>, env: &Env, iid: &str) -> Result<String, PostError> {
    let what = format!("write a note on merge request !{iid}");
    let token = env
        .get(crate::env::KILN_GITLAB_TOKEN)
        .map(|t| SecretString::from(t.to_string()))
        .ok_or_else(|| PostError::NoToken {
            what: what.clone(),
            names: crate::env::KILN_GITLAB_TOKEN,
            platform: Platform::GitLab,
        })?;
    let api = env
        .get(CI_API_V4_URL)
        .ok_or(PostError::Missing {
            name: CI_API_V4_URL,
            what: "write the merge request note",
        })?
        .trim_end_matches('/');
    let project = env.get(CI_PROJECT_ID).ok_or(PostError::Missing {
        name: CI_PROJECT_ID,
        what: "write the merge request note",
    })?;
    let client = client(&token, api, env)?;
    let failed = |what: String| {
        move |source: ApiError| PostError::Api {
            what,
            platform: Platform::GitLab,
            source,
        }
    };

    let notes_url = format!("{api}/projects/{project}/merge_requests/{iid}/notes");
    let marker = markdown::marker(report);
    // The marker is text anyone can paste: only a note by the token's own user is kiln's
    // to update. When the token may not ask who it is, kiln writes a new note.
    let user_url = format!("{api}/user");
    let own = match send(client.get(&user_url), &user_url).await {
        Ok(response) => response.json::<User>().await.ok().map(|user| user.id),
        Err(_) => None,
    };
    let listed = format!("list the notes of merge request !{iid}");
    let mut existing = None;
    let mut page = 1;
    while existing.is_none() && page <= MAX_NOTE_PAGES {
        let request = client.get(&notes_url).query(&[
            ("per_page", "100"),
            ("sort", "asc"),
            ("order_by", "created_at"),
            ("page", &page.to_string()),
        ]);
        let response = send(request, &notes_url)
            .await
            .map_err(failed(listed.clone()))?;
        let next = response
            .headers()
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let notes: Vec<Note> = response
            .json()
            .await
            .map_err(|e| transport(&notes_url, e))
            .map_err(failed(listed.clone()))?;
        existing = notes
            .into_iter()
            .find(|n| {
                !n.system
                    && own.is_some()
                    && n.author.as_ref().map(|a| a.id) == own
                    && n.body.contains(&marker)
            })
            .map(|n| n.id);
        match next {
            Some(next) if next > page => page = next,
            _ => break,
        }
    }

    let body = serde_json::json!({ "body": markdown::sticky(report, GITLAB_NOTE_LIMIT) });
    match existing {
        Some(id) => {
            let url = format!("{notes_url}/{id}");
            send(client.put(&url).json(&body), &url)
                .await
                .map_err(failed(format!(
                    "update kiln's note on merge request !{iid}"
                )))?;
            Ok(format!("updated the note on merge request !{iid}"))
        }
        None => {
            send(client.post(&notes_url).json(&body), &notes_url)
                .await
                .map_err(failed(what))?;
            Ok(format!("wrote a note on merge request !{iid}"))
        }
    }
}

/// A client that authenticates with `PRIVATE-TOKEN` and trusts `SSL_CERT_FILE` too.
fn client(token: &SecretString, api: &str, env: &Env) -> Result<reqwest::Client, PostError> {
    let mut headers = HeaderMap::new();
    let mut value =
        HeaderValue::from_str(token.expose_secret()).map_err(|_| PostError::NoToken {
            what: "use KILN_GITLAB_TOKEN: it is not a valid header value".into(),
            names: crate::env::KILN_GITLAB_TOKEN,
            platform: Platform::GitLab,
        })?;
    value.set_sensitive(true);
    headers.insert("PRIVATE-TOKEN", value);
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .timeout(super::API_TIMEOUT);
    if let Some(path) = env.var("SSL_CERT_FILE") {
        let ca_error = |source: Box<dyn std::error::Error + Send + Sync>| PostError::CaFile {
            path: PathBuf::from(&path),
            source,
        };
        let pem = std::fs::read(&path).map_err(|e| ca_error(e.into()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.into()))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| PostError::Api {
        what: "set up the GitLab API client".into(),
        platform: Platform::GitLab,
        source: transport(api, e),
    })
}

/// Sends `request`; a status other than 2xx is an error carrying GitLab's message.
async fn send(request: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, ApiError> {
    let response = request.send().await.map_err(|e| transport(url, e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    #[derive(Deserialize)]
    struct Message {
        message: Option<serde_json::Value>,
        error: Option<String>,
    }
    let message = match serde_json::from_str::<Message>(&text) {
        Ok(Message {
            message: Some(serde_json::Value::String(m)),
            ..
        }) => m,
        Ok(Message {
            message: Some(other),
            ..
        }) => other.to_string(),
        Ok(Message { error: Some(e), .. }) => e,
        _ => text,
    };
    Err(ApiError::Status {
        service: "GitLab",
        status: status.as_u16(),
        message,
    })
}

fn transport(url: &str, err: reqwest::Error) -> ApiError {
    ApiError::Transport {
        service: "GitLab",
        url: url.to_string(),
        source: Box::new(err.without_url()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_keys_and_values_are_what_gitlab_accepts() {
        let (text, dropped) = dotenv(&[
            ("KILN_IMAGE".into(), "reg/app:1@sha256:ab".into()),
            ("kiln-odd key".into(), "two\nlines\r\n".into()),
        ]);
        assert_eq!(
            text,
            "KILN_IMAGE=reg/app:1@sha256:ab\nkiln_odd_key=two lines  \n"
        );
        assert!(dropped.is_empty());
    }

    #[test]
    fn dotenv_stays_within_five_kilobytes() {
        let pairs: Vec<_> = (0..10)
            .map(|i| (format!("KEY{i}"), "v".repeat(1000)))
            .collect();
        let (text, dropped) = dotenv(&pairs);
        assert!(text.len() <= DOTENV_LIMIT);
        assert_eq!(text.lines().count(), 5);
        assert_eq!(dropped, ["KEY5", "KEY6", "KEY7", "KEY8", "KEY9"]);
    }

    #[test]
    fn outputs_become_kiln_variables() {
        let outputs = Outputs::of(&crate::platform::tests::summary());
        let keys: Vec<_> = dotenv_pairs(&outputs).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "KILN_IMAGE",
                "KILN_DIGEST",
                "KILN_SBOM_DIGEST",
                "KILN_CACHE_HIT",
                "KILN_SKIPPED"
            ]
        );
    }
}
