//! Rust projects built to wasm32-wasip1 modules with the real toolchain, stored in the
//! local layout, read back by skopeo and run by kiln and by PyPI `wasmtime`.

mod common;

use common::{
    TestContext, assert_exit, assert_success, assert_valid_summary, layer_path,
    run_with_pypi_wasmtime, skopeo_read, stderr, stdout,
};

#[test]
fn rust_bin_builds_runs_and_is_read_back_by_peers() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let summary = ctx.build(&project, &[]);
    assert_eq!(summary["schema_version"], 1);
    assert_eq!(summary["build"]["wasm_kind"], "module");
    assert_eq!(summary["artifact"]["os"], "wasip1");
    assert_eq!(summary["artifact"]["reference"], "rust-bin:0.3.1");
    assert_valid_summary(&summary);
    let ignore = std::fs::read_to_string(project.join(".kiln/.gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "*"), "{ignore}");

    // kiln runs it: args, stdin, stdout, exit code.
    let out = ctx.run_with_stdin(
        &["run", "rust-bin", "--", "one", "two", "--exit", "4"],
        "alpha beta\ngamma\n",
    );
    assert_exit(&out, 4);
    assert_eq!(
        stdout(&out),
        "{\"args\":[\"one\",\"two\"],\"lines\":2,\"words\":3,\"env\":null}\n"
    );

    // skopeo reads the layout: one application/wasm layer, the Wasm config.
    let oci_ref = summary["artifact"]["oci_reference"].as_str().unwrap();
    let (manifest, config) = skopeo_read(oci_ref);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(
        manifest["layers"][0]["digest"],
        summary["artifact"]["layer_digest"]
    );
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip1");
    assert_eq!(
        config["layerDigests"][0],
        summary["artifact"]["layer_digest"]
    );

    // An independent runtime gives the same answer for the stored layer.
    let (peer_out, peer_code) = run_with_pypi_wasmtime(
        &layer_path(&summary),
        &["one", "two", "--exit", "4"],
        "alpha beta\ngamma\n",
    );
    assert_eq!(peer_code, 4);
    assert_eq!(peer_out, stdout(&out));

    // The same artifact by layout reference and by file.
    let by_ref = ctx.run(&["run", oci_ref, "--", "x"]);
    assert_success(&by_ref);
    assert!(stdout(&by_ref).starts_with("{\"args\":[\"x\"]"));
}

#[test]
fn same_inputs_give_the_same_digest() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let first = ctx.build(&project, &["--tag", "same:1"]);
    std::fs::remove_dir_all(project.join(".kiln")).unwrap();
    let second = ctx.build(&project, &["--tag", "same:1"]);
    assert_eq!(first["artifact"]["digest"], second["artifact"]["digest"]);
    assert_eq!(
        first["artifact"]["layer_digest"],
        second["artifact"]["layer_digest"]
    );

    // SOURCE_DATE_EPOCH is recorded, and changes the digest.
    let out = ctx
        .kiln()
        .args(["build", "rust-bin", "--output", "json", "--tag", "same:1"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert_success(&out);
    let dated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dated["artifact"]["created"], "2023-11-14T22:13:20Z");
    assert_ne!(dated["artifact"]["digest"], first["artifact"]["digest"]);
    let (manifest, config) = skopeo_read(dated["artifact"]["oci_reference"].as_str().unwrap());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
}

#[test]
fn guests_get_no_files_or_environment_unless_granted() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    ctx.build(&project, &[]);
    let secret = ctx.path().join("shared");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("note.txt"), "granted\n").unwrap();

    let denied = ctx.run(&["run", "rust-bin", "--", "--read", "/data/note.txt"]);
    assert_exit(&denied, 3);
    assert!(
        stderr(&denied).contains("cannot read /data/note.txt"),
        "{}",
        stderr(&denied)
    );
    let host_path = secret.join("note.txt");
    let denied_host = ctx.run(&[
        "run",
        "rust-bin",
        "--",
        "--read",
        host_path.to_str().unwrap(),
    ]);
    assert_exit(&denied_host, 3);

    let dir = format!("{}::/data", secret.display());
    let granted = ctx.run(&[
        "run",
        "rust-bin",
        "--dir",
        &dir,
        "--",
        "--read",
        "/data/note.txt",
    ]);
    assert_success(&granted);
    assert_eq!(stdout(&granted), "granted\n");

    // A grant is read-only unless it says `:rw`.
    let write = |grant: &str| {
        ctx.run(&[
            "run",
            "rust-bin",
            "--dir",
            grant,
            "--",
            "--write",
            "/data/new.txt",
        ])
    };
    let read_only = write(&dir);
    assert_exit(&read_only, 3);
    assert!(
        stderr(&read_only).contains("cannot write /data/new.txt"),
        "{}",
        stderr(&read_only)
    );
    assert!(!secret.join("new.txt").exists());
    assert_success(&write(&format!("{dir}:rw")));
    assert_eq!(
        std::fs::read_to_string(secret.join("new.txt")).unwrap(),
        "written by the guest\n"
    );

    let no_env = ctx
        .kiln()
        .args(["run", "rust-bin"])
        .env("GREETING", "hi")
        .output()
        .unwrap();
    assert!(
        stdout(&no_env).contains("\"env\":null"),
        "{}",
        stdout(&no_env)
    );
    let env = ctx.run(&["run", "rust-bin", "--env", "GREETING=hello"]);
    assert!(
        stdout(&env).contains("\"env\":\"hello\""),
        "{}",
        stdout(&env)
    );
}

