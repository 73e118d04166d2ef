//! `kiln summary post` in each CI: GitHub's step summary, outputs and sticky pull request
//! comment, GitLab's dotenv report and sticky merge request note, Tekton's results,
//! Jenkins' files. The GitHub and GitLab APIs are faked in-process (wiremock) by small
//! stateful comment stores, since no real GitHub or GitLab can be run here; the fakes
//! also serve the failure path (a 500) that must leave the build green.
//!
//! The summaries are written by hand, so no toolchain is needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use common::{TestContext, assert_exit, assert_success, stderr};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const MARKER_HELLO: &str = "<!-- kiln-summary: hello -->";

/// The SBOM digest every test summary attests.
fn sbom_digest() -> String {
    format!("sha256:{}", "5".repeat(64))
}

/// A summary as `kiln build --summary-file` writes it, for artifact `name`; `digest_hex`
/// is repeated into its digests, so two builds can differ. A pushed one also restored
/// its cargo cache by an exact hit.
fn summary(name: &str, digest_hex: char, pushed: bool) -> Value {
    let digest = format!("sha256:{}", digest_hex.to_string().repeat(64));
    json!({
        "schema_version": 1,
        "kiln_version": "0.1.0",
        "project": {
            "name": name,
            "version": "1.2.3",
            "language": "rust",
            "path": "/work/app",
            "entry": name
        },
        "build": {
            "toolchain": "rustup (rustc 1.95.0)",
            "wasm_kind": "module",
            "facts": [{ "name": "target", "value": "wasm32-wasip1" }]
        },
        "artifact": {
            "digest": digest,
            "layer_digest": format!("sha256:{}", "b".repeat(64)),
            "size": 795000,
            "os": "wasip1",
            "layout": "/work/app/.kiln/oci",
            "reference": format!("{name}:1.2.3"),
            "oci_reference": format!("oci:/work/app/.kiln/oci:{name}:1.2.3"),
            "created": null
        },
        "inputs_digest": format!("sha256:{}", "c".repeat(64)),
        "skipped": false,
        "push": if pushed {
            json!({
                "reference": format!("registry.example/acme/{name}:1.2.3@{digest}"),
                "digest": digest,
                "bytes_sent": 795000,
                "bytes_skipped": 0,
                "up_to_date": false
            })
        } else {
            Value::Null
        },
        "signature": {
            "tag": format!("sha256-{}.sig", digest_hex.to_string().repeat(64)),
            "digest": format!("sha256:{}", "6".repeat(64)),
            "key": "cosign.key",
            "reused": false
        },
        "attestation": {
            "tag": format!("sha256-{}.att", digest_hex.to_string().repeat(64)),
            "digest": format!("sha256:{}", "7".repeat(64)),
            "predicate_type": "https://cyclonedx.org/bom",
            "sbom_path": "/work/app/.kiln/sbom.cdx.json",
            "sbom_digest": sbom_digest(),
            "components": 12,
            "reused": false
        },
        "cache": if pushed {
            json!({
                "store": "/cache",
                "scope": "refs/heads/main",
                "read_scopes": [],
                "kinds": [{
                    "kind": "cargo",
                    "key": "cargo-abc",
                    "hit": "exact",
                    "restored_key": "cargo-abc",
                    "files_restored": 10,
                    "bytes_restored": 1000,
                    "saved": false,
                    "save_skipped": "exact hit",
                    "bytes_saved": 0,
                    "bytes_uploaded": 0,
                    "chunks_uploaded": 0,
                    "chunks_reused": 0
                }],
                "restore_seconds": 0.5,
                "save_seconds": 0.0,
                "warnings": []
            })
        } else {
            Value::Null
        },
        "stages": [{ "stage": "build", "seconds": 1.5 }, { "stage": "store", "seconds": 0.1 }]
    })
}

fn write_summary(ctx: &TestContext, file: &str, summary: &Value) -> PathBuf {
    let path = ctx.path().join(file);
    std::fs::write(&path, serde_json::to_string_pretty(summary).unwrap()).unwrap();
    path
}

/// `kiln summary post --summary FILE` with only `vars` (and PATH) in its environment, so
/// the CI this test runs under is not detected.
fn post(ctx: &TestContext, summary: &Path, vars: &[(&str, String)]) -> Output {
    let mut cmd = ctx.kiln();
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ctx.path())
        .env("NO_COLOR", "1")
        .env("KILN_NO_PROGRESS", "1")
        .args(["summary", "post", "--summary"])
        .arg(summary);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

