//! The GitLab CI/CD component, included exactly as a user's pipeline includes it: from
//! the component project `kiln-build/kiln-component` that `gitlab-component/mirror.sh`
//! lays out, committed and tagged with kiln's version, which gitlab-ci-local clones the
//! way it clones from a GitLab instance.

use super::*;

/// The host the projects' `origin` remotes name; gitlab-ci-local derives
/// `CI_SERVER_FQDN` from it, and clones included components from it.
const GITLAB_HOST: &str = "gitlab.example.com";

/// The component project's path on the instance, as the README documents it.
const COMPONENT_PROJECT: &str = "kiln-build/kiln-component";

/// The user's project, whose pipelines include the component.
const USER_PROJECT: &str = "acme/app";

/// The default `rules` input: merge request pipelines, and branch and tag pipelines but
/// a branch's while it has an open merge request.
fn default_rules() -> serde_json::Value {
    serde_json::json!([
        {"if": "$CI_PIPELINE_SOURCE == \"merge_request_event\""},
        {"if": "$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS", "when": "never"},
        {"if": "$CI_COMMIT_BRANCH"},
        {"if": "$CI_COMMIT_TAG"},
    ])
}

/// `git ARGS` in `dir`, which must succeed.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=kiln", "-c", "user.email=kiln@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_ok(&format!("git {}", args.join(" ")), &out);
}

/// `mirror.sh DEST` of the `gitlab-component` directory in `repo` (kiln's, or a copy).
fn mirror(repo: &Path, dest: &Path) -> Output {
    Command::new(repo.join("gitlab-component/mirror.sh"))
        .arg(dest)
        .output()
        .unwrap()
}

