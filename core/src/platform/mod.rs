//! Posting the run summary where the CI system shows it.
//!
//! 1. [`Platform::detect`] tells which CI kiln runs in from its environment (or takes
//!    `--platform` / `KILN_PLATFORM`): GitHub Actions, GitLab CI, Tekton, Jenkins, or none.
//! 2. [`Outputs::of`] derives the few values every wrapper exposes (image, digest, SBOM
//!    digest, cache hit, skipped) from the [`Summary`], in one place.
//! 3. [`post`] hands the [`Report`] (the summary, or the [`Failure`] of a build that
//!    failed after it was planned) to that platform's module, which writes what the CI reads:
//!    GitHub's step summary, outputs and sticky pull request comment ([`github`]); GitLab's
//!    dotenv report and sticky merge request note ([`gitlab`]); Tekton's result files
//!    ([`tekton`]); Jenkins' summary files ([`jenkins`]); nothing outside a CI (kiln has printed it on
//!    stderr already; `--platform` or `KILN_PLATFORM` names a CI kiln does not recognise).
//!    The Markdown all of them show comes from one renderer ([`markdown`]).
//!
//! Posting never fails a build: every failure becomes a warning through the
//! [`Reporter`], with its cause and a hint.

pub mod github;
pub mod gitlab;
pub mod jenkins;
pub mod markdown;
pub mod tekton;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnose::Diagnose;
use crate::env::Env;
use crate::reporter::{Reporter, Stage};
use crate::summary::{CacheHit, StageTiming, Summary};

/// How long one API request may take before posting gives up on it.
pub(crate) const API_TIMEOUT: Duration = Duration::from_secs(30);

pub use kiln_cli::Platform;

/// The platform named by `KILN_PLATFORM`, else the CI the environment belongs to, in
/// this order: GitHub Actions (`GITHUB_ACTIONS`), GitLab (`GITLAB_CI`), Tekton (a
/// results directory), Jenkins (`JENKINS_URL`), else local.
pub fn detect(env: &Env) -> Platform {
    if let Some(platform) = env.get(crate::env::KILN_PLATFORM).and_then(Platform::named) {
        return platform;
    }
    if env.get(github::GITHUB_ACTIONS) == Some("true") {
        Platform::GitHub
    } else if env.get(gitlab::GITLAB_CI) == Some("true") {
        Platform::GitLab
    } else if tekton::results_dir(env).is_some() {
        Platform::Tekton
    } else if env.get(jenkins::JENKINS_URL).is_some() {
        Platform::Jenkins
    } else {
        Platform::Local
    }
}

/// Whose caches this run's are (see [`kiln_cache::Scope`]): from the CI it runs in, as
/// each platform's module says; Tekton has no such notion (the Task takes a
/// `cache-scope` parameter), and a machine with no CI has one scope.
pub fn cache_scope(env: &Env) -> kiln_cache::Scope {
    match detect(env) {
        Platform::GitHub => github::cache_scope(env),
        Platform::GitLab => gitlab::cache_scope(env),
        Platform::Jenkins => jenkins::cache_scope(env),
        Platform::Tekton => kiln_cache::Scope::new("tekton"),
        Platform::Local => kiln_cache::Scope::default(),
    }
}

/// The values every wrapper exposes, under the names of the GitHub Action's outputs (and
/// `KILN_<NAME>` in GitLab's dotenv, Tekton's results, Jenkins' JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// What was built, as a reference a tool can pull: the pushed
    /// `REGISTRY/REPOSITORY:TAG@sha256:…`, else the local `oci:LAYOUT:NAME:TAG`.
    pub image: String,
    /// The artifact's manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// The digest (`sha256:<hex>`) of the attested CycloneDX SBOM document.
    pub sbom_digest: String,
    /// `true` when every persisted build cache was restored by an exact key match, `false`
    /// on a partial hit or a miss; empty when caching was off or nothing was built.
    pub cache_hit: String,
    /// `true` when nothing was built because the inputs were unchanged.
    pub skipped: String,
}