/// Comments (GitHub) or notes (GitLab) on one pull or merge request, by id.
#[derive(Clone, Default)]
struct Thread {
    items: Arc<Mutex<Vec<(u64, String, String)>>>,
}

/// The user the fake API says the token belongs to.
const TOKEN_USER: &str = "kiln-bot";

/// A GitLab user id for `name`: the token's user is 7.
fn user_id(name: &str) -> u64 {
    if name == TOKEN_USER {
        7
    } else {
        100 + name.len() as u64
    }
}

impl Thread {
    fn bodies(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b, _)| b.clone())
            .collect()
    }

    fn list(&self) -> Value {
        Value::Array(
            self.items
                .lock()
                .unwrap()
                .iter()
                .map(|(id, body, author)| {
                    json!({
                        "id": id,
                        "body": body,
                        "system": false,
                        "user": {"login": author},
                        "author": {"id": user_id(author), "username": author}
                    })
                })
                .collect(),
        )
    }

    fn create(&self, body: String) -> Value {
        self.create_by(TOKEN_USER, body)
    }

    fn create_by(&self, author: &str, body: String) -> Value {
        let mut items = self.items.lock().unwrap();
        let id = 1000 + items.len() as u64;
        items.push((id, body.clone(), author.to_string()));
        json!({ "id": id, "body": body })
    }

    fn update(&self, id: u64, body: String) -> Option<Value> {
        let mut items = self.items.lock().unwrap();
        let item = items.iter_mut().find(|(i, _, _)| *i == id)?;
        item.1 = body.clone();
        Some(json!({ "id": id, "body": body }))
    }
}

/// The fake API's behaviour for one route.
struct Route {
    thread: Thread,
    action: fn(&Thread, &Request) -> ResponseTemplate,
}

impl Respond for Route {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        (self.action)(&self.thread, request)
    }
}

fn body_of(request: &Request) -> String {
    request.body_json::<Value>().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string()
}

fn id_of(request: &Request) -> u64 {
    request
        .url
        .path_segments()
        .unwrap()
        .next_back()
        .unwrap()
        .parse()
        .unwrap()
}

/// A fake GitHub REST API under `/api/v3` (as GHES serves it) holding the comments of
/// acme/app#7; it answers only requests carrying the token.
async fn fake_github(thread: &Thread) -> MockServer {
    let server = MockServer::start().await;
    let comments = "/api/v3/repos/acme/app/issues/7/comments";
    let auth = || header("authorization", "Bearer gh-t0ken");
    let route = |action| Route {
        thread: thread.clone(),
        action,
    };
    Mock::given(method("GET"))
        .and(path("/api/v3/user"))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": TOKEN_USER})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(comments))
        .and(auth())
        .respond_with(route(|t, _| {
            ResponseTemplate::new(200).set_body_json(t.list())
        }))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(comments))
        .and(auth())
        .respond_with(route(|t, r| {
            ResponseTemplate::new(201).set_body_json(t.create(body_of(r)))
        }))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/api/v3/repos/acme/app/issues/comments/\d+$"))
        .and(auth())
        .respond_with(route(|t, r| match t.update(id_of(r), body_of(r)) {
            Some(comment) => ResponseTemplate::new(200).set_body_json(comment),
            None => ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
        }))
        .mount(&server)
        .await;
    server
}

/// The environment of a `pull_request` job on acme/app#7.
fn github_env(ctx: &TestContext, api: &str) -> Vec<(&'static str, String)> {
    let event = ctx.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"action":"synchronize","number":7,"pull_request":{"number":7}}"#,
    )
    .unwrap();
    vec![
        ("GITHUB_ACTIONS", "true".into()),
        ("GITHUB_EVENT_NAME", "pull_request".into()),
        ("GITHUB_EVENT_PATH", event.display().to_string()),
        ("GITHUB_REPOSITORY", "acme/app".into()),
        ("GITHUB_API_URL", format!("{api}/api/v3")),
        ("GITHUB_TOKEN", "gh-t0ken".into()),
        (
            "GITHUB_STEP_SUMMARY",
            ctx.path().join("step-summary.md").display().to_string(),
        ),
        (
            "GITHUB_OUTPUT",
            ctx.path().join("output.txt").display().to_string(),
        ),
    ]
}

