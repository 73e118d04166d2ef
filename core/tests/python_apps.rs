//! Ordinary Python apps, unchanged, against CPython on the host: each is built into a
//! component, run with known input, and what it prints is compared byte for byte with
//! what the same app prints when pip installs it into a virtual environment of the
//! host's python3.
//!
//! One fixture per class of app that a static import graph got wrong (computed imports,
//! package data, distribution metadata, namespace packages, legacy `scripts=`, optional C
//! speed-ups), then a published CLI of each class, fetched by its pinned sdist: Pygments,
//! pyfiglet, flake8, tempora (`jaraco.*`), smartypants and yamllint (PyYAML).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestContext, output_with_stdin, require_tool, shared_dir, stderr, stdout};

/// How the host runs the app once it is installed in its virtual environment.
enum HostRun<'a> {
    /// A command pip installed into the environment's `bin/`.
    Command(&'a str),
    /// `python SCRIPT` in the project directory (a requirements app).
    Script(&'a str),
}

/// A virtual environment of the host's python3 with an app installed.
struct HostApp {
    venv: PathBuf,
    project: PathBuf,
    /// An empty working directory, like the component's: no configuration file of the
    /// project's (`docutils.conf`, `setup.cfg`) is read from it.
    cwd: PathBuf,
}

impl HostApp {
    /// `pip install` of `what` (a project directory, `-r requirements.txt`, or a pinned
    /// distribution) into a new virtual environment under `ctx`.
    fn install(ctx: &TestContext, project: &Path, what: &[&str]) -> HostApp {
        let venv = ctx.path().join("host-venv");
        let made = Command::new(require_tool("python3"))
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .unwrap();
        assert!(made.status.success(), "venv: {}", stderr(&made));
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(what)
            .current_dir(project)
            .env("PIP_CACHE_DIR", shared_dir("pip-cache"))
            .output()
            .unwrap();
        assert!(
            pip.status.success(),
            "pip install {what:?}: {}",
            stderr(&pip)
        );
        let cwd = ctx.path().join("host-cwd");
        std::fs::create_dir(&cwd).unwrap();
        HostApp {
            venv,
            project: project.to_path_buf(),
            cwd,
        }
    }

    fn run(&self, how: &HostRun<'_>, args: &[&str], stdin: &str) -> (String, i32) {
        let mut cmd = match how {
            HostRun::Command(name) => Command::new(self.venv.join("bin").join(name)),
            HostRun::Script(script) => {
                let mut cmd = Command::new(self.venv.join("bin/python"));
                cmd.arg(self.project.join(script));
                cmd
            }
        };
        let out = output_with_stdin(cmd.args(args).current_dir(&self.cwd), stdin);
        (stdout(&out), out.status.code().unwrap_or(-1))
    }
}

/// Builds `project` with kiln, installs it on the host the way `install` says, and
/// checks that each case (arguments, stdin) prints the same and exits the same way
/// under kiln as under CPython. Returns the build summary.
fn same_as_host(
    ctx: &TestContext,
    project: &Path,
    install: &[&str],
    how: HostRun<'_>,
    cases: &[(&[&str], &str)],
) -> serde_json::Value {
    let summary = ctx.build(project, &[]);
    let host = HostApp::install(ctx, project, install);
    for (args, stdin) in cases {
        let (expected, host_code) = host.run(&how, args, stdin);
        let mut kiln_args = vec!["run", project.to_str().unwrap(), "--"];
        kiln_args.extend_from_slice(args);
        let out = ctx.run_with_stdin(&kiln_args, stdin);
        assert_eq!(
            stdout(&out),
            expected,
            "{args:?} printed something else in the component; stderr:\n{}",
            stderr(&out)
        );
        // A component reports success or failure, not the status itself (README).
        assert_eq!(
            out.status.success(),
            host_code == 0,
            "{args:?}: exit {:?} under kiln, {host_code} under CPython\n{}",
            out.status.code(),
            stderr(&out)
        );
    }
    summary
}

#[test]
fn plugins_found_and_imported_by_computed_names() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-plugins");
    same_as_host(
        &ctx,
        &project,
        &["."],
        HostRun::Command("plugreg"),
        &[
            (&["héllo", "wörld"], ""),
            (
                &["--format", "csv", "--encoding", "cp1252", "crème brûlée"],
                "",
            ),
            (
                &["--format", "pprint", "--encoding", "shift_jis"],
                "from stdin\n",
            ),
            (&["--bogus"], ""),
        ],
    );
}