impl Outputs {
    pub fn of(summary: &Summary) -> Outputs {
        Outputs {
            image: match &summary.push {
                Some(push) => push.reference.clone(),
                None => summary.artifact.oci_reference.clone(),
            },
            digest: summary.artifact.digest.clone(),
            sbom_digest: summary
                .attestation
                .as_ref()
                .map(|att| att.sbom_digest.clone())
                .unwrap_or_default(),
            cache_hit: summary
                .cache
                .as_ref()
                .filter(|cache| !cache.kinds.is_empty())
                .map(|cache| {
                    cache
                        .kinds
                        .iter()
                        .all(|kind| kind.hit == CacheHit::Exact)
                        .to_string()
                })
                .unwrap_or_default(),
            skipped: summary.skipped.to_string(),
        }
    }

    /// `(name, value)` in the GitHub Action's output names: `image`, `digest`,
    /// `sbom-digest`, `cache-hit`, `skipped`.
    pub fn named(&self) -> [(&'static str, &str); 5] {
        [
            ("image", &self.image),
            ("digest", &self.digest),
            ("sbom-digest", &self.sbom_digest),
            ("cache-hit", &self.cache_hit),
            ("skipped", &self.skipped),
        ]
    }

    /// The image reference without its `@sha256:…`, as Tekton Chains wants `IMAGE_URL`.
    pub fn image_url(&self) -> &str {
        match self.image.rsplit_once('@') {
            Some((name, digest)) if digest.contains(':') && !name.starts_with("oci:") => name,
            _ => &self.image,
        }
    }
}

/// A build that failed after it was planned. It is posted where its summary would have
/// gone (the step summary, the sticky comment or note, Jenkins' Markdown file), so a pull
/// request shows the failure rather than the last green run. It sets no outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The artifact's `NAME:TAG` in the layout, as a summary's would be: the sticky
    /// comment's marker carries its name.
    pub reference: String,
    pub project: String,
    pub version: Option<String>,
    /// The stage that failed.
    pub stage: Stage,
    /// The error's message, then its causes ([`crate::diagnose::causes`]).
    pub causes: Vec<String>,
    pub hint: Option<String>,
    /// The stages before the failed one, as a summary lists them.
    pub stages: Vec<StageTiming>,
    pub kiln_version: String,
}

/// What a run has to show: the summary of what it built, or why it failed.
#[derive(Debug, Clone, Copy)]
pub enum Report<'a> {
    Built(&'a Summary),
    Failed(&'a Failure),
}

impl<'a> From<&'a Summary> for Report<'a> {
    fn from(summary: &'a Summary) -> Report<'a> {
        Report::Built(summary)
    }
}

impl<'a> From<&'a Failure> for Report<'a> {
    fn from(failure: &'a Failure) -> Report<'a> {
        Report::Failed(failure)
    }
}

impl<'a> Report<'a> {
    /// The summary, when the build got that far.
    pub fn summary(self) -> Option<&'a Summary> {
        match self {
            Report::Built(summary) => Some(summary),
            Report::Failed(_) => None,
        }
    }
}

/// Why one piece of posting failed. Every one of these is a warning, never a failed build.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("Failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to read the GitHub event `{}` (GITHUB_EVENT_PATH)", path.display())]
    Event {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("`{name}` is not set, so kiln cannot tell where to {what}")]
    Missing {
        name: &'static str,
        what: &'static str,
    },
    #[error("`{name}` is `{value}`, not {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("No token to {what}: {names} is not set")]
    NoToken {
        what: String,
        /// The variables that would have held one.
        names: &'static str,
        platform: Platform,
    },
    #[error("Failed to {what}")]
    Api {
        what: String,
        platform: Platform,
        #[source]
        source: ApiError,
    },
    #[error("Failed to read the CA certificates in `{}` (SSL_CERT_FILE)", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Diagnose for PostError {
    fn hint(&self) -> Option<String> {
        let token = |platform: &Platform| match platform {
            Platform::GitHub => Some(
                "pass a token that may write pull request comments in GITHUB_TOKEN (the job \
                 needs `permissions: pull-requests: write`); pull requests from forks get a \
                 read-only token and so no comment"
                    .to_string(),
            ),
            Platform::GitLab => Some(
                "set KILN_GITLAB_TOKEN to a token with the `api` scope (a project access \
                 token with the Reporter role): CI_JOB_TOKEN cannot write merge request notes"
                    .to_string(),
            ),
            _ => None,
        };
        match self {
            PostError::NoToken { platform, .. } => token(platform),
            PostError::Api {
                platform,
                source:
                    ApiError::Status {
                        status: 401 | 403 | 404,
                        ..
                    },
                ..
            } => token(platform),
            PostError::CaFile { .. } => {
                Some("point SSL_CERT_FILE at a PEM file of CA certificates".into())
            }
            _ => None,
        }
    }
}

