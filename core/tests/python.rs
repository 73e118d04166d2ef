//! Python projects built to WASI p2 components with componentize-py (provisioned by
//! kiln), stored in the local layout and run by kiln and by PyPI `wasmtime`.

mod common;

use common::{
    TestContext, assert_exit, assert_success, assert_valid_summary, layer_path,
    run_with_pypi_wasmtime, skopeo_read, stderr, stdout,
};

fn fact<'a>(summary: &'a serde_json::Value, name: &str) -> &'a str {
    summary["build"]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no fact `{name}` in {summary}"))["value"]
        .as_str()
        .unwrap()
}

#[test]
fn pyproject_app_runs_like_under_python() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-pyproject");
    let summary = ctx.build(&project, &[]);
    assert_eq!(summary["build"]["wasm_kind"], "component");
    assert_eq!(summary["artifact"]["os"], "wasip2");
    assert_eq!(summary["artifact"]["reference"], "rot13-cli:1.2.0");
    assert_valid_summary(&summary);
    assert_eq!(summary["project"]["entry"], "rot13_cli.cli:main");
    assert!(fact(&summary, "carried modules").parse::<u32>().unwrap() > 50);

    // The project's own tree is left as it was (no build/, egg-info, __pycache__).
    for leftover in [
        "build",
        "src/rot13_cli.egg-info",
        "src/rot13_cli/__pycache__",
    ] {
        assert!(
            !project.join(leftover).exists(),
            "{leftover} left in the project"
        );
    }

    // Arguments, a lazily imported stdlib module (getopt, textwrap) and a codec
    // (rot13, unicode_escape) used inside functions, a pure-Python dependency.
    let out = ctx.run(&["run", "python-pyproject", "--", "Hello,", "wörld"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "Uryyb, j\\xf6eyq\n[12 chars, width 12]\n");

    // stdin.
    let out = ctx.run_with_stdin(&["run", "python-pyproject"], "from stdin\n");
    assert_success(&out);
    assert_eq!(stdout(&out), "sebz fgqva\n[10 chars, width 10]\n");

    // sys.exit(3) is a failure (a component reports only success or failure).
    let out = ctx.run(&["run", "python-pyproject", "--", "--fail", "x"]);
    assert_exit(&out, 1);
    assert_eq!(stdout(&out), "k\n[1 chars, width 1]\n");

    // An uncaught exception prints its traceback and fails; it is not a trap.
    let out = ctx.run(&["run", "python-pyproject", "--", "-w", "abc", "x"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("ValueError: invalid literal for int()"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("Traceback"), "{}", stderr(&out));

    // No file system unless granted.
    let shared = ctx.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("note.txt"), "granted\n").unwrap();
    let denied = ctx.run(&["run", "python-pyproject", "--", "--read", "/data/note.txt"]);
    assert_exit(&denied, 1);
    assert!(
        stderr(&denied).contains("cannot read /data/note.txt"),
        "{}",
        stderr(&denied)
    );
    let dir = format!("{}::/data", shared.display());
    let granted = ctx.run(&[
        "run",
        "python-pyproject",
        "--dir",
        &dir,
        "--",
        "--read",
        "/data/note.txt",
    ]);
    assert_success(&granted);
    assert_eq!(stdout(&granted), "granted\n");

    // skopeo reads the artifact; the config describes the component's world.
    let (manifest, config) = skopeo_read(summary["artifact"]["oci_reference"].as_str().unwrap());
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(config["os"], "wasip2");
    let exports: Vec<&str> = config["component"]["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(exports.contains(&"wasi:cli/run@0.2.0"), "{exports:?}");
    let imports = config["component"]["imports"].as_array().unwrap();
    assert!(
        imports
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("wasi:cli/stdout@")),
        "{imports:?}"
    );
    assert_eq!(config["component"]["target"], "wasi:cli/command@0.2.0");

    // An independent runtime runs the stored layer the same way.
    let (peer_out, peer_code) =
        run_with_pypi_wasmtime(&layer_path(&summary), &["Hello,", "wörld"], "");
    assert_eq!(peer_code, 0);
    assert_eq!(peer_out, "Uryyb, j\\xf6eyq\n[12 chars, width 12]\n");
    let (_, failing) = run_with_pypi_wasmtime(&layer_path(&summary), &["--fail", "x"], "");
    assert_eq!(failing, 1);
}

#[test]
fn requirements_app_runs_its_script_with_its_dependency() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-requirements");
    let summary = ctx.build(&project, &[]);
    assert_eq!(summary["project"]["entry"], "python app.py");
    assert_eq!(fact(&summary, "dependencies"), "1");

    let out = ctx.run(&["run", "python-requirements", "--", "hello", "wörld"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.starts_with("| word "), "{text}");
    assert!(text.contains("| hello  "), "{text}");
    assert!(text.contains("| wörld  "), "{text}");

    let usage = ctx.run(&["run", "python-requirements"]);
    assert_exit(&usage, 1);
    assert!(
        stderr(&usage).contains("usage: app.py WORD..."),
        "{}",
        stderr(&usage)
    );

    let (peer_out, peer_code) =
        run_with_pypi_wasmtime(&layer_path(&summary), &["hello", "wörld"], "");
    assert_eq!(peer_code, 0);
    assert_eq!(peer_out, text);
}

#[test]
fn native_dependency_is_named_before_the_build() {
    let ctx = TestContext::new();
    ctx.fixture("python-native-dep");
    let out = ctx.run(&["build", "python-native-dep"]);
    assert_exit(&out, 1);
    let text = stderr(&out);
    assert!(
        text.contains(
            "error: Dependency `numpy` has no pure-Python or WASI wheel for CPython 3.14"
        ),
        "{text}"
    );
    assert!(text.contains("\nhint: "), "{text}");
    assert!(
        !text.contains("componentize-py componentize"),
        "componentize-py ran:\n{text}"
    );
}

#[test]
fn componentize_py_is_provisioned_when_missing() {
    // A PATH without a componentize-py and an empty tools dir: kiln installs its own.
    let ctx = TestContext::new();
    let project = ctx.fixture("python-requirements");
    let home = ctx.path().join("fresh-home");
    let out = ctx
        .kiln()
        .args(["plan", project.to_str().unwrap(), "--output", "json"])
        .env("KILN_HOME", &home)
        .env("PATH", "/usr/bin:/bin")
        .env("KILN_PYTHON", python3())
        .output()
        .unwrap();
    assert_success(&out);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let toolchain = plan["toolchains"][0].as_str().unwrap();
    assert!(
        toolchain.contains(&format!("(to be installed into {}/tools/", home.display())),
        "{toolchain}"
    );
}

fn python3() -> String {
    common::require_tool("python3")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn setup_py_project_with_console_scripts_and_a_version_known_only_once_built() {
    // A legacy setuptools project (no pyproject.toml): its entry point comes from
    // `console_scripts`, and its version from the wheel its build backend made.
    let ctx = TestContext::new();
    let project = ctx.path().join("legacy");
    std::fs::create_dir_all(project.join("legacy_tool")).unwrap();
    std::fs::write(
        project.join("setup.py"),
        "from setuptools import setup\n\
         VERSION = '.'.join(['2', '5', '0'])\n\
         setup(name='legacy-tool', version=VERSION, packages=['legacy_tool'],\n\
               entry_points={'console_scripts': ['legacy = legacy_tool.main:run']})\n",
    )
    .unwrap();
    std::fs::write(project.join("legacy_tool/__init__.py"), "").unwrap();
    std::fs::write(
        project.join("legacy_tool/main.py"),
        "import sys\n\ndef run():\n    print('legacy', ' '.join(sys.argv[1:]))\n",
    )
    .unwrap();
    let summary = ctx.build(&project, &[]);
    assert_eq!(summary["project"]["entry"], "legacy_tool.main:run");
    assert_eq!(summary["project"]["version"], "2.5.0");
    assert_eq!(summary["artifact"]["reference"], "legacy:2.5.0");
    // The SBOM names the distribution its build backend made, not the directory.
    let sbom =
        std::fs::read_to_string(summary["attestation"]["sbom_path"].as_str().unwrap()).unwrap();
    assert!(sbom.contains("pkg:pypi/legacy-tool@2.5.0"), "{sbom}");
    let out = ctx.run(&["run", "legacy", "--", "still", "works"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "legacy still works\n");
}

#[test]
fn pure_dependency_published_only_as_source_is_built_into_a_wheel() {
    // docopt 0.6.2 has no wheel on PyPI at all: kiln builds its sdist on the host,
    // checks the wheel is pure Python and installs it for the component.
    let ctx = TestContext::new();
    let project = ctx.path().join("docopt-app");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("requirements.txt"), "docopt==0.6.2\n").unwrap();
    std::fs::write(
        project.join("app.py"),
        "\"\"\"Usage: app.py greet <name> [--shout]\"\"\"\n\
         from docopt import docopt\n\n\
         if __name__ == \"__main__\":\n    \
             args = docopt(__doc__)\n    \
             text = f\"hello {args['<name>']}\"\n    \
             print(text.upper() if args[\"--shout\"] else text)\n",
    )
    .unwrap();
    let summary = ctx.build(&project, &[]);
    assert_eq!(fact(&summary, "dependencies"), "1");
    let out = ctx.run(&["run", "docopt-app", "--", "greet", "kiln", "--shout"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "HELLO KILN\n");
}
