//! The GitHub Action and the reusable workflow.

use super::*;

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
    let run_as = |inputs: serde_json::Value, checksums: &Path, event: Option<&Path>| {
        let mut cmd = isolated(&ctx, peer_python());
        if let Some(event) = event {
            cmd.env("GITHUB_EVENT_NAME", "pull_request")
                .env("GITHUB_EVENT_PATH", event);
        } else {
            cmd.env("GITHUB_EVENT_NAME", "push");
        }
        cmd.arg(root.join("tests/wrappers/run_action.py"))
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
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_SHA", "0000000000000000000000000000000000000000")
            .env("KILN_CHECKSUMS_FILE", checksums)
            // The kiln under test must come from the install step, not from PATH.
            .env("PATH", path_with(&[]))
            .output()
            .unwrap()
    };
    let run = |inputs: serde_json::Value, checksums: &Path| run_as(inputs, checksums, None);
    // As `ghcr.io/${{ github.repository }}` gives it: kiln lowercases the name.
    let dest = format!("{}/Acme/Rust-Bin", registry.host());
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
    // The source build's cache, the install, the build, the save after a failure.
    assert_eq!(
        outcomes,
        ["skipped", "success", "success", "skipped"],
        "{result}"
    );
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
        outputs["image"]
            .as_str()
            .unwrap()
            .starts_with(&dest.to_lowercase()),
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

    // A pull request from a fork has a read-only token: built and stored, not pushed,
    // and the log says why.
    let event = ctx.path().join("fork-event.json");
    std::fs::write(
        &event,
        serde_json::json!({
            "number": 7,
            "pull_request": {"number": 7, "head": {"repo": {"full_name": "mallory/rust-bin"}}},
            "repository": {"full_name": "acme/rust-bin"},
        })
        .to_string(),
    )
    .unwrap();
    let fork_dest = format!("{}/acme/from-fork", registry.host());
    let out = run_as(
        serde_json::json!({
            "version": version,
            "download-url": download_url,
            "path": project,
            "push": fork_dest,
            "insecure-registry": registry.host(),
        }),
        &checksums,
        Some(&event),
    );
    assert_ok("the action on a fork's pull request", &out);
    let log = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        log.contains("::notice title=kiln::This pull request comes from a fork"),
        "{log}"
    );
    assert_eq!(registry.tag_digest("acme/from-fork", "0.3.1"), None);

    // A download whose sha256 does not match is refused before it runs.
    let wrong = ctx.path().join("wrong-checksums.txt");
    std::fs::write(
        &wrong,
        format!(
            "{}  v{version}/kiln-{}.tar.xz\n",
            "0".repeat(64),
            release_target()
        ),
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

/// The release workflow dist generated and the three custom jobs kiln adds to it pass
/// actionlint (which also checks each `uses: ./.github/workflows/…` call against the
/// called workflow's inputs and permissions), kiln's own with shellcheck over every
/// `run:` (dist's generated scripts have style notes kiln does not edit), SchemaStore's
/// schema and zizmor.
#[test]
fn release_workflows_lint_clean() {
    let ctx = TestContext::new();
    let root = repo_root();
    let repo = ctx.path().join("repo");
    let workflows = repo.join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let ours = [
        "release-wrappers.yml",
        "release-image.yml",
        "release-gitlab-component.yml",
    ];
    for name in ours.iter().chain(&["release.yml"]) {
        std::fs::copy(
            root.join(".github/workflows").join(name),
            workflows.join(name),
        )
        .unwrap();
    }
    git_init(&repo);
    let lint = Command::new(peer_tool("actionlint"))
        .args(["-shellcheck=", ".github/workflows/release.yml"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_ok("actionlint (release.yml)", &lint);
    let lint = Command::new(peer_tool("actionlint"))
        .args(ours.iter().map(|name| format!(".github/workflows/{name}")))
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_ok("actionlint", &lint);
    let ours: Vec<PathBuf> = ours.iter().map(|name| workflows.join(name)).collect();
    let paths: Vec<&Path> = ours.iter().map(PathBuf::as_path).collect();
    check_jsonschema("vendor.github-workflows", &paths);
    let zizmor = Command::new(peer_tool("zizmor"))
        .args(["--offline", "--no-progress"])
        .args(&paths)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_ok("zizmor", &zizmor);
}
