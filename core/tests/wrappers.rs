//! The CI wrappers (GitHub Action, GitLab component, Jenkins step, Tekton Task), each
//! checked by the tools its users' CI runs and then run for real against the locally
//! built kiln, as far as a machine without that CI can:
//!
//! - GitHub: actionlint and zizmor on a workflow that uses the action and on the release
//!   workflows, SchemaStore's schemas through check-jsonschema; the action's steps run
//!   under bash by a small runner (`tests/wrappers/run_action.py`) with a simulated
//!   runner environment, installing kiln from a `file://` release archive checked
//!   against a checksums file.
//! - GitLab: `gitlab-component/mirror.sh` lays out the component project GitLab
//!   requires, and gitlab-ci-local runs pipelines that include the component from it
//!   (shell executor); check-jsonschema validates the template and the pipelines.
//! - Jenkins: the Groovy step tests (`jenkins/test/KilnBuildTest.groovy`) with stubbed
//!   pipeline steps and Ant's own pattern matching, one of them running the real kiln.
//! - Tekton: the Task, the test Pipeline and the vendored git-clone Task against a JSON
//!   Schema of the v1 fields they use, then their steps run the way Tekton's entrypoint
//!   would, each in its own root with the step's `securityContext`
//!   (`tests/wrappers/run_tekton_step.py`).
//!
//! The checkers are installed by `scripts/setup --test` into `target/test-peers`.

mod common;
#[path = "wrappers/github.rs"]
mod github;
#[path = "wrappers/gitlab.rs"]
mod gitlab;
#[path = "wrappers/jenkins.rs"]
mod jenkins;
#[path = "wrappers/tekton.rs"]
mod tekton;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::{Mode, Registry};
use common::{TestContext, copy_dir, peer_python, repo_root, require_tool, stderr, stdout};

/// A tool installed beside the peer python (`target/test-peers/bin`).
fn peer_tool(name: &str) -> PathBuf {
    let tool = peer_python().parent().unwrap().join(name);
    assert!(
        tool.is_file(),
        "`{}` is not installed: run the tests through `scripts/test`, which installs it",
        tool.display()
    );
    tool
}

/// The directory holding the kiln binary under test.
fn kiln_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_kiln"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `PATH` with `dirs` in front.
fn path_with(dirs: &[&Path]) -> OsString {
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    all.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(all).unwrap()
}

/// A command with the isolated environment the context gives kiln (KILN_HOME, cargo's
/// shared target dir, no colour), and no CI of ours leaking in.
fn isolated(ctx: &TestContext, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    let template = ctx.kiln();
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_TOKEN",
        "GITLAB_CI",
        "JENKINS_URL",
        "KILN_PLATFORM",
        "KILN_PUSH",
        "KILN_TEKTON_RESULTS",
        "KILN_SUMMARY_DIR",
        "KILN_SIGNING_KEY",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "SIGSTORE_ID_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(ctx.path())
        .stdin(std::process::Stdio::null());
    cmd
}

#[track_caller]
fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// A `KEY=VALUE` file (GitHub's outputs, GitLab's dotenv) as pairs.
fn key_values(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert_ok("sha256sum", &out);
    stdout(&out).split_whitespace().next().unwrap().to_string()
}

fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        other => panic!("no GitHub runner architecture for {other}"),
    }
}

fn release_target() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no kiln release target for {other}"),
    }
}

/// A fake release server: `DIR/vVERSION/kiln-TARGET.tar.xz`, an archive laid out as
/// `dist` lays out kiln's (`kiln-TARGET/kiln`, here the kiln under test, stripped so
/// that packing it takes seconds), and a checksums file listing it. Returns (file://
/// base URL, checksums file).
fn local_release(ctx: &TestContext, version: &str) -> (String, PathBuf) {
    let base = ctx.path().join("releases");
    let name = format!("kiln-{}", release_target());
    let asset = format!("v{version}/{name}.tar.xz");
    std::fs::create_dir_all(base.join(format!("v{version}"))).unwrap();
    let staged = ctx.path().join("release-staging");
    std::fs::create_dir_all(staged.join(&name)).unwrap();
    let out = Command::new("strip")
        .arg("-o")
        .arg(staged.join(&name).join("kiln"))
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .output()
        .unwrap();
    assert_ok("strip", &out);
    let out = Command::new("tar")
        .arg("-cJf")
        .arg(base.join(&asset))
        .arg("-C")
        .arg(&staged)
        .arg(&name)
        .env("XZ_OPT", "-0 -T2")
        .output()
        .unwrap();
    assert_ok("tar", &out);
    let checksums = ctx.path().join("checksums.txt");
    std::fs::write(
        &checksums,
        format!(
            "# test release\n{}  {asset}\n",
            sha256_file(&base.join(&asset))
        ),
    )
    .unwrap();
    (format!("file://{}", base.display()), checksums)
}

/// `check-jsonschema --builtin-schema SCHEMA FILES`.
fn check_jsonschema(schema: &str, files: &[&Path]) {
    let out = Command::new(peer_tool("check-jsonschema"))
        .args(["--builtin-schema", schema])
        .args(files)
        .output()
        .unwrap();
    assert_ok(&format!("check-jsonschema {schema}"), &out);
}

fn kiln_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Makes `dir` a git repository (actionlint finds the workflows from its root).
fn git_init(dir: &Path) {
    assert_ok(
        "git init",
        &Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir)
            .output()
            .unwrap(),
    );
}

/// A git repository holding the action and `workflow` as `.github/workflows/kiln.yml`,
/// which actionlint must pass (checking every `with:` against action.yml). Returns it.
fn actionlint_in_repo(ctx: &TestContext, workflow: &str) -> PathBuf {
    let repo = ctx.path().join("repo");
    copy_dir(&repo_root().join("action"), &repo.join("action"));
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/kiln.yml"), workflow).unwrap();
    git_init(&repo);
    let lint = Command::new(peer_tool("actionlint"))
        .arg(".github/workflows/kiln.yml")
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_ok("actionlint", &lint);
    repo
}
