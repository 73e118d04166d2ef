//! The GitLab CI/CD component.

use super::*;

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
