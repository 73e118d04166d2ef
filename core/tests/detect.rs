//! Detection and planning on every fixture, and the errors bad input gets.

mod common;

use common::{TestContext, assert_exit, assert_success, stderr};

fn plan(ctx: &TestContext, project: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["plan", project.to_str().unwrap(), "--output", "json"];
    args.extend_from_slice(extra);
    let out = ctx.run(&args);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

#[test]
fn rust_fixtures() {
    let ctx = TestContext::new();
    let bin = plan(&ctx, &ctx.fixture("rust-bin"), &[]);
    assert_eq!(bin["project"]["kind"]["language"], "rust");
    assert_eq!(bin["project"]["kind"]["bin"], "rust-bin");
    assert_eq!(bin["reference"], "rust-bin:0.3.1");

    let lib = plan(&ctx, &ctx.fixture("rust-lib-and-bin"), &[]);
    assert_eq!(lib["project"]["kind"]["bin"], "shout");
    assert_eq!(lib["project"]["kind"]["package"], "lib-and-bin");

    let features = plan(&ctx, &ctx.fixture("rust-features"), &[]);
    assert_eq!(features["project"]["kind"]["no_default_features"], true);

    let workspace = ctx.fixture("rust-workspace");
    let greet = plan(&ctx, &workspace, &["--package", "greet"]);
    assert_eq!(greet["project"]["kind"]["bin"], "greet");
    assert_eq!(greet["reference"], "greet:1.0.0");
    let count = plan(&ctx, &workspace, &["--bin", "count"]);
    assert_eq!(count["project"]["kind"]["package"], "count");
}

#[test]
fn python_fixtures() {
    let ctx = TestContext::new();
    let req = plan(&ctx, &ctx.fixture("python-requirements"), &[]);
    assert_eq!(req["project"]["kind"]["language"], "python");
    assert_eq!(req["project"]["kind"]["source"]["type"], "requirements");
    assert_eq!(req["project"]["kind"]["entry"]["type"], "script");
    assert_eq!(req["project"]["kind"]["entry"]["path"], "app.py");

    let pyproject = plan(&ctx, &ctx.fixture("python-pyproject"), &[]);
    assert_eq!(pyproject["project"]["kind"]["source"]["type"], "wheel");
    assert_eq!(pyproject["project"]["kind"]["entry"]["type"], "function");

    let native = plan(&ctx, &ctx.fixture("python-native-dep"), &[]);
    assert_eq!(native["project"]["kind"]["language"], "python");
}

#[test]
fn dry_run_prints_the_plan_and_builds_nothing() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let out = ctx.run(&["build", project.to_str().unwrap(), "--dry-run"]);
    assert_success(&out);
    let text = stderr(&out);
    assert!(
        text.contains("entry      bin `rust-bin` of package `rust-bin`"),
        "{text}"
    );
    // The test context turns caching off (KILN_NO_CACHE).
    assert!(
        text.contains(
            "stages     detect → (restore skipped: caching is off (--no-cache)) → build → \
             package → store → (push skipped: no --push) → sign → attest → (save skipped: \
             caching is off (--no-cache)) → summary"
        ),
        "{text}"
    );
    let out = ctx
        .kiln()
        .env_remove("KILN_NO_CACHE")
        .args(["build", project.to_str().unwrap(), "--dry-run"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stderr(&out);
    assert!(
        text.contains(
            "stages     detect → restore → build → package → store → (push skipped: no --push) \
             → sign → attest → save → summary"
        ),
        "{text}"
    );
    assert!(!project.join(".kiln").exists(), "a dry run wrote .kiln/");
}

/// Replaces the parts of an error that change from run to run.
fn redact(ctx: &TestContext, text: &str) -> String {
    let temp = ctx.path().canonicalize().unwrap();
    text.replace(temp.to_str().unwrap(), "[TEMP]")
        .replace(ctx.path().to_str().unwrap(), "[TEMP]")
}

fn failing(ctx: &TestContext, args: &[&str]) -> String {
    failing_output(ctx, ctx.kiln().args(args))
}

#[test]
fn missing_path() {
    let ctx = TestContext::new();
    insta::assert_snapshot!(failing(&ctx, &["build", "does-not-exist"]));
}

#[test]
fn empty_directory() {
    let ctx = TestContext::new();
    std::fs::create_dir(ctx.path().join("empty")).unwrap();
    insta::assert_snapshot!(failing(&ctx, &["build", "empty"]));
}

#[test]
fn unknown_project() {
    let ctx = TestContext::new();
    ctx.fixture("unknown");
    insta::assert_snapshot!(failing(&ctx, &["build", "unknown"]));
}

#[test]
fn malformed_cargo_toml() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"rust-bin\"\nversion = \n",
    )
    .unwrap();
    insta::assert_snapshot!(failing(&ctx, &["build", "rust-bin"]));
}