async fn requests(server: &MockServer, verb: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == verb)
        .count()
}

#[tokio::test]
async fn github_comment_is_created_once_then_updated_in_place() {
    let ctx = TestContext::new();
    let thread = Thread::default();
    thread.create_by("reviewer", "LGTM, a human comment".into());
    // Someone else pasted kiln's marker: not kiln's comment to take over.
    thread.create_by("mallory", format!("{MARKER_HELLO}\nfake summary"));
    let server = fake_github(&thread).await;
    let env = github_env(&ctx, &server.uri());

    let first = write_summary(&ctx, "first.json", &summary("hello", 'a', true));
    let out = post(&ctx, &first, &env);
    assert_success(&out);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let bodies = thread.bodies();
    assert_eq!(bodies.len(), 3, "one comment created: {bodies:?}");
    assert!(bodies[2].starts_with(MARKER_HELLO), "{}", bodies[2]);
    assert!(bodies[2].contains(&"a".repeat(64)), "{}", bodies[2]);
    assert!(
        bodies[2].contains("registry.example/acme/hello:1.2.3@sha256:"),
        "{}",
        bodies[2]
    );

    // A later run of the same job: the same comment, now with the new digest.
    let second = write_summary(&ctx, "second.json", &summary("hello", 'd', true));
    let out = post(&ctx, &second, &env);
    assert_success(&out);
    let bodies = thread.bodies();
    assert_eq!(bodies.len(), 3, "updated, not duplicated: {bodies:?}");
    assert!(bodies[2].starts_with(MARKER_HELLO));
    assert!(bodies[2].contains(&"d".repeat(64)), "{}", bodies[2]);
    assert!(!bodies[2].contains(&"a".repeat(64)));
    assert_eq!(bodies[0], "LGTM, a human comment");
    assert_eq!(bodies[1], format!("{MARKER_HELLO}\nfake summary"));
    assert_eq!(requests(&server, "POST").await, 1);
    assert_eq!(requests(&server, "PATCH").await, 1);

    // Another kiln job in the same pull request keeps a comment of its own.
    let other = write_summary(&ctx, "other.json", &summary("other", 'e', false));
    assert_success(&post(&ctx, &other, &env));
    let bodies = thread.bodies();
    assert_eq!(bodies.len(), 4, "{bodies:?}");
    assert!(bodies[3].starts_with("<!-- kiln-summary: other -->"));
    assert!(
        bodies[2].contains(&"d".repeat(64)),
        "hello's comment untouched"
    );

    // Step summary and outputs: appended on each run.
    let step_summary = std::fs::read_to_string(ctx.path().join("step-summary.md")).unwrap();
    assert_eq!(step_summary.matches("### kiln built `hello`").count(), 2);
    assert!(
        step_summary.contains("| **Digest** | `sha256:dddd"),
        "{step_summary}"
    );
    assert!(!step_summary.contains(MARKER_HELLO));
    let outputs = std::fs::read_to_string(ctx.path().join("output.txt")).unwrap();
    let first_run: Vec<&str> = outputs.lines().take(5).collect();
    assert_eq!(
        first_run,
        [
            format!(
                "image=registry.example/acme/hello:1.2.3@sha256:{}",
                "a".repeat(64)
            )
            .as_str(),
            format!("digest=sha256:{}", "a".repeat(64)).as_str(),
            format!("sbom-digest={}", sbom_digest()).as_str(),
            "cache-hit=true",
            "skipped=false",
        ]
    );
    assert!(outputs.contains("image=oci:/work/app/.kiln/oci:other:1.2.3\n"));
    assert!(
        outputs.ends_with("cache-hit=\nskipped=false\n"),
        "{outputs}"
    );
}