/// Every file under `dir` but `.git`'s, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let relative = path.strip_prefix(base).unwrap();
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A YAML file read by a YAML parser (ruamel, beside the peer python), as JSON.
fn yaml_file(path: &Path) -> serde_json::Value {
    let out = Command::new(peer_python())
        .args([
            "-c",
            "import json, sys, ruamel.yaml; \
             print(json.dumps(ruamel.yaml.YAML(typ='safe').load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert_ok(&format!("ruamel.yaml {}", path.display()), &out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A GitLab instance as far as `include: component:` sees one: the component project,
/// laid out by `mirror.sh` from this repository, committed and tagged with kiln's
/// version, in a bare repository at `REPOS/kiln-build/kiln-component.git`. gitlab-ci-local
/// clones `https://gitlab.example.com:443/kiln-build/kiln-component.git` from it (git's
/// `url.<base>.insteadOf`), exactly as it would clone from GitLab.
struct GitLab {
    repos: PathBuf,
}

impl GitLab {
    fn with_component(ctx: &TestContext) -> GitLab {
        let work = ctx.path().join("kiln-component");
        let out = mirror(&repo_root(), &work);
        assert_ok("gitlab-component/mirror.sh", &out);
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "kiln's GitLab component"]);
        git(&work, &["tag", &kiln_version()]);
        let repos = ctx.path().join("gitlab");
        let bare = repos.join(format!("{COMPONENT_PROJECT}.git"));
        std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
        git(
            ctx.path(),
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        GitLab { repos }
    }

    /// The user's project `acme/app` in `ctx/NAME`: `pipeline` as its `.gitlab-ci.yml`,
    /// and each (source in this repository, path in the project) of `files`.
    fn project(
        &self,
        ctx: &TestContext,
        name: &str,
        pipeline: &str,
        files: &[(&str, &str)],
    ) -> PathBuf {
        let root = repo_root();
        let text = std::fs::read_to_string(root.join(pipeline)).unwrap();
        // The tag the component project has: the pipeline must include that version.
        assert!(
            text.contains(&format!(
                "{GITLAB_HOST_VAR}/{COMPONENT_PROJECT}/kiln@{}",
                kiln_version()
            )),
            "{pipeline} does not include {COMPONENT_PROJECT}/kiln@{}",
            kiln_version()
        );
        let project = ctx.path().join(name);
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join(".gitlab-ci.yml"), text).unwrap();
        for (source, destination) in files {
            copy_dir(&root.join(source), &project.join(destination));
        }
        git(&project, &["init", "-q", "-b", "main"]);
        git(
            &project,
            &[
                "remote",
                "add",
                "origin",
                &format!("https://{GITLAB_HOST}/{USER_PROJECT}.git"),
            ],
        );
        git(&project, &["add", "-A"]);
        git(&project, &["commit", "-q", "-m", "app"]);
        project
    }

    /// gitlab-ci-local in `project`, its includes fetched from this instance.
    fn gitlab_ci_local(&self, ctx: &TestContext, project: &Path) -> Command {
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
        let mut cmd = isolated(ctx, gitlab_ci_local);
        cmd.current_dir(project)
            .arg("--no-color")
            // The test's own overrides of the registry variables, as a project's would.
            .args(["--ignore-predefined-vars", "CI_REGISTRY,CI_REGISTRY_IMAGE"])
            .env("GIT_CONFIG_COUNT", "1")
            .env(
                "GIT_CONFIG_KEY_0",
                format!("url.file://{}/.insteadOf", self.repos.display()),
            )
            .env("GIT_CONFIG_VALUE_0", format!("https://{GITLAB_HOST}:443/"));
        cmd
    }

    /// The configuration `project`'s pipeline resolves to (inputs interpolated, includes
    /// merged, `extends:` applied, hidden jobs gone), which must pass GitLab's schema.
    fn preview(&self, ctx: &TestContext, project: &Path) -> serde_json::Value {
        let out = self
            .gitlab_ci_local(ctx, project)
            .arg("--preview")
            .output()
            .unwrap();
        assert_ok("gitlab-ci-local --preview", &out);
        let file = project.join("preview.yml");
        std::fs::write(&file, &out.stdout).unwrap();
        check_jsonschema("vendor.gitlab-ci", &[&file]);
        yaml_file(&file)
    }

    /// `gitlab-ci-local --list-json ARGS`: the pipeline's jobs, by name.
    fn jobs(
        &self,
        ctx: &TestContext,
        project: &Path,
        args: &[&str],
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        let out = self
            .gitlab_ci_local(ctx, project)
            .arg("--list-json")
            .args(args)
            .output()
            .unwrap();
        assert_ok("gitlab-ci-local --list-json", &out);
        let jobs: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
        jobs.into_iter()
            .map(|job| (job["name"].as_str().unwrap().to_string(), job))
            .collect()
    }
}

/// How the pipelines name the instance in `include: component:`.
const GITLAB_HOST_VAR: &str = "$CI_SERVER_FQDN";

/// The template's `spec:` header, which check-jsonschema reads as a file of its own
/// (the jobs after `---` are checked once interpolated: `rules: $[[ inputs.rules ]]` is
/// a list only then).
fn template_header(ctx: &TestContext) -> PathBuf {
    let template =
        std::fs::read_to_string(repo_root().join("gitlab-component/templates/kiln.yml")).unwrap();
    let (header, _jobs) = template
        .split_once("\n---\n")
        .expect("a `spec:` header, `---`, then the jobs");
    let file = ctx.path().join("kiln-spec.yml");
    std::fs::write(&file, header).unwrap();
    file
}

/// The whole component against the locally built kiln: a pipeline includes it as the
/// README says, from the mirrored project; kiln builds, writes the dotenv report the
/// next job reads, and keeps its cache in the project's registry (a real one, with basic
/// auth, as `CI_REGISTRY`) with the job's registry credentials, by default.
#[test]
fn gitlab_component_runs_in_gitlab_ci_local() {
    let ctx = TestContext::new();
    let pipeline = "tests/wrappers/gitlab-ci.yml";
    check_jsonschema(
        "vendor.gitlab-ci",
        &[&template_header(&ctx), &repo_root().join(pipeline)],
    );
    let gitlab = GitLab::with_component(&ctx);
    let app = gitlab.project(
        &ctx,
        "app",
        pipeline,
        &[("tests/fixtures/projects/rust-bin", "rust-bin")],
    );

    // The job as GitLab would create it: default rules, and no OIDC token (`keyless`
    // is off).
    let config = gitlab.preview(&ctx, &app);
    let job = &config["kiln-build"];
    assert_eq!(job["stage"], "build", "{job:#}");
    assert_eq!(job["rules"], default_rules(), "{job:#}");
    assert_eq!(job.get("id_tokens"), None, "{job:#}");

    let registry = Registry::start(Mode::basic_auth("gitlab-ci-token", "job-token"));
    let host = registry.host();
    let out = gitlab
        .gitlab_ci_local(&ctx, &app)
        .arg("--force-shell-executor")
        .args(["--variable", &format!("CI_REGISTRY={host}")])
        .args(["--variable", "CI_REGISTRY_USER=gitlab-ci-token"])
        .args(["--variable", "CI_REGISTRY_PASSWORD=job-token"])
        // The test registry speaks plain HTTP; GitLab's speaks HTTPS.
        .args(["--variable", &format!("KILN_INSECURE_REGISTRY={host}")])
        .args(["--variable", "KILN_ALLOW_INSECURE_AUTH=true"])
        .env("PATH", path_with(&[&kiln_dir()]))
        .env_remove("KILN_NO_CACHE")
        .output()
        .unwrap();
    assert_ok("gitlab-ci-local", &out);
    let log = stdout(&out);

    // The job's artifacts, as GitLab would keep them: the dotenv report and the summary.
    let artifacts = app.join(".gitlab-ci-local/artifacts/kiln-build");
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

    // The cache went to `$CI_REGISTRY_IMAGE/kiln-cache`, through the registry's auth.
    let cache = &summary["cache"];
    assert_eq!(
        cache["store"],
        format!("{host}/{USER_PROJECT}/kiln-cache"),
        "{cache:#}"
    );
    assert_eq!(cache["warnings"], serde_json::json!([]), "{cache:#}");
    let kind = &cache["kinds"][0];
    assert_eq!(kind["saved"], true, "{cache:#}");
    let key = kind["key"].as_str().unwrap();
    assert!(
        registry.tag_exists(&format!("{USER_PROJECT}/kiln-cache"), key),
        "no cache tag {key} in the registry:\n{}",
        registry.log()
    );
}

/// A stand-in for kiln that prints, one a line, the arguments the component passes it
/// and the KILN_CACHE it sees, and leaves the files the job keeps.
const STAND_IN_KILN: &str = r#"#!/bin/sh
if [ "$1" = --version ]; then
    echo "kiln 0.0.0 (stand-in)"
    exit 0
fi
for arg in "$@"; do
    printf 'kiln-arg:%s\n' "$arg"
done
printf 'kiln-env:KILN_CACHE=%s\n' "${KILN_CACHE-}"
: > kiln.env
echo '{}' > kiln-summary.json
"#;

/// One pipeline includes the component six times, with six `job-name`s: six jobs, each
/// with its own rules, its own OIDC token only when `keyless` asks for it, and the cache
/// in GitLab's registry unless the inputs or the project's variables say otherwise.
#[test]
fn gitlab_component_inputs_shape_each_included_job() {
    let ctx = TestContext::new();
    let pipeline = "tests/wrappers/gitlab-ci-inputs.yml";
    check_jsonschema("vendor.gitlab-ci", &[&repo_root().join(pipeline)]);
    let gitlab = GitLab::with_component(&ctx);
    let app = gitlab.project(&ctx, "app", pipeline, &[]);

    // One job per include, by the name it was given; a branch pipeline runs those with
    // the default rules, not the one that builds tags only...
    let jobs = gitlab.jobs(&ctx, &app, &[]);
    let when = |jobs: &std::collections::BTreeMap<String, serde_json::Value>| {
        jobs.iter()
            .map(|(name, job)| (name.clone(), job["when"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    let expected = |default_rules_run: &str| {
        [
            ("kiln-cache-variable", default_rules_run),
            ("kiln-default", default_rules_run),
            ("kiln-keyless", default_rules_run),
            ("kiln-no-cache", default_rules_run),
            ("kiln-no-registry", default_rules_run),
            ("kiln-tags-only", "never"),
        ]
        .iter()
        .map(|(name, when)| (name.to_string(), when.to_string()))
        .collect::<Vec<_>>()
    };
    assert_eq!(when(&jobs), expected("on_success"));
    assert_eq!(jobs["kiln-default"]["rules"], default_rules());
    assert_eq!(
        jobs["kiln-tags-only"]["rules"],
        serde_json::json!([{"if": "$CI_COMMIT_TAG"}])
    );
    // ...and none of them while the branch has an open merge request, whose pipeline
    // builds the same commit.
    let with_merge_request = gitlab.jobs(
        &ctx,
        &app,
        &["--variable", "CI_OPEN_MERGE_REQUESTS=acme/app!1"],
    );
    assert_eq!(when(&with_merge_request), expected("never"));

    // Only the keyless job asks GitLab for the Sigstore OIDC token.
    let config = gitlab.preview(&ctx, &app);
    for name in jobs.keys() {
        let job = &config[name.as_str()];
        assert_eq!(job["stage"], "build", "{name}: {job:#}");
        let expected = if name == "kiln-keyless" {
            serde_json::json!({"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}})
        } else {
            serde_json::Value::Null
        };
        assert_eq!(job["id_tokens"], expected, "{name}: {job:#}");
    }

    // The jobs run, with the stand-in kiln: what each passes it about caches.
    let bin = ctx.path().join("stand-in");
    std::fs::create_dir_all(&bin).unwrap();
    let kiln = bin.join("kiln");
    std::fs::write(&kiln, STAND_IN_KILN).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kiln, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = gitlab
        .gitlab_ci_local(&ctx, &app)
        .arg("--force-shell-executor")
        .args(["--variable", "CI_REGISTRY=registry.example.com:5050"])
        .env("PATH", path_with(&[&bin]))
        .env_remove("KILN_CACHE")
        .output()
        .unwrap();
    assert_ok("gitlab-ci-local", &out);
    let log = stdout(&out);
    let outputs = app.join(".gitlab-ci-local/output");
    let seen = |job: &str| -> Vec<String> {
        let text = std::fs::read_to_string(outputs.join(format!("{job}.log")))
            .unwrap_or_else(|_| panic!("{job} did not run:\n{log}"));
        text.lines()
            .filter_map(|line| {
                line.strip_prefix("kiln-arg:")
                    .filter(|arg| {
                        arg.starts_with("--cache=") || *arg == "--no-cache" || *arg == "--keyless"
                    })
                    .or_else(|| line.strip_prefix("kiln-env:"))
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        seen("kiln-default"),
        [
            "--cache=registry.example.com:5050/acme/app/kiln-cache",
            "KILN_CACHE="
        ]
    );
    assert_eq!(
        seen("kiln-keyless"),
        ["--keyless", "--cache=.kiln-cache", "KILN_CACHE="]
    );
    assert_eq!(seen("kiln-no-cache"), ["--no-cache", "KILN_CACHE="]);
    assert_eq!(seen("kiln-cache-variable"), ["KILN_CACHE=/var/cache/kiln"]);
    assert_eq!(seen("kiln-no-registry"), ["KILN_CACHE="]);
    assert!(
        !outputs.join("kiln-tags-only.log").exists(),
        "a tags-only job ran in a branch pipeline:\n{log}"
    );
}

/// `mirror.sh DEST` lays out the component project GitLab needs, replacing whatever an
/// earlier release left there but the git directory, and refuses a DEST that is not a
/// component project, or inside kiln's repository. It runs on a copy of the repository
/// here, with a license file, so that a broken guard could only empty the copy.
#[test]
fn mirror_lays_out_the_component_project_gitlab_requires() {
    let ctx = TestContext::new();
    let root = repo_root();
    let repo = ctx.path().join("kiln");
    copy_dir(
        &root.join("gitlab-component"),
        &repo.join("gitlab-component"),
    );
    std::fs::write(repo.join("LICENSE"), "Apache License 2.0\n").unwrap();

    // A clone of the project after an earlier release.
    let dest = ctx.path().join("kiln-component");
    for (path, text) in [
        (".git/HEAD", "ref: refs/heads/main\n"),
        ("templates/old.yml", "spec:\n"),
        ("NOTES.md", "gone next release\n"),
    ] {
        let file = dest.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let out = mirror(&repo, &dest);
    assert_ok("mirror.sh", &out);
    assert_eq!(
        files_under(&dest),
        [
            ".gitlab-ci.yml",
            "LICENSE",
            "README.md",
            "templates/kiln.yml"
        ]
    );
    for (laid_out, source) in [
        ("templates/kiln.yml", "gitlab-component/templates/kiln.yml"),
        ("README.md", "gitlab-component/README.md"),
        (
            ".gitlab-ci.yml",
            "gitlab-component/component-project.gitlab-ci.yml",
        ),
        ("LICENSE", "LICENSE"),
    ] {
        assert_eq!(
            std::fs::read(dest.join(laid_out)).unwrap(),
            std::fs::read(repo.join(source)).unwrap(),
            "{laid_out}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dest.join(".git/HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
    // The project's own pipeline: valid, and it releases semver tags only.
    check_jsonschema("vendor.gitlab-ci", &[&dest.join(".gitlab-ci.yml")]);
    let release = &yaml_file(&dest.join(".gitlab-ci.yml"))["create-release"];
    assert_eq!(
        release["release"]["tag_name"], "$CI_COMMIT_TAG",
        "{release:#}"
    );
    assert_eq!(
        release["rules"],
        serde_json::json!([{"if": "$CI_COMMIT_TAG =~ /^\\d+\\.\\d+\\.\\d+$/"}])
    );

    // Refused, and left as they were: a directory that is not a component project...
    let other = ctx.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine\n").unwrap();
    let out = mirror(&repo, &other);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {} is not empty and has no templates/: not a component project, left alone\n",
            other.canonicalize().unwrap().display()
        )
    );
    assert_eq!(files_under(&other), ["keep.txt"]);
    // ...and kiln's own repository, or a directory in it.
    for inside in [repo.join("gitlab-component"), repo.join("new-dir")] {
        let before = files_under(&repo);
        let out = mirror(&repo, &inside);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out)
                .starts_with("error: refusing to lay the component out in kiln's own repository"),
            "{}",
            stderr(&out)
        );
        assert_eq!(files_under(&repo), before);
        assert!(inside.ends_with("gitlab-component") || !inside.exists());
    }
    // And it needs exactly one DEST.
    let out = Command::new(repo.join("gitlab-component/mirror.sh"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
