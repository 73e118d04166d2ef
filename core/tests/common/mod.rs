//! The harness every integration test shares: the real `kiln` binary, run in an
//! isolated context against copies of the fixture projects.
#![allow(dead_code)]

pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Cargo's target directory for this workspace.
fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// State shared by all tests of a run: kiln's tools (componentize-py is provisioned
/// once), pip's cache, and one cargo target directory for every Rust fixture so that
/// dependencies and std compile once.
pub fn shared_dir(name: &str) -> PathBuf {
    let dir = workspace_target().join("kiln-tests").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An isolated place to run kiln: a temp dir for the projects and their outputs, and a
/// home directory of its own.
pub struct TestContext {
    pub temp: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl TestContext {
    pub fn new() -> TestContext {
        TestContext {
            temp: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Copies `tests/fixtures/projects/NAME` into the context and returns the copy.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let src = repo_root().join("tests/fixtures/projects").join(name);
        let dst = self.path().join(name);
        copy_dir(&src, &dst);
        dst
    }

    /// A home directory of this context's own: nothing of the user's (Docker config,
    /// git config, caches) reaches kiln.
    pub fn home(&self) -> PathBuf {
        self.home.path().to_path_buf()
    }

    /// The `kiln` binary with an isolated environment: its own `HOME` and
    /// `DOCKER_CONFIG`, no `XDG_*` directories, and kiln's home shared by the run. The
    /// Rust toolchain is still the machine's: `CARGO_HOME` and `RUSTUP_HOME` point at it.
    pub fn kiln(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        let home = self.home();
        let user_home = home::home_dir().expect("the tests run with a home directory");
        cmd.current_dir(self.path())
            .env("HOME", &home)
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env(
                "CARGO_HOME",
                home::cargo_home().unwrap_or_else(|_| user_home.join(".cargo")),
            )
            .env(
                "RUSTUP_HOME",
                home::rustup_home().unwrap_or_else(|_| user_home.join(".rustup")),
            )
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .env("KILN_HOME", self.kiln_home())
            .env("CARGO_TARGET_DIR", shared_dir("cargo-target"))
            .env("PIP_CACHE_DIR", shared_dir("pip-cache"))
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("NO_COLOR", "1")
            .env("KILN_NO_PROGRESS", "1")
            // Tests run under CI too: their builds must not post to the CI's own pull
            // request or job outputs. Platform tests set their own.
            .env("KILN_PLATFORM", "local")
            // Caches are tested in tests/cache.rs, with their own homes; elsewhere they
            // would only save the shared target directory again and again.
            .env("KILN_NO_CACHE", "1")
            .env_remove("KILN_CACHE")
            // The suite may itself run under CI: kiln must not see it (the local-key
            // warning and the summary are the same everywhere). Tests of CI behaviour
            // set their CI's variables themselves.
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("JENKINS_URL")
            .env_remove("KILN_LAYOUT")
            .env_remove("KILN_LOG")
            .env_remove("RUST_LOG")
            .env_remove("KILN_RUST_TOOLCHAIN")
            .env_remove("SOURCE_DATE_EPOCH")
            // A CI's signing identity and keys are not the tests': without these, a suite
            // running in a GitHub job with `id-token: write` would sign with real Fulcio.
            .env_remove("SIGSTORE_ID_TOKEN")
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
            .env_remove("KILN_SIGNING_KEY")
            .env_remove("KILN_SIGNING_PASSWORD")
            .env_remove("COSIGN_PASSWORD")
            .env_remove("KILN_VERIFY_KEY")
            // cargo sets CARGO for tests; users do not have it, and cargo_metadata honours it.
            .env_remove("CARGO")
            .stdin(Stdio::null());
        cmd
    }

    /// kiln's home, shared by every test of a run: componentize-py is provisioned
    /// once (its venv cannot move), and compiled code is keyed on the artifact digest.
    fn kiln_home(&self) -> PathBuf {
        shared_dir("kiln-home")
    }

    /// Runs `kiln ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.kiln().args(args).output().unwrap()
    }

    /// Runs `kiln ARGS`, feeding `stdin`.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        output_with_stdin(self.kiln().args(args), stdin)
    }

    /// `kiln build PROJECT --output json`, which must succeed; returns the summary.
    pub fn build(&self, project: &Path, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["build", project.to_str().unwrap(), "--output", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).expect("summary JSON on stdout")
    }
}

/// Runs `cmd` to completion with `stdin` as its input, capturing its output.
pub fn output_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The stored Wasm layer of a build, from its summary.
pub fn layer_path(summary: &serde_json::Value) -> PathBuf {
    blob(
        Path::new(summary["artifact"]["layout"].as_str().unwrap()),
        summary["artifact"]["layer_digest"].as_str().unwrap(),
    )
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".kiln" || name == "target" || name == "__pycache__" {
            continue;
        }
        let to = dst.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "kiln failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit status:\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Whether an external tool the test needs is installed; `scripts/test` installs them
/// all, so a missing one fails the test rather than skipping it.
#[track_caller]
pub fn require_tool(tool: &str) -> PathBuf {
    which::which(tool).unwrap_or_else(|_| {
        panic!("`{tool}` is not installed: run the tests through `scripts/test`, which installs it")
    })
}

/// Reads back a stored artifact with skopeo: returns (manifest, config) JSON.
pub fn skopeo_read(oci_reference: &str) -> (serde_json::Value, serde_json::Value) {
    require_tool("skopeo");
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", oci_reference])
        .output()
        .unwrap();
    assert!(raw.status.success(), "skopeo: {}", stderr(&raw));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let config = Command::new("skopeo")
        .args(["inspect", "--raw", "--config", oci_reference])
        .output()
        .unwrap();
    assert!(
        config.status.success(),
        "skopeo --config: {}",
        stderr(&config)
    );
    (manifest, serde_json::from_slice(&config.stdout).unwrap())
}

/// The python that has the test peers installed (PyPI `wasmtime`, `jsonschema`).
pub fn peer_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            std::env::var_os("KILN_TEST_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| require_tool("python3"))
        })
        .clone()
}

/// Runs `wasm` (a module or component file) with PyPI `wasmtime`, an independent
/// runtime: returns (stdout, exit code).
pub fn run_with_pypi_wasmtime(wasm: &Path, args: &[&str], stdin: &str) -> (String, i32) {
    let script = repo_root().join("tests/peers/run_wasm.py");
    let out = output_with_stdin(
        Command::new(peer_python()).arg(script).arg(wasm).args(args),
        stdin,
    );
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code != 99,
        "the peer runtime failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout(&out), code)
}

/// The path of a blob inside a layout.
pub fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Validates a summary against the committed JSON Schema with PyPI `jsonschema`.
pub fn assert_valid_summary(summary: &serde_json::Value) {
    assert_matches_schema(summary, "summary.schema.json");
}

/// Validates a document kiln printed against its committed `schema/NAME` with PyPI
/// `jsonschema`.
#[track_caller]
pub fn assert_matches_schema(document: &serde_json::Value, name: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(document).unwrap()).unwrap();
    let schema = repo_root().join("schema").join(name);
    let out = Command::new(peer_python())
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))",
        ])
        .arg(&schema)
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the document does not match schema/{name}:\n{}",
        stderr(&out)
    );
}