#[tokio::test]
async fn github_api_failure_is_a_warning_not_a_failure() {
    let ctx = TestContext::new();
    let server = MockServer::start().await;
    Mock::given(path_regex("^/api/v3/"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "Server Error"})))
        .mount(&server)
        .await;
    let env = github_env(&ctx, &server.uri());
    let file = write_summary(&ctx, "summary.json", &summary("hello", 'a', true));
    let out = post(&ctx, &file, &env);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("warning: Failed to list the comments of pull request acme/app#7"),
        "{err}"
    );
    assert!(err.contains("GitHub answered 500: Server Error"), "{err}");
    assert!(err.contains("the build is not affected"), "{err}");
    assert!(
        !err.contains("gh-t0ken"),
        "the token is never printed: {err}"
    );
    // What does not need the API was still written.
    assert!(ctx.path().join("step-summary.md").is_file());
    assert!(
        std::fs::read_to_string(ctx.path().join("output.txt"))
            .unwrap()
            .contains("skipped=false\n")
    );
    assert!(requests(&server, "POST").await == 0);
}

#[tokio::test]
async fn github_without_a_token_warns_with_the_permission_to_grant() {
    let ctx = TestContext::new();
    let server = MockServer::start().await;
    let mut env = github_env(&ctx, &server.uri());
    env.retain(|(name, _)| *name != "GITHUB_TOKEN");
    let file = write_summary(&ctx, "summary.json", &summary("hello", 'a', false));
    let out = post(&ctx, &file, &env);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("No token to comment on pull request acme/app#7"),
        "{err}"
    );
    assert!(err.contains("pull-requests: write"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// A fake GitLab API holding the notes of merge request !3 of project 42.
async fn fake_gitlab(thread: &Thread) -> MockServer {
    let server = MockServer::start().await;
    let notes = "/api/v4/projects/42/merge_requests/3/notes";
    let token = || header("private-token", "gl-t0ken");
    let route = |action| Route {
        thread: thread.clone(),
        action,
    };
    Mock::given(method("GET"))
        .and(path("/api/v4/user"))
        .and(token())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": user_id(TOKEN_USER), "username": TOKEN_USER})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(notes))
        .and(token())
        .respond_with(route(|t, _| {
            ResponseTemplate::new(200).set_body_json(t.list())
        }))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(notes))
        .and(token())
        .respond_with(route(|t, r| {
            ResponseTemplate::new(201).set_body_json(t.create(body_of(r)))
        }))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(
            r"^/api/v4/projects/42/merge_requests/3/notes/\d+$",
        ))
        .and(token())
        .respond_with(route(|t, r| match t.update(id_of(r), body_of(r)) {
            Some(note) => ResponseTemplate::new(200).set_body_json(note),
            None => ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"})),
        }))
        .mount(&server)
        .await;
    server
}

fn gitlab_env(ctx: &TestContext, api: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GITLAB_CI", "true".into()),
        ("CI_MERGE_REQUEST_IID", "3".into()),
        ("CI_PROJECT_ID", "42".into()),
        ("CI_API_V4_URL", format!("{api}/api/v4")),
        ("CI_JOB_TOKEN", "job-token".into()),
        ("KILN_GITLAB_TOKEN", "gl-t0ken".into()),
        (
            "KILN_DOTENV",
            ctx.path().join("reports/kiln.env").display().to_string(),
        ),
    ]
}

#[tokio::test]
async fn gitlab_note_is_created_once_then_updated_and_dotenv_written() {
    let ctx = TestContext::new();
    let thread = Thread::default();
    // Someone else pasted kiln's marker: not kiln's note to take over.
    thread.create_by("mallory", format!("{MARKER_HELLO}\nfake summary"));
    let server = fake_gitlab(&thread).await;
    let env = gitlab_env(&ctx, &server.uri());

    let first = write_summary(&ctx, "first.json", &summary("hello", 'a', true));
    let out = post(&ctx, &first, &env);
    assert_success(&out);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(thread.bodies().len(), 2);
    assert!(thread.bodies()[1].starts_with(MARKER_HELLO));

    let second = write_summary(&ctx, "second.json", &summary("hello", 'd', true));
    assert_success(&post(&ctx, &second, &env));
    let bodies = thread.bodies();
    assert_eq!(bodies.len(), 2, "updated, not duplicated");
    assert_eq!(bodies[0], format!("{MARKER_HELLO}\nfake summary"));
    let bodies = &bodies[1..];
    assert!(bodies[0].contains(&"d".repeat(64)), "{}", bodies[0]);
    assert_eq!(requests(&server, "POST").await, 1);
    assert_eq!(requests(&server, "PUT").await, 1);

    let dotenv = std::fs::read_to_string(ctx.path().join("reports/kiln.env")).unwrap();
    let digest = format!("sha256:{}", "d".repeat(64));
    assert_eq!(
        dotenv,
        format!(
            "KILN_IMAGE=registry.example/acme/hello:1.2.3@{digest}\nKILN_DIGEST={digest}\n\
             KILN_SBOM_DIGEST={}\nKILN_CACHE_HIT=true\nKILN_SKIPPED=false\n",
            sbom_digest()
        )
    );
}

