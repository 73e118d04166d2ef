//! The Tekton Task (`tekton/task/kiln-build/0.1`), its test TaskRun, and the Pipeline
//! beside it that clones the project with the catalog's git-clone Task and then builds
//! it. Each is checked against a JSON Schema of Tekton's v1 fields, then run by
//! `tests/wrappers/run_tekton_step.py`, which runs TaskRuns and PipelineRuns the way
//! Tekton and the kubelet would (params, results, workspaces at `/workspace/<name>`,
//! `/tekton/results`, the steps' securityContext with the runtime's default seccomp
//! profile): its doc lists what it emulates and what it does not.

use super::*;

use base64::Engine as _;

/// The Task's directory.
fn task_dir() -> PathBuf {
    repo_root().join("tekton/task/kiln-build/0.1")
}

fn task() -> PathBuf {
    task_dir().join("kiln-build.yaml")
}

/// Every Tekton document kiln ships or runs in these tests.
fn documents() -> Vec<PathBuf> {
    let tests = task_dir().join("tests");
    let mut files = vec![task()];
    files.extend(
        [
            "run.yaml",
            "git-clone.yaml",
            "pipeline.yaml",
            "pipelinerun.yaml",
        ]
        .iter()
        .map(|name| tests.join(name)),
    );
    files
}

/// The image the vendored git-clone Task's step runs (its `gitInitImage` default), whose
/// `/ko-app/git-init` the runner replaces with `tests/wrappers/git-clone-git-init.sh`.
const GIT_CLONE_IMAGE: &str = "ghcr.io/tektoncd-catalog/git-clone:v1.7.0";

/// `check-jsonschema` with the Tekton v1 schema over `files`.
fn check_tekton_schema(files: &[PathBuf]) -> Output {
    Command::new(peer_tool("check-jsonschema"))
        .arg("--schemafile")
        .arg(repo_root().join("tests/wrappers/tekton-v1.schema.json"))
        .args(files)
        .output()
        .unwrap()
}

