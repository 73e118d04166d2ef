//! The CI wrappers (GitHub Action, GitLab component, Jenkins step, Tekton Task), each
//! checked by the tools its users' CI runs and then run for real against the locally
//! built kiln, as far as a machine without that CI can:
//!
//! - GitHub: actionlint and zizmor on a workflow that uses the action, SchemaStore's
//!   schemas through check-jsonschema; the action's steps run under bash by a small
//!   runner (`tests/wrappers/run_action.py`) with a simulated runner environment,
//!   installing kiln from a `file://` "release" checked against a checksums file.
//! - GitLab: gitlab-ci-local runs a pipeline that includes the component (shell
//!   executor); check-jsonschema validates the template and the pipeline.
//! - Jenkins: the Groovy step tests (`jenkins/test/KilnBuildTest.groovy`) with stubbed
//!   pipeline steps, one of them running the real kiln.
//! - Tekton: the Task against a JSON Schema of the v1 fields it uses, then its step
//!   script run the way Tekton's entrypoint would (`tests/wrappers/run_tekton_step.py`).
//!
//! The checkers are installed by `scripts/setup --test` into `target/test-peers`.

mod common;

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

/// A fake release server: `DIR/vVERSION/kiln-TARGET`, the kiln under test, and a
/// checksums file listing it. Returns (file:// base URL, checksums file).
fn local_release(ctx: &TestContext, version: &str) -> (String, PathBuf) {
    let base = ctx.path().join("releases");
    let asset = format!("v{version}/kiln-{}", release_target());
    std::fs::create_dir_all(base.join(format!("v{version}"))).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_kiln"), base.join(&asset)).unwrap();
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

/// A git repository holding the action and `workflow` as `.github/workflows/kiln.yml`,
/// which actionlint must pass (checking every `with:` against action.yml). Returns it.
fn actionlint_in_repo(ctx: &TestContext, workflow: &str) -> PathBuf {
    let repo = ctx.path().join("repo");
    copy_dir(&repo_root().join("action"), &repo.join("action"));
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/kiln.yml"), workflow).unwrap();
    assert_ok(
        "git init",
        &Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .output()
            .unwrap(),
    );
    let lint = Command::new(peer_tool("actionlint"))
        .arg(".github/workflows/kiln.yml")
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_ok("actionlint", &lint);
    repo
}

/// The reusable workflow of `.github/workflows/kiln.yml`: the job that runs project code
/// holds no signing identity and no write token; the one that signs runs no project
/// code and takes the layout only at the digest the first job recorded.
#[test]
fn reusable_workflow_splits_build_from_publish() {
    let ctx = TestContext::new();
    let root = repo_root();
    let workflow = std::fs::read_to_string(root.join(".github/workflows/kiln.yml")).unwrap();

    // Its jobs and their permissions, read by a YAML parser.
    let read = Command::new(peer_python())
        .args([
            "-c",
            "import json, sys, ruamel.yaml; \
             print(json.dumps(ruamel.yaml.YAML(typ='safe').load(sys.stdin)))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(workflow.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert_ok("ruamel.yaml", &read);
    let parsed: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(parsed["permissions"], serde_json::json!({}));
    let build = &parsed["jobs"]["build"];
    let publish = &parsed["jobs"]["publish"];
    assert_eq!(
        build["permissions"],
        serde_json::json!({"contents": "read"})
    );
    assert_eq!(publish["permissions"]["id-token"], "write");
    assert_eq!(publish["permissions"]["packages"], "write");
    let steps = |job: &serde_json::Value| job["steps"].as_array().unwrap().clone();
    let kiln_step = |job: &serde_json::Value| {
        steps(job)
            .into_iter()
            .find(|step| {
                step["uses"]
                    .as_str()
                    .is_some_and(|uses| uses.starts_with("kiln-build/kiln/action@"))
            })
            .unwrap()
    };
    assert_eq!(kiln_step(build)["with"]["no-publish"], true);
    assert_eq!(kiln_step(publish)["with"]["command"], "publish");
    // No secret is handed to the build job; the publish job checks the digest first.
    assert!(!serde_json::to_string(build).unwrap().contains("secrets."));
    assert!(steps(publish).iter().any(|step| {
        step["run"]
            .as_str()
            .is_some_and(|run| run.contains("sha256sum --check"))
    }));

    // actionlint checks every `with:` against action.yml (the action resolved from this
    // checkout), zizmor audits it as a pedantic reviewer, and SchemaStore's schema.
    let repo = actionlint_in_repo(
        &ctx,
        &workflow.replace(
            "kiln-build/kiln/action@v0.1.0",
            "./action # zizmor: ignore[self-repository]",
        ),
    );
    let zizmor = Command::new(peer_tool("zizmor"))
        .args(["--offline", "--no-progress", "--persona=pedantic"])
        .arg(".github/workflows/kiln.yml")
        .current_dir(&repo)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_ok("zizmor", &zizmor);
    check_jsonschema(
        "vendor.github-workflows",
        &[&root.join(".github/workflows/kiln.yml")],
    );
}

#[test]
fn github_action_lints_clean_and_runs_kiln() {
    let ctx = TestContext::new();
    let root = repo_root();

    // A repository that uses the action as the README shows: actionlint checks the
    // workflow's `with:` against action.yml (it resolves `./action` from the
    // repository root), zizmor audits both files.
    let repo = actionlint_in_repo(
        &ctx,
        &std::fs::read_to_string(root.join("tests/wrappers/github-workflow.yml")).unwrap(),
    );
    // actionlint does read action.yml: an input it does not declare is an error.
    let workflow = std::fs::read_to_string(repo.join(".github/workflows/kiln.yml")).unwrap();
    std::fs::write(
        repo.join(".github/workflows/typo.yml"),
        workflow.replace("force: true", "forse: true"),
    )
    .unwrap();
    let typo = Command::new(peer_tool("actionlint"))
        .arg(".github/workflows/typo.yml")
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        !typo.status.success() && stdout(&typo).contains(r#"input "forse" is not defined"#),
        "actionlint missed an undeclared input:\n{}",
        stdout(&typo)
    );
    std::fs::remove_file(repo.join(".github/workflows/typo.yml")).unwrap();
    let zizmor = Command::new(peer_tool("zizmor"))
        .args(["--offline", "--no-progress", "--persona=pedantic"])
        .args(["action/action.yml", ".github/workflows/kiln.yml"])
        .current_dir(&repo)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_ok("zizmor", &zizmor);
    check_jsonschema("vendor.github-actions", &[&root.join("action/action.yml")]);
    check_jsonschema(
        "vendor.github-workflows",
        &[&root.join("tests/wrappers/github-workflow.yml")],
    );
    let runs_free_of_expressions = std::fs::read_to_string(root.join("action/action.yml"))
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("run:"))
        .all(|l| !l.contains("${{"));
    assert!(
        runs_free_of_expressions,
        "a `run:` of action.yml splices an expression"
    );

    // The action's steps, run as the runner would, with kiln installed from a local
    // "release" checked against its sha256, pushing to a real registry.
    let registry = Registry::start(Mode::Plain);
    let project = ctx.fixture("rust-bin");
    let version = kiln_version();
    let (download_url, checksums) = local_release(&ctx, &version);
    let runner_temp = ctx.path().join("runner-temp");
    std::fs::create_dir_all(&runner_temp).unwrap();
    let step_summary = ctx.path().join("step-summary.md");
    let run = |inputs: serde_json::Value, checksums: &Path| {
        isolated(&ctx, peer_python())
            .arg(root.join("tests/wrappers/run_action.py"))
            .arg(root.join("action"))
            .arg(inputs.to_string())
            .env("GITHUB_ACTIONS", "true")
            .env("CI", "true")
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", runner_arch())
            .env("RUNNER_TEMP", &runner_temp)
            .env("GITHUB_STEP_SUMMARY", &step_summary)
            .env("GITHUB_WORKSPACE", ctx.path())
            .env("GITHUB_REPOSITORY", "acme/rust-bin")
            .env("GITHUB_EVENT_NAME", "push")
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_SHA", "0000000000000000000000000000000000000000")
            .env("KILN_CHECKSUMS_FILE", checksums)
            // The kiln under test must come from the install step, not from PATH.
            .env("PATH", path_with(&[]))
            .output()
            .unwrap()
    };
    let dest = format!("{}/acme/rust-bin", registry.host());
    let out = run(
        serde_json::json!({
            "version": version,
            "download-url": download_url,
            "path": project,
            "push": dest,
            "insecure-registry": registry.host(),
            "registry-timeout": 30,
        }),
        &checksums,
    );
    assert_ok("the action", &out);
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes: Vec<&str> = result["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["success", "success", "skipped"], "{result}");
    let outputs = &result["outputs"];
    let summary_file = outputs["summary-file"].as_str().unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(summary_file).expect("kiln wrote the summary"))
            .unwrap();
    common::assert_valid_summary(&summary);
    let digest = summary["artifact"]["digest"].as_str().unwrap();
    assert_eq!(outputs["digest"], digest, "{result}");
    assert_eq!(outputs["skipped"], "false", "{result}");
    assert!(
        outputs["image"].as_str().unwrap().starts_with(&dest),
        "{result}"
    );
    assert_eq!(
        registry.tag_digest("acme/rust-bin", "0.3.1").as_deref(),
        Some(digest)
    );
    assert!(
        outputs["sbom-digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{result}"
    );
    // `cache-hit`: every cache restored by its exact key; empty when kiln cached nothing.
    let kinds = summary["cache"]["kinds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cache_hit = if kinds.is_empty() {
        String::new()
    } else {
        kinds.iter().all(|k| k["hit"] == "exact").to_string()
    };
    assert_eq!(outputs["cache-hit"], cache_hit.as_str(), "{result}");
    let markdown = std::fs::read_to_string(&step_summary).expect("kiln wrote the step summary");
    assert!(markdown.contains(&digest[..19]), "{markdown}");

    // A download whose sha256 does not match is refused before it runs.
    let wrong = ctx.path().join("wrong-checksums.txt");
    std::fs::write(
        &wrong,
        format!("{}  v{version}/kiln-{}\n", "0".repeat(64), release_target()),
    )
    .unwrap();
    std::fs::remove_dir_all(runner_temp.join(format!("kiln-{version}"))).unwrap();
    let out = run(
        serde_json::json!({"version": version, "download-url": download_url, "path": project}),
        &wrong,
    );
    assert!(!out.status.success(), "a bad checksum was accepted");
    assert!(stderr(&out).contains("sha256 mismatch"), "{}", stderr(&out));
    assert!(
        !runner_temp
            .join(format!("kiln-{version}/bin/kiln"))
            .exists()
    );
}

#[test]
fn gitlab_component_runs_in_gitlab_ci_local() {
    let ctx = TestContext::new();
    let root = repo_root();
    // The template is two YAML documents (the `spec:` header, then the jobs), which
    // check-jsonschema reads one file each.
    let template =
        std::fs::read_to_string(root.join("gitlab-component/templates/kiln.yml")).unwrap();
    let (header, jobs) = template
        .split_once("\n---\n")
        .expect("a `spec:` header, `---`, then the jobs");
    let header_file = ctx.path().join("kiln-spec.yml");
    let jobs_file = ctx.path().join("kiln-jobs.yml");
    std::fs::write(&header_file, header).unwrap();
    std::fs::write(&jobs_file, jobs).unwrap();
    check_jsonschema(
        "vendor.gitlab-ci",
        &[
            &header_file,
            &jobs_file,
            &root.join("tests/wrappers/gitlab-ci.yml"),
        ],
    );

    // The component's own repository, as the catalog lays it out, with a project and
    // a pipeline that includes the component from it.
    let repo = ctx.path().join("repo");
    copy_dir(&root.join("gitlab-component"), &repo);
    copy_dir(
        &root.join("tests/fixtures/projects/rust-bin"),
        &repo.join("rust-bin"),
    );
    std::fs::copy(
        root.join("tests/wrappers/gitlab-ci.yml"),
        repo.join(".gitlab-ci.yml"),
    )
    .unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "remote",
            "add",
            "origin",
            "git@gitlab.example.com:kiln-build/kiln.git",
        ],
        &["add", "-A"],
        &[
            "-c",
            "user.name=kiln",
            "-c",
            "user.email=kiln@example.com",
            "commit",
            "-q",
            "-m",
            "component",
        ],
    ] {
        assert_ok(
            "git",
            &Command::new("git")
                .args(args)
                .current_dir(&repo)
                .output()
                .unwrap(),
        );
    }
    let gitlab_ci_local = peer_python()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("node/node_modules/.bin/gitlab-ci-local");
    assert!(
        gitlab_ci_local.is_file(),
        "gitlab-ci-local is not installed: run the tests through `scripts/test`"
    );
    let out = isolated(&ctx, &gitlab_ci_local)
        .current_dir(&repo)
        .args(["--force-shell-executor", "--no-color"])
        .env("PATH", path_with(&[&kiln_dir()]))
        .output()
        .unwrap();
    assert_ok("gitlab-ci-local", &out);
    let log = stdout(&out);
    // The job's artifacts, as GitLab would keep them: the dotenv report and the summary.
    let artifacts = repo.join(".gitlab-ci-local/artifacts/kiln-build");
    let dotenv = std::fs::read_to_string(artifacts.join(".gitlab-ci-reports/dotenv/kiln.env"))
        .unwrap_or_else(|_| panic!("no dotenv report from the job:\n{log}"));
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(artifacts.join("kiln-summary.json")).expect("the summary artifact"),
    )
    .unwrap();
    let values = key_values(&dotenv);
    let digest = values
        .get("KILN_DIGEST")
        .unwrap_or_else(|| panic!("no KILN_DIGEST in kiln.env:\n{dotenv}"));
    assert_eq!(
        digest,
        summary["artifact"]["digest"].as_str().unwrap(),
        "{dotenv}"
    );
    assert_eq!(
        values.get("KILN_SKIPPED").map(String::as_str),
        Some("false")
    );
    for key in ["KILN_IMAGE", "KILN_SBOM_DIGEST", "KILN_CACHE_HIT"] {
        assert!(values.contains_key(key), "{key} missing:\n{dotenv}");
    }
    // The next job got the report's variables.
    assert!(log.contains(&format!("KILN_DIGEST={digest}")), "{log}");
}