#[test]
fn package_data_through_resources_pkgutil_and_file_paths() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-data");
    same_as_host(
        &ctx,
        &project,
        &["."],
        HostRun::Command("datapkg"),
        &[(&["kiln"], ""), (&[], "")],
    );
}

#[test]
fn version_and_plugins_from_distribution_metadata() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-metadata");
    same_as_host(
        &ctx,
        &project,
        &["."],
        HostRun::Command("meta-cli"),
        &[
            (&["--version"], ""),
            (&["--about"], ""),
            (&["14", "2026"], ""),
        ],
    );
}

#[test]
fn namespace_packages_import_and_list() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-namespace");
    same_as_host(
        &ctx,
        &project,
        &["."],
        HostRun::Command("acme-greet"),
        &[(&["3", "12"], "")],
    );
}

#[test]
fn legacy_setup_py_scripts_are_the_entry_point() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-legacy-scripts");
    let summary = same_as_host(
        &ctx,
        &project,
        &["."],
        HostRun::Command("legacy-words"),
        &[
            (&["a", "bb", "ccc"], ""),
            (&[], "from stdin too\n"),
            (&[], ""),
        ],
    );
    assert_eq!(summary["project"]["entry"], "python bin/legacy-words");
    assert_eq!(summary["project"]["version"], "3.1.4");
}

#[test]
fn optional_c_speedup_is_built_without_it() {
    let ctx = TestContext::new();
    let project = ctx.fixture("python-speedup");
    same_as_host(
        &ctx,
        &project,
        &["-r", "requirements.txt"],
        HostRun::Script("app.py"),
        &[(
            &[],
            "name: kiln\nlangs: [rust, python]\nnested: {a: 1, b: [x, y]}\n",
        )],
    );
}

#[test]
fn stdlib_modules_import_lazily_and_missing_ones_say_why() {
    // Nothing in the app names these modules before it runs: they come from the
    // standard library kept in memory, or say why CPython for WASI lacks them.
    let ctx = TestContext::new();
    let project = ctx.path().join("lazy-stdlib");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("requirements.txt"), "").unwrap();
    // The project's own files are carried; what `.gitignore` excludes is not source
    // and stays out of the artifact.
    std::fs::write(project.join("notes.txt"), "carried\n").unwrap();
    std::fs::write(project.join("secret.txt"), "hunter2\n").unwrap();
    std::fs::write(project.join(".gitignore"), "secret.txt\n").unwrap();
    std::fs::write(
        project.join("app.py"),
        "import importlib, os, sys\n\
         here = os.path.dirname(__file__)\n\
         for name in ['notes.txt', 'secret.txt']:\n    \
             path = os.path.join(here, name)\n    \
             print(name, open(path).read().strip() if os.path.exists(path) else 'absent')\n\
         for name in sys.argv[1:]:\n    \
             try:\n        \
                 module = importlib.import_module(name)\n        \
                 print(name, 'ok', module.__name__)\n    \
             except ImportError as error:\n        \
                 print(name, 'missing:', error)\n",
    )
    .unwrap();
    let summary = ctx.build(&project, &[]);
    let facts = summary["build"]["facts"].to_string();
    assert!(facts.contains("in-memory standard library"), "{facts}");
    let out = ctx.run(&[
        "run",
        project.to_str().unwrap(),
        "--",
        "calendar",
        "xml.dom.minidom",
        "email.mime.text",
        "tkinter",
        "ssl",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "notes.txt carried\n\
         secret.txt absent\n\
         calendar ok calendar\n\
         xml.dom.minidom ok xml.dom.minidom\n\
         email.mime.text ok email.mime.text\n\
         tkinter missing: No module named 'tkinter': Tk needs a display and the `_tkinter` C \
         module, which CPython for WASI does not have\n\
         ssl missing: No module named 'ssl': CPython for WASI is built without OpenSSL, so \
         there is no TLS\n"
    );
    let layer = std::fs::read(common::layer_path(&summary)).unwrap();
    assert!(
        !layer.windows(7).any(|w| w == b"hunter2"),
        "an ignored file is in the artifact"
    );
}