/// A YAML file as JSON, read by the peer python's ruamel.yaml.
fn yaml(path: &Path) -> serde_json::Value {
    let out = Command::new(peer_python())
        .args([
            "-c",
            "import json, sys\nfrom ruamel.yaml import YAML\n\
             print(json.dumps(YAML(typ='safe').load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert_ok("reading YAML", &out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A run of `run_tekton_step.py`: its output and its JSON report.
struct TektonRun {
    out: Output,
    report: serde_json::Value,
}

impl TektonRun {
    /// `run_tekton_step.py KIND FILE ARGS` in the context's isolated environment, with
    /// the kiln under test on `PATH` (in place of the Task's image) and the results in
    /// a directory of this run's own.
    fn start(
        ctx: &TestContext,
        kind: &str,
        file: &Path,
        args: &[String],
        envs: &[(&str, &Path)],
    ) -> TektonRun {
        let results = tempfile::tempdir_in(ctx.path()).unwrap().keep();
        let mut cmd = isolated(ctx, peer_python());
        cmd.arg(repo_root().join("tests/wrappers/run_tekton_step.py"))
            .arg(kind)
            .arg(file)
            .args(args)
            .arg("--results")
            .arg(results)
            .env("PATH", path_with(&[&kiln_dir()]));
        for (key, value) in envs {
            cmd.env(key, value);
        }
        let out = cmd.output().unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
            panic!(
                "run_tekton_step.py printed no report ({err}, {}):\n{}",
                out.status,
                stderr(&out)
            )
        });
        TektonRun { out, report }
    }

    /// A TaskRun of kiln's Task with `params` and `workspaces` (NAME=DIR).
    fn task(ctx: &TestContext, params: &[(&str, &str)], workspaces: &[(&str, &Path)]) -> TektonRun {
        Self::task_with_env(ctx, params, workspaces, &[])
    }

    fn task_with_env(
        ctx: &TestContext,
        params: &[(&str, &str)],
        workspaces: &[(&str, &Path)],
        envs: &[(&str, &Path)],
    ) -> TektonRun {
        let mut args = Vec::new();
        for (name, value) in params {
            args.push(format!("--param={name}={value}"));
        }
        for (name, dir) in workspaces {
            args.push(format!("--workspace={name}={}", dir.display()));
        }
        TektonRun::start(ctx, "taskrun", &task(), &args, envs)
    }

    #[track_caller]
    fn assert_succeeded(&self) {
        assert_ok("run_tekton_step.py", &self.out);
        assert_eq!(self.report["failed"], serde_json::Value::Null);
    }

    /// The results a TaskRun wrote, all of them: a declared result left unwritten fails.
    #[track_caller]
    fn results(&self, task: &str) -> std::collections::BTreeMap<String, String> {
        let run = &self.report["taskRuns"][task];
        assert_eq!(
            run["missingResults"],
            serde_json::json!([]),
            "TaskRun {task} left results unwritten:\n{}",
            stderr(&self.out)
        );
        serde_json::from_value(run["results"].clone()).unwrap()
    }
}

/// A source workspace holding a copy of the rust-bin fixture in `rust-bin/`.
fn source_with_fixture(ctx: &TestContext) -> PathBuf {
    let source = ctx.path().join("workspace/source");
    copy_dir(
        &repo_root().join("tests/fixtures/projects/rust-bin"),
        &source.join("rust-bin"),
    );
    source
}

#[track_caller]
fn assert_digest(digest: &str) {
    assert!(
        digest.starts_with("sha256:")
            && digest.len() == 71
            && digest[7..].bytes().all(|b| b.is_ascii_hexdigit()),
        "not a sha256 digest: {digest:?}"
    );
}

#[test]
fn tekton_documents_are_valid_v1_and_the_schema_refuses_mistakes() {
    let ctx = TestContext::new();
    assert_ok(
        "check-jsonschema (Tekton v1)",
        &check_tekton_schema(&documents()),
    );

    // The schema is closed and typed: each of these slips fails it.
    let slips = [
        (task(), "seccompProfile:", "seccompProfil:"),
        (task(), "runAsUser: 65532", "runAsUser: \"65532\""),
        (task(), "type: RuntimeDefault", "type: Default"),
        (
            task_dir().join("tests/pipeline.yaml"),
            "runAfter:",
            "runafter:",
        ),
        (
            task_dir().join("tests/pipeline.yaml"),
            "workspace: source",
            "workspaces: source",
        ),
        (
            task_dir().join("tests/pipelinerun.yaml"),
            "fsGroup: 65532",
            "fsgroup: 65532",
        ),
    ];
    for (i, (file, from, to)) in slips.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(from), "{} holds no `{from}`", file.display());
        let slipped = ctx.path().join(format!("slip-{i}.yaml"));
        std::fs::write(&slipped, text.replacen(from, to, 1)).unwrap();
        let out = check_tekton_schema(&[slipped]);
        assert!(!out.status.success(), "the schema took `{to}` for `{from}`");
    }

    // The step runs restricted, with the catalog git-clone Task's user, so it can write
    // into the checkout that Task leaves in the shared workspace.
    let step = &yaml(&task())["spec"]["steps"][0];
    assert_eq!(
        step["securityContext"],
        serde_json::json!({
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    let clone = &yaml(&task_dir().join("tests/git-clone.yaml"))["spec"]["steps"][0];
    assert_eq!(
        clone["securityContext"]["runAsUser"],
        step["securityContext"]["runAsUser"]
    );
}

#[test]
fn tekton_step_pushes_and_writes_the_results_chains_reads() {
    let ctx = TestContext::new();
    let source = source_with_fixture(&ctx);
    let cache = ctx.path().join("workspace/cache");
    std::fs::create_dir_all(&cache).unwrap();
    // Chains signs what was pushed: the step pushes to a real registry.
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let push = format!("{host}/acme/tekton");
    let run = TektonRun::task(
        &ctx,
        &[
            ("PATH", "rust-bin"),
            ("FORCE", "true"),
            ("PUSH", &push),
            ("INSECURE_REGISTRY", &host),
        ],
        &[("source", &source), ("cache", &cache)],
    );
    run.assert_succeeded();
    let results = run.results("kiln-build");
    let digest = &results["IMAGE_DIGEST"];
    assert_digest(digest);
    assert_eq!(results["IMAGE_URL"], format!("{host}/acme/tekton:0.3.1"));
    assert_eq!(
        registry.tag_digest("acme/tekton", "0.3.1").as_ref(),
        Some(digest)
    );
    assert_digest(&results["SBOM_DIGEST"]);
    // The digest is the artifact's, stored in the project's layout in the workspace.
    let index = std::fs::read_to_string(source.join("rust-bin/.kiln/oci/index.json")).unwrap();
    assert!(index.contains(digest.as_str()), "{digest} not in {index}");
    // Results are small: Tekton keeps 4 KB per container.
    let total: usize = results.values().map(String::len).sum();
    assert!(total < 4096, "{total} bytes of results");
}

/// A git repository holding the rust-bin fixture at its root, its version changed to
/// `version` so that an artifact tagged with it can only come from this repository.
/// Returns (the repository, its HEAD commit).
fn fixture_repository(ctx: &TestContext, version: &str) -> (PathBuf, String) {
    let git = require_tool("git");
    let repo = ctx.path().join("upstream");
    copy_dir(&repo_root().join("tests/fixtures/projects/rust-bin"), &repo);
    for file in ["Cargo.toml", "Cargo.lock"] {
        let path = repo.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let needle = "name = \"rust-bin\"\nversion = \"0.3.1\"";
        assert!(text.contains(needle), "{file}: {text}");
        let changed = text.replace(
            needle,
            &format!("name = \"rust-bin\"\nversion = \"{version}\""),
        );
        std::fs::write(&path, changed).unwrap();
    }
    let run = |args: &[&str]| {
        let out = Command::new(&git)
            .args(args)
            .current_dir(&repo)
            .env("HOME", ctx.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "kiln test")
            .env("GIT_AUTHOR_EMAIL", "test@kiln.invalid")
            .env("GIT_COMMITTER_NAME", "kiln test")
            .env("GIT_COMMITTER_EMAIL", "test@kiln.invalid")
            .output()
            .unwrap();
        assert_ok(&format!("git {}", args.join(" ")), &out);
        stdout(&out).trim().to_string()
    };
    run(&["init", "-q", "-b", "main"]);
    run(&["add", "-A"]);
    run(&["commit", "-q", "-m", "rust-bin"]);
    let head = run(&["rev-parse", "HEAD"]);
    (repo, head)
}

/// The PipelineRun of `tests/pipelinerun.yaml`, its params replaced by `params`, its
/// workspaces bound to `workspaces`, the catalog git-clone step's `/ko-app/git-init`
/// played by `tests/wrappers/git-clone-git-init.sh`.
fn pipeline_run(
    ctx: &TestContext,
    params: &[(&str, &str)],
    workspaces: &[(&str, &Path)],
) -> TektonRun {
    let tests = task_dir().join("tests");
    let mut args = vec![
        format!("--resource={}", tests.join("pipeline.yaml").display()),
        format!("--resource={}", tests.join("git-clone.yaml").display()),
        format!("--resource={}", task().display()),
        format!(
            "--image-file={GIT_CLONE_IMAGE}=/ko-app/git-init={}",
            repo_root()
                .join("tests/wrappers/git-clone-git-init.sh")
                .display()
        ),
    ];
    for (name, value) in params {
        args.push(format!("--param={name}={value}"));
    }
    for (name, dir) in workspaces {
        args.push(format!("--workspace={name}={}", dir.display()));
    }
    TektonRun::start(
        ctx,
        "pipelinerun",
        &tests.join("pipelinerun.yaml"),
        &args,
        &[],
    )
}

#[test]
fn tekton_pipeline_clones_the_repository_and_pushes_what_it_cloned_with_a_dockerconfigjson_secret()
{
    let ctx = TestContext::new();
    let (upstream, head) = fixture_repository(&ctx, "0.4.0");
    let url = format!("file://{}", upstream.display());
    // The registry takes pushes from one user only; the dockerconfig workspace is what
    // a `kubernetes.io/dockerconfigjson` Secret mounts: one file, `.dockerconfigjson`.
    let registry = Registry::start(Mode::basic_auth("tekton", "pipeline-secret"));
    let host = registry.host();
    let secret = ctx.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("tekton:pipeline-secret");
    std::fs::write(
        secret.join(".dockerconfigjson"),
        serde_json::json!({"auths": {host.clone(): {
            "username": "tekton", "password": "pipeline-secret", "auth": auth,
        }}})
        .to_string(),
    )
    .unwrap();
    let source = ctx.path().join("pvc/source");
    let cache = ctx.path().join("pvc/kiln-cache");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    let push = format!("{host}/acme/pipeline");

    let run = pipeline_run(
        &ctx,
        &[
            ("git-url", &url),
            ("push", &push),
            ("insecure-registry", &host),
            ("allow-insecure-auth", "true"),
        ],
        &[
            ("source", &source),
            ("cache", &cache),
            ("dockerconfig", &secret),
        ],
    );
    run.assert_succeeded();

    // git-clone checked out the repository's HEAD into the workspace.
    let clone = run.results("fetch-source");
    assert_eq!(clone["commit"], head);
    assert_eq!(clone["url"], url);
    let checkout = Command::new("git")
        .args(["-c", &format!("safe.directory={}", source.display())])
        .args(["rev-parse", "HEAD"])
        .current_dir(&source)
        .output()
        .unwrap();
    assert_ok("git rev-parse in the workspace", &checkout);
    assert_eq!(stdout(&checkout).trim(), head);

    // kiln built that checkout (version 0.4.0 exists only in the repository) and pushed
    // it with the Secret's credentials.
    let build = run.results("build");
    assert_eq!(build["IMAGE_URL"], format!("{host}/acme/pipeline:0.4.0"));
    let digest = &build["IMAGE_DIGEST"];
    assert_digest(digest);
    assert_eq!(
        registry.tag_digest("acme/pipeline", "0.4.0").as_ref(),
        Some(digest)
    );
    let index = std::fs::read_to_string(source.join(".kiln/oci/index.json")).unwrap();
    assert!(index.contains(digest.as_str()), "{digest} not in {index}");

    // The Pipeline's results, under the names Chains reads.
    assert_eq!(
        run.report["results"],
        serde_json::json!({
            "CHAINS-GIT_URL": url,
            "CHAINS-GIT_COMMIT": head,
            "IMAGE_URL": format!("{host}/acme/pipeline:0.4.0"),
            "IMAGE_DIGEST": digest,
        })
    );
}

#[test]
fn tekton_pipeline_stops_when_the_clone_fails() {
    let ctx = TestContext::new();
    let [source, cache, secret] = ["pvc/source", "pvc/kiln-cache", "secret"].map(|dir| {
        let dir = ctx.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let missing = format!("file://{}", ctx.path().join("no-such-repository").display());
    let run = pipeline_run(
        &ctx,
        &[("git-url", &missing), ("push", "127.0.0.1:1/acme/never")],
        &[
            ("source", &source),
            ("cache", &cache),
            ("dockerconfig", &secret),
        ],
    );
    assert!(!run.out.status.success(), "{}", stderr(&run.out));
    assert_eq!(
        run.report["failed"],
        "TaskRun fetch-source failed: step clone exited with 1"
    );
    assert_eq!(run.report["taskRuns"]["fetch-source"]["succeeded"], false);
    // kiln-build runs after fetch-source: it never started.
    assert_eq!(run.report["taskRuns"].get("build"), None);
    assert!(
        stderr(&run.out).contains("does not appear to be a git repository"),
        "{}",
        stderr(&run.out)
    );
}

#[test]
fn tekton_push_without_the_dockerconfig_workspace_is_unauthorized() {
    let ctx = TestContext::new();
    let source = source_with_fixture(&ctx);
    let registry = Registry::start(Mode::basic_auth("tekton", "pipeline-secret"));
    let host = registry.host();
    let push = format!("{host}/acme/tekton");
    let run = TektonRun::task(
        &ctx,
        &[
            ("PATH", "rust-bin"),
            ("PUSH", &push),
            ("INSECURE_REGISTRY", &host),
            ("ALLOW_INSECURE_AUTH", "true"),
        ],
        &[("source", &source)],
    );
    assert!(!run.out.status.success());
    assert_eq!(
        run.report["failed"],
        "TaskRun kiln-build failed: step build exited with 1"
    );
    let err = stderr(&run.out);
    assert!(
        err.contains(&format!("error: {host} refused the credentials")),
        "{err}"
    );
    assert!(err.contains("Not authorized"), "{err}");
    assert!(!registry.tag_exists("acme/tekton", "0.3.1"));
}

#[test]
fn tekton_results_are_written_under_no_post_and_dry_run() {
    let ctx = TestContext::new();
    let source = source_with_fixture(&ctx);
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let push = format!("{host}/acme/no-post");

    // --no-post leaves out pull request comments only: the results are still written.
    let run = TektonRun::task(
        &ctx,
        &[
            ("PATH", "rust-bin"),
            ("FORCE", "true"),
            ("NO_POST", "true"),
            ("PUSH", &push),
            ("INSECURE_REGISTRY", &host),
        ],
        &[("source", &source)],
    );
    run.assert_succeeded();
    let results = run.results("kiln-build");
    assert_eq!(results["IMAGE_URL"], format!("{host}/acme/no-post:0.3.1"));
    assert_digest(&results["IMAGE_DIGEST"]);
    assert_eq!(
        registry.tag_digest("acme/no-post", "0.3.1").as_ref(),
        Some(&results["IMAGE_DIGEST"])
    );
    assert_digest(&results["SBOM_DIGEST"]);

    // --dry-run builds nothing, and every result exists, empty, for whatever reads it.
    let fresh = ctx.path().join("dry-run/source");
    copy_dir(
        &repo_root().join("tests/fixtures/projects/rust-bin"),
        &fresh.join("rust-bin"),
    );
    let run = TektonRun::task(
        &ctx,
        &[("PATH", "rust-bin"), ("DRY_RUN", "true"), ("PUSH", &push)],
        &[("source", &fresh)],
    );
    run.assert_succeeded();
    let empty: std::collections::BTreeMap<String, String> =
        ["IMAGE_URL", "IMAGE_DIGEST", "SBOM_DIGEST", "CACHE_HIT"]
            .iter()
            .map(|name| (name.to_string(), String::new()))
            .collect();
    assert_eq!(run.results("kiln-build"), empty);
    assert!(!fresh.join("rust-bin/.kiln/oci").exists());
}

#[test]
fn tekton_step_runs_restricted_and_kiln_records_that_it_could_not_isolate() {
    let ctx = TestContext::new();
    let source = source_with_fixture(&ctx);
    let summary = ctx.path().join("summary.json");
    // Under the step's securityContext (UID 65532, no capabilities, no_new_privs, the
    // runtime's default seccomp profile) user namespaces are refused: kiln warns, builds,
    // and says so in its summary.
    let run = TektonRun::task_with_env(
        &ctx,
        &[("PATH", "rust-bin"), ("FORCE", "true")],
        &[("source", &source)],
        &[("KILN_SUMMARY_FILE", &summary)],
    );
    run.assert_succeeded();
    let err = stderr(&run.out);
    assert!(
        err.contains("warning: the build steps run without isolation (unshare(user, mount, pid namespaces) failed: EPERM: Operation not permitted)"),
        "{err}"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(written["build"]["isolation"], "none");

    // REQUIRE_ISOLATION turns that into a failure, before anything is built.
    let run = TektonRun::task(
        &ctx,
        &[
            ("PATH", "rust-bin"),
            ("FORCE", "true"),
            ("REQUIRE_ISOLATION", "true"),
        ],
        &[("source", &source)],
    );
    assert!(!run.out.status.success());
    assert_eq!(
        run.report["failed"],
        "TaskRun kiln-build failed: step build exited with 1"
    );
    let err = stderr(&run.out);
    assert!(
        err.contains("error: Build steps cannot be isolated on this machine: unshare(user, mount, pid namespaces) failed: EPERM: Operation not permitted"),
        "{err}"
    );
}
