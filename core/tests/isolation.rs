//! Project code never reaches the secrets that sign its artifact: hostile build scripts
//! (a Rust `build.rs`, a Python `setup.py`) search everything they can see for a canary
//! secret kiln was started with, and try to append to the CI's step files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestContext, assert_exit, assert_success, stderr};

/// Where the canary is planted around one build, and what must stay untouched.
struct Canary {
    value: String,
    github_env: PathBuf,
    key: PathBuf,
}

const GITHUB_ENV_BEFORE: &str = "KEPT=1\n";

impl Canary {
    /// Plants the canary: in `project/canary.txt` (what the build script looks for), in a
    /// Docker config, in the repository's git config (as actions/checkout and GitLab's
    /// runner leave a token), and as the password of the key kiln signs with.
    fn plant(ctx: &TestContext, project: &Path) -> Canary {
        let value = format!("kiln-canary-{:016x}", rand_u64());
        std::fs::write(project.join("canary.txt"), &value).unwrap();

        let docker = ctx.home().join(".docker");
        std::fs::create_dir_all(&docker).unwrap();
        let docker_config = docker.join("config.json");
        std::fs::write(
            &docker_config,
            format!(r#"{{"auths":{{"registry.example":{{"auth":"{value}"}}}}}}"#),
        )
        .unwrap();

        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(args)
                .current_dir(project)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["init", "-q"]);
        git(&[
            "remote",
            "add",
            "origin",
            &format!("https://gitlab-ci-token:{value}@gitlab.example/group/app.git"),
        ]);

        let github_env = ctx.path().join("github_env");
        std::fs::write(&github_env, GITHUB_ENV_BEFORE).unwrap();
        let keys = ctx.path().join("keys");
        let out = ctx
            .kiln()
            .args(["keygen", "--output-dir", keys.to_str().unwrap()])
            .env("KILN_SIGNING_PASSWORD", &value)
            .output()
            .unwrap();
        assert_success(&out);
        let key = keys.join("cosign.key");

        std::fs::write(
            project.join("watch.txt"),
            format!(
                "secret {}\nsecret {}\nsecret {}\nappend {}\n",
                docker_config.display(),
                key.display(),
                project.join(".git/config").display(),
                github_env.display()
            ),
        )
        .unwrap();
        Canary {
            value,
            github_env,
            key,
        }
    }

    /// `kiln build` with the canary in every secret a CI hands a job.
    fn build(&self, ctx: &TestContext, project: &Path, extra: &[&str]) -> Command {
        let mut cmd = ctx.kiln();
        cmd.args(["build", project.to_str().unwrap(), "--output", "json"])
            .args(["--key", self.key.to_str().unwrap(), "--no-keyless"])
            .args(extra)
            .env("KILN_REGISTRY_PASSWORD", &self.value)
            .env("KILN_SIGNING_PASSWORD", &self.value)
            .env("CI_JOB_TOKEN", &self.value)
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &self.value)
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:9/token")
            .env("GITHUB_ENV", &self.github_env);
        cmd
    }

    #[track_caller]
    fn assert_never_reached(&self, summary_out: &std::process::Output) {
        assert_success(summary_out);
        let summary: serde_json::Value = serde_json::from_slice(&summary_out.stdout).unwrap();
        assert_eq!(summary["build"]["isolation"], "namespaces", "{summary}");
        assert_eq!(
            std::fs::read_to_string(&self.github_env).unwrap(),
            GITHUB_ENV_BEFORE,
            "the build reached GITHUB_ENV"
        );
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[test]
fn rust_build_script_never_sees_the_secrets() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-canary");
    let canary = Canary::plant(&ctx, &project);
    let out = canary.build(&ctx, &project, &[]).output().unwrap();
    canary.assert_never_reached(&out);

    // The same build where namespaces are not allowed: the build script does find the
    // canary (in kiln's own /proc/PID/environ), so the search above was real. Writing
    // canary.txt again makes cargo run the build script again.
    std::fs::write(project.join("canary.txt"), &canary.value).unwrap();
    let exposed = without_namespaces(&canary.build(&ctx, &project, &["--force"]))
        .output()
        .unwrap();
    assert_exit(&exposed, 1);
    let message = stderr(&exposed);
    assert!(
        message.contains("the canary reached the build script") && message.contains("/environ"),
        "{message}"
    );
}

#[test]
fn python_setup_py_never_sees_the_secrets() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-canary");
    let canary = Canary::plant(&ctx, &project);
    let out = canary.build(&ctx, &project, &[]).output().unwrap();
    canary.assert_never_reached(&out);
}

/// Runs `kiln` in a user namespace that may create no further user namespaces: a real
/// machine where isolation is not allowed (as on runners that forbid unprivileged user
/// namespaces).
fn without_namespaces(cmd: &Command) -> Command {
    let mut wrapped = Command::new(common::require_tool("unshare"));
    wrapped
        .args(["--user", "--map-root-user", "--", "sh", "-c"])
        .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"")
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

#[test]
fn without_namespaces_the_build_says_so_and_can_be_refused() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let mut build = ctx.kiln();
    build.args(["build", project.to_str().unwrap(), "--output", "json"]);

    let out = without_namespaces(&build).output().unwrap();
    assert_success(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["build"]["isolation"], "none");
    let warnings = stderr(&out);
    assert_eq!(
        warnings.matches("run without isolation").count(),
        1,
        "{warnings}"
    );

    let mut required = ctx.kiln();
    required
        .args(["build", project.to_str().unwrap(), "--force"])
        .env("KILN_REQUIRE_ISOLATION", "1");
    let out = without_namespaces(&required).output().unwrap();
    assert_exit(&out, 1);
    let message = stderr(&out);
    assert!(message.contains("cannot be isolated"), "{message}");
    assert!(message.contains("user namespaces"), "{message}");
}