/// A published project's sdist, unpacked into `ctx`.
fn sdist(ctx: &TestContext, name: &str, version: &str) -> PathBuf {
    let download = ctx.path().join("sdist");
    let python = require_tool("python3");
    let got = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
        ])
        .arg(format!("{name}=={version}"))
        .arg("--dest")
        .arg(&download)
        .env("PIP_CACHE_DIR", shared_dir("pip-cache"))
        .output()
        .unwrap();
    assert!(got.status.success(), "pip download: {}", stderr(&got));
    let archive = std::fs::read_dir(&download)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let unpacked = ctx.path().join("unpacked");
    let extract = Command::new(&python)
        .args(["-m", "tarfile", "-e"])
        .arg(&archive)
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(extract.status.success(), "tarfile: {}", stderr(&extract));
    std::fs::read_dir(&unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// Builds a published CLI from its pinned sdist and compares it with the same version
/// installed on the host by pip.
fn published_same_as_host(
    name: &str,
    version: &str,
    command: &str,
    cases: &[(&[&str], &str)],
) -> serde_json::Value {
    let ctx = TestContext::new();
    let project = sdist(&ctx, name, version);
    let pinned = format!("{name}=={version}");
    same_as_host(&ctx, &project, &[&pinned], HostRun::Command(command), cases)
}

#[test]
fn published_pygments_loads_lexers_and_formatters_by_name() {
    published_same_as_host(
        "Pygments",
        "2.19.2",
        "pygmentize",
        &[
            (
                &["-l", "python", "-f", "terminal"],
                "def f(x):\n    return {'a': [x, 1.5]}\n",
            ),
            (
                &["-l", "rust", "-f", "html"],
                "fn main() { println!(\"hi\"); }\n",
            ),
        ],
    );
}

#[test]
fn published_pyfiglet_reads_its_fonts() {
    published_same_as_host(
        "pyfiglet",
        "1.0.4",
        "pyfiglet",
        &[
            (&["-f", "slant", "kiln"], ""),
            (&["-f", "banner", "wasm"], ""),
        ],
    );
}

#[test]
fn published_flake8_finds_its_plugins_through_entry_points() {
    published_same_as_host(
        "flake8",
        "7.3.0",
        "flake8",
        &[
            (&["-"], "import os\nx=1\n"),
            (&["--select", "E", "-"], "y =  2\n"),
        ],
    );
}

#[test]
fn published_yamllint_uses_pyyaml_without_its_c_speedup() {
    published_same_as_host(
        "yamllint",
        "1.37.1",
        "yamllint",
        &[(&["-"], "a: 1\na: 2\n"), (&["-"], "---\nkey: value\n")],
    );
}

#[test]
fn published_tempora_imports_from_the_jaraco_namespace() {
    // `jaraco.functools` is a portion of the `jaraco` namespace package (no
    // `jaraco/__init__.py`); `calc-prorate` reads its rate from stdin with `input()`.
    published_same_as_host(
        "tempora",
        "5.8.1",
        "calc-prorate",
        &[(&[], "3/year\n"), (&[], "50/month\n")],
    );
}

#[test]
fn published_smartypants_runs_its_legacy_script() {
    // `setup(scripts=[CLI_script])`, `CLI_script = 'smartypants'`: no entry points.
    let summary = published_same_as_host(
        "smartypants",
        "2.0.2",
        "smartypants",
        &[
            (&[], "\"Hello\" -- it's a test...\n"),
            (&["-a", "0"], "'raw' -- text\n"),
        ],
    );
    assert_eq!(summary["project"]["entry"], "python smartypants");
}
