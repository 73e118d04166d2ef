//! Jenkins: summary files the `kilnBuild` step archives and returns.
//!
//! 1. Picks the directory: `KILN_SUMMARY_DIR`, else the job's `WORKSPACE`, else the
//!    working directory.
//! 2. Writes `kiln-summary.md`, the Markdown every CI shows, and `kiln-summary.json`, the
//!    summary itself, which the step parses and returns.

use std::path::PathBuf;

use super::Posts;
use crate::env::Env;

/// Set by Jenkins in every build: how kiln knows it runs there.
pub const JENKINS_URL: &str = "JENKINS_URL";
/// The build's workspace directory.
pub const WORKSPACE: &str = "WORKSPACE";
/// The Markdown summary's file name.
pub const MARKDOWN_FILE: &str = "kiln-summary.md";
/// The JSON summary's file name.
pub const JSON_FILE: &str = "kiln-summary.json";

/// A multibranch pipeline's branch, or `PR-N` for a change request.
pub const BRANCH_NAME: &str = "BRANCH_NAME";
/// A change request's (pull or merge request's) id.
pub const CHANGE_ID: &str = "CHANGE_ID";
/// The branch a change request targets.
pub const CHANGE_TARGET: &str = "CHANGE_TARGET";

/// Whose caches this build's are: a multibranch pipeline's branch, or its change
/// request, which also reads the branch it targets; a single-branch job has one scope.
pub fn cache_scope(env: &Env) -> kiln_cache::Scope {
    use kiln_cache::Scope;
    let nonempty = |name| env.get(name).filter(|v: &&str| !v.is_empty());
    match (nonempty(CHANGE_ID), nonempty(BRANCH_NAME)) {
        (Some(id), _) => {
            let scope = Scope::new(format!("change/{id}"));
            match nonempty(CHANGE_TARGET) {
                Some(target) => scope.reading(format!("refs/heads/{target}")),
                None => scope,
            }
        }
        (None, Some(branch)) => Scope::new(format!("refs/heads/{branch}")),
        (None, None) => Scope::new("jenkins"),
    }
}

/// Where the summary files go.
pub fn summary_dir(env: &Env) -> PathBuf {
    env.path(crate::env::KILN_SUMMARY_DIR)
        .or_else(|| env.path(WORKSPACE))
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn post(report: super::Report<'_>, env: &Env, posts: &Posts<'_>) {
    let dir = summary_dir(env);
    let markdown = super::markdown::truncate(
        super::markdown::render(report),
        super::markdown::STEP_SUMMARY_LIMIT,
    );
    let path = dir.join(MARKDOWN_FILE);
    posts.outcome(
        super::write_file(&path, markdown.as_bytes())
            .map(|()| format!("wrote the summary to {}", path.display())),
    );
    // A failed build has a Markdown summary only; the JSON describes a built artifact,
    // so none is left behind from an earlier build either.
    let path = dir.join(JSON_FILE);
    let Some(summary) = report.summary() else {
        if let Err(err) = std::fs::remove_file(&path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            posts.failed(&super::PostError::Write { path, source: err });
        }
        return;
    };
    posts.outcome(
        super::write_file(&path, super::summary_json(summary).as_bytes())
            .map(|()| format!("wrote the summary JSON to {}", path.display())),
    );
}