#[test]
fn jenkins_step_tests_pass() {
    let ctx = TestContext::new();
    let groovy = require_tool("groovy");
    let project = ctx.fixture("rust-bin");
    let mut cmd = isolated(&ctx, groovy);
    if std::env::var_os("JAVA_HOME").is_none() && !Path::new("/usr/lib/jvm/default-java").exists() {
        let java = std::fs::canonicalize(require_tool("java")).unwrap();
        cmd.env("JAVA_HOME", java.parent().unwrap().parent().unwrap());
    }
    let out = cmd
        .arg(repo_root().join("jenkins/test/KilnBuildTest.groovy"))
        .env("KILN_TEST_BIN", env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_TEST_PROJECT", &project)
        .env("JENKINS_URL", "http://jenkins.example.com/")
        .env("WORKSPACE", ctx.path())
        .output()
        .unwrap();
    assert_ok("the Jenkins step tests", &out);
    let log = stdout(&out);
    assert!(log.contains("6 passed, 0 failed"), "{log}");
}

#[test]
fn tekton_task_is_valid_v1_and_its_step_writes_the_results() {
    let ctx = TestContext::new();
    let root = repo_root();
    let task = root.join("tekton/task/kiln-build/0.1/kiln-build.yaml");
    let out = Command::new(peer_tool("check-jsonschema"))
        .arg("--schemafile")
        .arg(root.join("tests/wrappers/tekton-v1.schema.json"))
        .arg(&task)
        .arg(root.join("tekton/task/kiln-build/0.1/tests/run.yaml"))
        .output()
        .unwrap();
    assert_ok("check-jsonschema (Tekton v1)", &out);

    // The step, with the params of tests/run.yaml, a temp dir for the source
    // workspace and another for the results.
    let source = ctx.path().join("workspace/source");
    std::fs::create_dir_all(&source).unwrap();
    let project = ctx.fixture("rust-bin");
    copy_dir(&project, &source.join("rust-bin"));
    let cache = ctx.path().join("workspace/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let results = ctx.path().join("tekton-results");
    std::fs::create_dir_all(&results).unwrap();
    // Chains signs what was pushed: the step pushes to a real registry.
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let params = serde_json::json!({
        "PATH": "rust-bin",
        "FORCE": "true",
        "PUSH": format!("{host}/acme/tekton"),
        "INSECURE_REGISTRY": host,
    });
    let out = isolated(&ctx, peer_python())
        .arg(root.join("tests/wrappers/run_tekton_step.py"))
        .arg(&task)
        .arg(params.to_string())
        .arg(serde_json::json!({"source": source, "cache": cache}).to_string())
        .env("KILN_TEKTON_RESULTS", &results)
        .env("PATH", path_with(&[&kiln_dir()]))
        .output()
        .unwrap();
    assert_ok("the Tekton step", &out);
    let read = |name: &str| {
        std::fs::read_to_string(results.join(name))
            .unwrap_or_else(|_| panic!("no result {name}:\n{}", stderr(&out)))
    };
    let digest = read("IMAGE_DIGEST");
    assert!(
        digest.starts_with("sha256:") && digest.trim().len() == 71,
        "{digest}"
    );
    assert_eq!(read("IMAGE_URL"), format!("{host}/acme/tekton:0.3.1"));
    assert_eq!(
        registry.tag_digest("acme/tekton", "0.3.1").as_deref(),
        Some(digest.as_str())
    );
    assert!(read("SBOM_DIGEST").starts_with("sha256:"));
    read("CACHE_HIT");
    // The digest is the artifact's, stored in the project's layout in the workspace.
    let index = std::fs::read_to_string(source.join("rust-bin/.kiln/oci/index.json")).unwrap();
    assert!(index.contains(digest.trim()), "{digest} not in {index}");
    // Results are small: Tekton keeps 4 KB per container.
    let total: u64 = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total < 4096, "{total} bytes of results");
}