/// A CI system's API refused a request or could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{service} answered {status}{}", message_suffix(message))]
    Status {
        service: &'static str,
        status: u16,
        message: String,
    },
    #[error("{service} could not be reached at {url}")]
    Transport {
        service: &'static str,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character
/// boundary: where a size limit cuts text a person reads.
pub(crate) fn prefix_within(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

fn message_suffix(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        String::new()
    } else if line.len() > 200 {
        format!(": {}…", prefix_within(line, 200))
    } else {
        format!(": {line}")
    }
}

/// Where the summary goes, and whether as a comment too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    /// The CI to post to; `None` detects it ([`detect`]).
    pub platform: Option<Platform>,
    /// Whether to write the pull request comment or merge request note. `--no-post`
    /// turns only these off: the CI's outputs, step summary and result files are always
    /// written, since later steps and the wrappers read them.
    pub comments: bool,
}

impl Default for Posting {
    fn default() -> Posting {
        Posting {
            platform: None,
            comments: true,
        }
    }
}

/// Posts `report` as `posting` says. Failures are reported as warnings through
/// `reporter`; the platform posted to is returned.
pub async fn post(
    report: Report<'_>,
    posting: Posting,
    env: &Env,
    reporter: &dyn Reporter,
) -> Platform {
    let platform = posting.platform.unwrap_or_else(|| detect(env));
    let posts = Posts {
        reporter,
        comments: posting.comments,
    };
    match platform {
        Platform::GitHub => github::post(report, env, &posts).await,
        Platform::GitLab => gitlab::post(report, env, &posts).await,
        Platform::Tekton => tekton::post(report, env, &posts),
        Platform::Jenkins => jenkins::post(report, env, &posts),
        // The human summary or error on stderr is all there is.
        Platform::Local => {}
    }
    platform
}

/// What the platform modules report through: each posted thing as a step, each failure
/// as a warning with its causes and hint.
#[derive(Clone, Copy)]
pub(crate) struct Posts<'a> {
    reporter: &'a dyn Reporter,
    comments: bool,
}

impl Posts<'_> {
    /// Whether pull request comments and merge request notes are wanted.
    pub(crate) fn comments(&self) -> bool {
        self.comments
    }

    /// Something was posted.
    pub(crate) fn done(&self, what: &str) {
        self.reporter.step(what);
    }

    /// A result: a step when it worked, a warning when it did not.
    pub(crate) fn outcome(&self, result: Result<String, PostError>) {
        match result {
            Ok(what) => self.done(&what),
            Err(err) => self.failed(&err),
        }
    }

    pub(crate) fn failed(&self, err: &PostError) {
        self.reporter.warn(&warning_text(err));
    }

    /// A warning that is not an error.
    pub(crate) fn warn(&self, message: &str) {
        self.reporter.warn(message);
    }
}

impl fmt::Debug for Posts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Posts").finish_non_exhaustive()
    }
}

/// `err`, its causes and its hint, as one warning.
pub(crate) fn warning_text(err: &PostError) -> String {
    let mut text = format!("{err} (the build is not affected)");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!("\nCaused by: {cause}"));
        source = cause.source();
    }
    if let Some(hint) = err.hint() {
        text.push_str(&format!("\nhint: {hint}"));
    }
    text
}