#[test]
fn malformed_pyproject_toml() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-pyproject");
    std::fs::write(
        project.join("pyproject.toml"),
        "[project]\nname = \"tool\"\nscripts = {\n",
    )
    .unwrap();
    insta::assert_snapshot!(failing(&ctx, &["build", "python-pyproject"]));
}

#[test]
fn malformed_kiln_toml() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-features");
    std::fs::write(
        project.join("kiln.toml"),
        "[rust]\nno-default-feature = true\n",
    )
    .unwrap();
    insta::assert_snapshot!(failing(&ctx, &["build", "rust-features"]));
}

#[test]
fn several_binaries_ask_which() {
    let ctx = TestContext::new();
    ctx.fixture("rust-workspace");
    insta::assert_snapshot!(failing(&ctx, &["build", "rust-workspace"]));
}

#[test]
fn missing_cargo() {
    let ctx = TestContext::new();
    ctx.fixture("rust-bin");
    insta::assert_snapshot!(failing_with_env(
        &ctx,
        &["build", "rust-bin"],
        ("PATH", "/nonexistent")
    ));
}

#[test]
fn missing_wasm_toolchain() {
    // cargo and rustc, but no linker for std built from source.
    let ctx = TestContext::new();
    ctx.fixture("rust-bin");
    let bin = ctx.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["cargo", "rustc"] {
        std::os::unix::fs::symlink(common::require_tool(tool), bin.join(tool)).unwrap();
    }
    insta::assert_snapshot!(failing_with_env(
        &ctx,
        &["build", "rust-bin", "--rust-toolchain", "build-std"],
        ("PATH", bin.to_str().unwrap())
    ));
}

#[test]
fn missing_python() {
    let ctx = TestContext::new();
    ctx.fixture("python-requirements");
    insta::assert_snapshot!(failing_with_env(
        &ctx,
        &["build", "python-requirements"],
        ("KILN_PYTHON", "/nonexistent/python3")
    ));
}

fn failing_with_env(ctx: &TestContext, args: &[&str], env: (&str, &str)) -> String {
    failing_output(ctx, ctx.kiln().args(args).env(env.0, env.1))
}

/// Runs `cmd`, which must fail with exit 1 and a hint; returns its error block.
fn failing_output(ctx: &TestContext, cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert_exit(&out, 1);
    let text = redact(ctx, &stderr(&out));
    assert!(text.contains("\nhint: "), "no hint:\n{text}");
    text.lines()
        .skip_while(|l| !l.starts_with("error:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `rust-toolchain.toml` naming a toolchain `path` would make rustup run the project's
/// own programs as `cargo` and `rustc`: kiln refuses before running any of them.
#[test]
fn a_toolchain_path_in_the_project_is_refused_and_never_runs() {
    use std::os::unix::fs::PermissionsExt as _;
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let toolchain = project.join("tc");
    let ran = ctx.path().join("project-compiler-ran");
    std::fs::create_dir_all(toolchain.join("bin")).unwrap();
    for program in ["cargo", "rustc"] {
        let path = toolchain.join("bin").join(program);
        std::fs::write(
            &path,
            format!("#!/bin/sh\ntouch '{}'\nexit 1\n", ran.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        project.join("rust-toolchain.toml"),
        format!("[toolchain]\npath = \"{}\"\n", toolchain.display()),
    )
    .unwrap();

    let refused =
        failing(&ctx, &["build", "rust-bin"]).replace(toolchain.to_str().unwrap(), "[TOOLCHAIN]");
    insta::assert_snapshot!(refused);
    assert!(!ran.exists(), "kiln ran the project's own toolchain");

    // The check is what stood in the way: allowed, rustup runs the project's programs.
    // (Through rustup's proxies, as on a runner: not the toolchain `cargo test` put first
    // on PATH, nor the toolchain it pinned for its children.)
    let proxies = home::cargo_home().unwrap().join("bin");
    let out = ctx
        .kiln()
        .args(["build", "rust-bin", "--allow-toolchain-path"])
        .env("PATH", format!("{}:/usr/bin:/bin", proxies.display()))
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        ran.exists(),
        "rustup did not honour the toolchain path:\n{}",
        stderr(&out)
    );
}