#[test]
fn workspace_builds_the_chosen_package() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-workspace");
    let summary = ctx.build(&project, &["--package", "greet"]);
    assert_eq!(summary["artifact"]["reference"], "greet:1.0.0");
    let out = ctx.run(&[
        "run",
        summary["artifact"]["oci_reference"].as_str().unwrap(),
        "--",
        "kiln",
    ]);
    assert_success(&out);
    assert_eq!(stdout(&out), "hello, kiln\n");
}

#[test]
fn lib_and_bin_builds_only_the_binary() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-lib-and-bin");
    ctx.build(&project, &[]);
    let out = ctx.run(&["run", "rust-lib-and-bin", "--", "quiet", "please"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "QUIET PLEASE\n");
}

#[test]
fn features_from_kiln_toml_avoid_the_c_dependency() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-features");
    ctx.build(&project, &[]);
    let out = ctx.run(&["run", "rust-features", "--", "2", "40"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "sum 42\n");

    // Without kiln.toml, the default feature's C code is named, with the fix.
    std::fs::remove_file(project.join("kiln.toml")).unwrap();
    let out = ctx.run(&["build", "rust-features"]);
    assert_exit(&out, 1);
    let text = stderr(&out);
    assert!(
        text.contains("error: Dependency `libmimalloc-sys`"),
        "the -sys crate is not named:\n{text}"
    );
    assert!(text.contains("no-default-features = true"), "{text}");
    assert!(text.contains("cargo tree -i libmimalloc-sys"), "{text}");
}

#[test]
fn compile_errors_show_the_compiler_message() {
    let ctx = TestContext::new();
    ctx.fixture("rust-broken");
    let out = ctx.run(&["build", "rust-broken"]);
    assert_exit(&out, 1);
    let text = stderr(&out);
    assert!(
        text.contains("error: Failed to compile `rust-broken` for wasm32-wasip1"),
        "{text}"
    );
    assert!(text.contains("error[E0308]: mismatched types"), "{text}");
    assert!(text.contains("let count: u32 = \"three\";"), "{text}");
    assert!(text.contains("hint: fix the errors above"), "{text}");
}

#[test]
fn build_std_toolchain_builds_a_runnable_module() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let summary = ctx.build(&project, &["--rust-toolchain", "build-std"]);
    let toolchain = summary["build"]["toolchain"].as_str().unwrap();
    assert!(
        toolchain.contains("building std from source"),
        "{toolchain}"
    );
    let out = ctx.run_with_stdin(&["run", "rust-bin", "--", "a"], "x y z\n");
    assert_success(&out);
    assert_eq!(
        stdout(&out),
        "{\"args\":[\"a\"],\"lines\":1,\"words\":3,\"env\":null}\n"
    );
}

#[test]
fn threads_against_an_old_wasi_libc_name_the_missing_symbols() {
    // std's threads need pthread symbols that Debian's 2022 wasi-libc lacks: the error
    // names them and the fix instead of dumping the linker's output.
    let ctx = TestContext::new();
    let project = ctx.path().join("threads");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"threads\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        project.join("src/main.rs"),
        "fn main() { std::thread::spawn(|| println!(\"hi\")).join().unwrap(); }\n",
    )
    .unwrap();
    let out = ctx.run(&["build", "threads", "--rust-toolchain", "build-std"]);
    assert_exit(&out, 1);
    let text = stderr(&out);
    assert!(
        text.contains("error: The program links against C library functions the wasm32-wasip1 libc lacks: `pthread_"),
        "{text}"
    );
    assert!(
        text.contains("hint: the local wasi-libc is older"),
        "{text}"
    );
    assert!(text.contains("rustup target add wasm32-wasip1"), "{text}");
}

#[test]
fn runs_a_wasm_file_directly() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-workspace");
    let summary = ctx.build(&project, &["--package", "count"]);
    let wasm = ctx.path().join("count.wasm");
    std::fs::copy(layer_path(&summary), &wasm).unwrap();
    let out = ctx.run(&["run", wasm.to_str().unwrap(), "--", "a", "b", "c"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "3 arguments\n");
}