/// Writes `contents` to `path` whole (temp file, then rename), creating its directory.
pub(crate) fn write_file(path: &Path, contents: &[u8]) -> Result<(), PostError> {
    kiln_cache::fsutil::write_atomic(path, contents).map_err(|source| PostError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Appends `contents` to `path`, as GitHub's `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`
/// files want (other steps' commands write to them too).
pub(crate) fn append_file(path: &Path, contents: &[u8]) -> Result<(), PostError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .map_err(|source| PostError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Parses a summary JSON document, as `kiln build --summary-file` or `--output json`
/// wrote it; `shown` names where it came from.
pub fn parse_summary(text: &str, shown: &str) -> Result<Summary, SummaryFileError> {
    serde_json::from_str(text).map_err(|source| SummaryFileError::Parse {
        path: shown.to_string(),
        source,
    })
}

/// The summary as `--output json` prints it.
pub fn summary_json(summary: &Summary) -> String {
    let mut json = serde_json::to_string_pretty(summary).expect("the summary serialises");
    json.push('\n');
    json
}

/// Writes `summary` as JSON to `path` (`kiln build --summary-file`).
pub fn write_summary(path: &Path, summary: &Summary) -> Result<(), SummaryFileError> {
    kiln_cache::fsutil::write_atomic(path, summary_json(summary).as_bytes()).map_err(|source| {
        SummaryFileError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// A summary JSON file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SummaryFileError {
    #[error("Failed to read the summary `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a kiln summary")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("No summary to post: `--summary` is not given and stdin is a terminal")]
    NoInput,
    #[error("Failed to write the summary to `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for SummaryFileError {
    fn hint(&self) -> Option<String> {
        match self {
            SummaryFileError::Read { .. } | SummaryFileError::NoInput => Some(
                "write one with `kiln build --summary-file kiln-summary.json`, then run \
                 `kiln summary post --summary kiln-summary.json`"
                    .into(),
            ),
            SummaryFileError::Parse { .. } => Some(
                "post the JSON that `kiln build --summary-file` (or `--output json`) of the \
                 same kiln version wrote"
                    .into(),
            ),
            SummaryFileError::Write { .. } => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::summary::*;

    /// A summary like a real build's.
    pub(crate) fn summary() -> Summary {
        Summary {
            schema_version: SCHEMA_VERSION,
            kiln_version: "0.1.0".into(),
            project: ProjectSummary {
                name: "hello".into(),
                version: Some("1.2.3".into()),
                language: "rust".into(),
                path: "/work/hello".into(),
                entry: "hello".into(),
            },
            build: BuildSummary {
                toolchain: "rustup 1.95.0".into(),
                wasm_kind: "module".into(),
                facts: vec![Fact {
                    name: "target".into(),
                    value: "wasm32-wasip1".into(),
                }],
                isolation: Some("namespaces".into()),
            },
            artifact: ArtifactSummary {
                digest: format!("sha256:{}", "a".repeat(64)),
                layer_digest: format!("sha256:{}", "b".repeat(64)),
                size: 795_000,
                os: "wasip1".into(),
                layout: "/work/hello/.kiln/oci".into(),
                reference: "hello:1.2.3".into(),
                oci_reference: "oci:/work/hello/.kiln/oci:hello:1.2.3".into(),
                created: None,
            },
            inputs_digest: format!("sha256:{}", "c".repeat(64)),
            skipped: false,
            push: None,
            signature: Some(SignatureSummary {
                tag: format!("sha256-{}.sig", "a".repeat(64)),
                digest: format!("sha256:{}", "d".repeat(64)),
                key: "kiln's local development key".into(),
                reused: false,
            }),
            attestation: Some(AttestationSummary {
                tag: format!("sha256-{}.att", "a".repeat(64)),
                digest: format!("sha256:{}", "e".repeat(64)),
                predicate_type: "https://cyclonedx.org/bom".into(),
                sbom_path: "/work/hello/.kiln/sbom.cdx.json".into(),
                sbom_digest: format!("sha256:{}", "f".repeat(64)),
                components: 12,
                reused: false,
            }),
            cache: None,
            stages: vec![StageTiming {
                skipped: None,
                stage: crate::reporter::Stage::Build,
                seconds: 1.5,
            }],
        }
    }

    #[test]
    fn detection_order_and_override() {
        let detect = |pairs: &[(&str, &str)]| detect(&Env::from_pairs(pairs.iter().copied()));
        assert_eq!(detect(&[]), Platform::Local);
        assert_eq!(detect(&[("GITHUB_ACTIONS", "true")]), Platform::GitHub);
        assert_eq!(detect(&[("GITLAB_CI", "true")]), Platform::GitLab);
        assert_eq!(detect(&[("JENKINS_URL", "https://ci/")]), Platform::Jenkins);
        assert_eq!(
            detect(&[("KILN_TEKTON_RESULTS", "/tmp"), ("JENKINS_URL", "x")]),
            Platform::Tekton
        );
        assert_eq!(
            detect(&[("GITHUB_ACTIONS", "true"), ("KILN_PLATFORM", "local")]),
            Platform::Local
        );
        assert_eq!(detect(&[("KILN_PLATFORM", "GitLab")]), Platform::GitLab);
    }

    #[test]
    fn outputs_name_the_pushed_reference_else_the_layout() {
        let mut s = summary();
        let outputs = Outputs::of(&s);
        assert_eq!(outputs.image, "oci:/work/hello/.kiln/oci:hello:1.2.3");
        assert_eq!(outputs.image_url(), outputs.image);
        assert_eq!(outputs.skipped, "false");
        assert_eq!(outputs.sbom_digest, format!("sha256:{}", "f".repeat(64)));
        assert_eq!(outputs.cache_hit, "");
        let kind = |hit| CacheKindSummary {
            kind: "cargo".into(),
            key: "k".into(),
            hit,
            restored_key: None,
            files_restored: 0,
            bytes_restored: 0,
            saved: false,
            save_skipped: None,
            bytes_saved: 0,
            bytes_uploaded: 0,
            chunks_uploaded: 0,
            chunks_reused: 0,
        };
        let mut cache = CacheSummary {
            store: "/cache".into(),
            scope: "local".into(),
            read_scopes: Vec::new(),
            kinds: vec![kind(CacheHit::Exact)],
            restore_seconds: 0.0,
            save_seconds: 0.0,
            warnings: vec![],
        };
        s.cache = Some(cache.clone());
        assert_eq!(Outputs::of(&s).cache_hit, "true");
        cache.kinds.push(kind(CacheHit::Partial));
        s.cache = Some(cache);
        assert_eq!(Outputs::of(&s).cache_hit, "false");
        s.push = Some(PushSummary {
            reference: format!("ghcr.io/acme/hello:1.2.3@{}", s.artifact.digest),
            digest: s.artifact.digest.clone(),
            bytes_sent: 1,
            bytes_skipped: 0,
            up_to_date: false,
        });
        let outputs = Outputs::of(&s);
        assert_eq!(outputs.image_url(), "ghcr.io/acme/hello:1.2.3");
        assert_eq!(outputs.digest, s.artifact.digest);
    }

    #[test]
    fn warnings_carry_cause_and_hint() {
        let err = PostError::Api {
            what: "update the merge request note".into(),
            platform: Platform::GitLab,
            source: ApiError::Status {
                service: "GitLab",
                status: 403,
                message: "{\"message\":\"403 Forbidden\"}".into(),
            },
        };
        let text = warning_text(&err);
        assert!(
            text.starts_with("Failed to update the merge request note"),
            "{text}"
        );
        assert!(text.contains("Caused by: GitLab answered 403"), "{text}");
        assert!(text.contains("CI_JOB_TOKEN cannot write"), "{text}");
    }
}