#[tokio::test]
async fn gitlab_api_failure_is_a_warning_that_names_the_token() {
    let ctx = TestContext::new();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "403 Forbidden"})))
        .mount(&server)
        .await;
    let env = gitlab_env(&ctx, &server.uri());
    let file = write_summary(&ctx, "summary.json", &summary("hello", 'a', false));
    let out = post(&ctx, &file, &env);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("warning: Failed to list the notes of merge request !3"),
        "{err}"
    );
    assert!(err.contains("GitLab answered 500: boom"), "{err}");
    assert!(!err.contains("gl-t0ken"), "{err}");
    // The dotenv report does not need the API.
    assert!(ctx.path().join("reports/kiln.env").is_file());

    // Without a token: a warning saying CI_JOB_TOKEN will not do.
    let mut env = gitlab_env(&ctx, &server.uri());
    env.retain(|(name, _)| *name != "KILN_GITLAB_TOKEN");
    let out = post(&ctx, &file, &env);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("No token to write a note on merge request !3"),
        "{err}"
    );
    assert!(err.contains("CI_JOB_TOKEN cannot write"), "{err}");
}

#[test]
fn tekton_results_name_what_chains_signs() {
    let ctx = TestContext::new();
    let results = ctx.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let file = write_summary(&ctx, "summary.json", &summary("hello", 'a', true));
    let out = post(
        &ctx,
        &file,
        &[("KILN_TEKTON_RESULTS", results.display().to_string())],
    );
    assert_success(&out);
    let read = |name: &str| std::fs::read_to_string(results.join(name)).unwrap();
    assert_eq!(read("IMAGE_URL"), "registry.example/acme/hello:1.2.3");
    assert_eq!(read("IMAGE_DIGEST"), format!("sha256:{}", "a".repeat(64)));
    assert_eq!(read("SBOM_DIGEST"), sbom_digest());
    assert_eq!(read("CACHE_HIT"), "true");
}

#[test]
fn jenkins_gets_markdown_and_the_summary_json() {
    let ctx = TestContext::new();
    let workspace = ctx.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    let summary = summary("hello", 'a', false);
    let file = write_summary(&ctx, "summary.json", &summary);
    let out = post(
        &ctx,
        &file,
        &[
            ("JENKINS_URL", "https://jenkins.example/".into()),
            ("WORKSPACE", workspace.display().to_string()),
        ],
    );
    assert_success(&out);
    let markdown = std::fs::read_to_string(workspace.join("kiln-summary.md")).unwrap();
    assert!(
        markdown.starts_with("### kiln built `hello` `1.2.3`"),
        "{markdown}"
    );
    let json: Value =
        serde_json::from_slice(&std::fs::read(workspace.join("kiln-summary.json")).unwrap())
            .unwrap();
    // The summary itself (compared by section: the type may gain optional ones).
    for section in [
        "project",
        "build",
        "artifact",
        "inputs_digest",
        "push",
        "signature",
        "attestation",
    ] {
        assert_eq!(json[section], summary[section], "{section}");
    }
}

#[test]
fn elsewhere_the_summary_goes_to_stderr_only() {
    let ctx = TestContext::new();
    let file = write_summary(&ctx, "summary.json", &summary("hello", 'a', false));
    let out = post(&ctx, &file, &[]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("digest     sha256:aaaa"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    let written: Vec<_> = std::fs::read_dir(ctx.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(written, ["summary.json"]);
}

#[test]
fn a_file_that_is_not_a_summary_is_refused() {
    let ctx = TestContext::new();
    let file = ctx.path().join("summary.json");
    std::fs::write(&file, r#"{"schema_version": 1}"#).unwrap();
    let out = post(&ctx, &file, &[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("is not a kiln summary"),
        "{}",
        stderr(&out)
    );
}

/// `kiln build` posts at the end and keeps the JSON with `--summary-file`; `--no-post`
/// leaves out the pull request comment only, never the outputs later steps read.
#[test]
fn build_posts_its_summary_unless_told_not_to() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let posted = ctx.path().join("posted");
    let kept = ctx.path().join("kept/summary.json");
    let out = ctx
        .kiln()
        .args(["build", "--output", "json", "--summary-file"])
        .arg(&kept)
        .arg(&project)
        .env("KILN_PLATFORM", "jenkins")
        .env("KILN_SUMMARY_DIR", &posted)
        .output()
        .unwrap();
    assert_success(&out);
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept: Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert_eq!(kept, printed);
    let posted_json: Value =
        serde_json::from_slice(&std::fs::read(posted.join("kiln-summary.json")).unwrap()).unwrap();
    assert_eq!(posted_json, printed);
    let markdown = std::fs::read_to_string(posted.join("kiln-summary.md")).unwrap();
    assert!(
        markdown.starts_with("### kiln built `rust-bin`")
            || markdown.starts_with("### kiln reused `rust-bin`"),
        "{markdown}"
    );

    // A pull request, with an API that would fail loudly if kiln tried to comment.
    let github = ctx.path().join("github");
    std::fs::create_dir_all(&github).unwrap();
    let event = github.join("event.json");
    std::fs::write(&event, r#"{"pull_request":{"number":7}}"#).unwrap();
    let out = ctx
        .kiln()
        .args(["build", "--no-post"])
        .arg(&project)
        .env("KILN_PLATFORM", "github")
        .env("GITHUB_OUTPUT", github.join("output"))
        .env("GITHUB_STEP_SUMMARY", github.join("step-summary.md"))
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_REPOSITORY", "acme/app")
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .env("GITHUB_TOKEN", "t")
        .output()
        .unwrap();
    assert_success(&out);
    let outputs = std::fs::read_to_string(github.join("output")).unwrap();
    assert!(outputs.contains("digest=sha256:"), "{outputs}");
    assert!(github.join("step-summary.md").is_file());
    let log = stderr(&out);
    assert!(!log.contains("comment"), "--no-post commented:\n{log}");
}

/// A build that fails replaces its artifact's sticky comment with the failure and adds it
/// to the step summary, so the pull request no longer shows the last green run; it sets
/// no outputs, and exits as the failure says.
#[tokio::test]
async fn a_failed_build_replaces_the_comment_of_the_last_green_one() {
    let ctx = TestContext::new();
    let thread = Thread::default();
    let marker = "<!-- kiln-summary: rust-broken -->";
    thread.create(format!("{marker}\n### kiln built `rust-broken`, green"));
    thread.create_by("reviewer", "LGTM".into());
    let server = fake_github(&thread).await;
    let project = ctx.fixture("rust-broken");
    let mut cmd = ctx.kiln();
    cmd.args(["build", "--no-cache"])
        .arg(&project)
        .env("KILN_PLATFORM", "github");
    for (name, value) in github_env(&ctx, &server.uri()) {
        cmd.env(name, value);
    }
    let out = cmd.output().unwrap();
    assert_exit(&out, 1);
    let bodies = thread.bodies();
    assert_eq!(bodies.len(), 2, "updated in place: {bodies:?}");
    assert!(
        bodies[0].starts_with(&format!("{marker}\n### kiln failed to build `rust-broken`")),
        "{}\n{}",
        bodies[0],
        stderr(&out)
    );
    assert!(
        bodies[0].contains("The **build** stage failed:"),
        "{}",
        bodies[0]
    );
    // The compiler's own message, in a code block.
    assert!(bodies[0].contains("```text\n"), "{}", bodies[0]);
    assert!(bodies[0].contains("error"), "{}", bodies[0]);
    assert_eq!(bodies[1], "LGTM");
    assert_eq!(requests(&server, "PATCH").await, 1);
    assert_eq!(requests(&server, "POST").await, 0);
    let step_summary = std::fs::read_to_string(ctx.path().join("step-summary.md")).unwrap();
    assert!(
        step_summary.starts_with("### kiln failed to build `rust-broken`"),
        "{step_summary}"
    );
    assert!(
        !ctx.path().join("output.txt").exists(),
        "a failed build sets no outputs"
    );
}
