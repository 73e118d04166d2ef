//! Build steps run isolated from kiln, from the CI job above it and from the secrets that
//! later sign what they make.
//!
//! `cargo build` runs every dependency's build script and proc macro; pip runs `setup.py`;
//! componentize-py runs the app's top-level code. An empty environment (see
//! [`crate::process`]) is not enough: a build script can read `/proc/<pid>/environ` of
//! kiln and of the CI shell, the Docker config, kiln's signing key, or append to
//! `GITHUB_ENV` to reach later steps. So on Linux each such step runs through kiln
//! itself (`kiln __isolate … -- PROGRAM ARGS`), which:
//!
//! 1. leaves the CI's user, PID and mount namespaces (`unshare(2)` via `nix`), mapping the
//!    caller to root inside the user namespace (which is no power outside it) so files
//!    the step writes keep the caller as their owner;
//! 2. starts the namespace's PID 1 (kiln again, `--init`), which mounts a fresh `/proc`
//!    (only the build's own processes are visible), lays an empty read-only tmpfs over
//!    each hidden directory and an empty read-only file over each hidden file, and dies
//!    with kiln (`PR_SET_PDEATHSIG`);
//! 3. starts the step itself, reaps every orphan, and exits with the step's status; the
//!    helper passes it on. The network is kept: dependencies download.
//!
//! Where namespaces are not allowed (some runners forbid unprivileged user namespaces),
//! [`Sandbox::detect`] finds out once with a probe that does everything but the exec,
//! and the build runs with [`IsolationKind::None`], which the summary records.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::diagnose::Diagnose;

#[cfg(target_os = "linux")]
mod linux;

/// The hidden first argument that makes the `kiln` binary the isolation helper.
pub const HELPER: &str = "__isolate";

/// The exit status of a helper that could not set up the isolation.
pub(crate) const SETUP_FAILED: i32 = 125;

/// How the build steps of a run were isolated (the summary's `build.isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationKind {
    /// Own user, PID and mount namespaces, a fresh `/proc`, secrets hidden.
    Namespaces,
    /// Not isolated: the steps see what the user kiln runs as sees.
    None,
}

impl std::fmt::Display for IsolationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IsolationKind::Namespaces => "namespaces",
            IsolationKind::None => "none",
        })
    }
}

/// How a run isolates the steps that execute project code.
#[derive(Debug, Clone)]
pub struct Sandbox {
    kind: IsolationKind,
    /// Why isolation is not available, for the one warning.
    unavailable: Option<String>,
    /// kiln's own binary, which is the helper.
    helper: PathBuf,
    /// Files and directories the steps must not see.
    hidden: Vec<PathBuf>,
}

impl Sandbox {
    /// No isolation: where namespaces are not available.
    fn none() -> Sandbox {
        Sandbox {
            kind: IsolationKind::None,
            unavailable: None,
            helper: PathBuf::new(),
            hidden: Vec::new(),
        }
    }

    /// Probes once whether this machine lets kiln isolate, hiding `hidden` (the paths
    /// that exist) from every isolated step. `require` turns "not available" into an
    /// error.
    pub fn detect(hidden: Vec<PathBuf>, require: bool) -> Result<Sandbox, IsolationError> {
        let hidden: Vec<PathBuf> = dedup(hidden.into_iter().filter(|p| p.exists()).collect());
        let reason = match std::env::current_exe() {
            Ok(helper) => match probe(&helper, &hidden) {
                Ok(()) => {
                    return Ok(Sandbox {
                        kind: IsolationKind::Namespaces,
                        unavailable: None,
                        helper,
                        hidden,
                    });
                }
                Err(reason) => reason,
            },
            Err(err) => format!("kiln cannot find its own binary: {err}"),
        };
        if require {
            return Err(IsolationError::Unavailable { reason });
        }
        Ok(Sandbox {
            unavailable: Some(reason),
            ..Sandbox::none()
        })
    }

    pub fn kind(&self) -> IsolationKind {
        self.kind
    }

    /// Why isolation is off, when kiln tried and could not.
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// The program and arguments that run `program args` isolated, or `None` when this
    /// sandbox does not isolate.
    pub(crate) fn wrap(
        &self,
        program: &Path,
        args: &[OsString],
    ) -> Option<(PathBuf, Vec<OsString>)> {
        if self.kind == IsolationKind::None {
            return None;
        }
        Some((
            self.helper.clone(),
            helper_args(&self.hidden, Some((program, args))),
        ))
    }
}

fn dedup(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    paths.dedup();
    paths
}

/// `__isolate [--hide PATH]... (--probe | -- PROGRAM ARGS...)`.
fn helper_args(hidden: &[PathBuf], command: Option<(&Path, &[OsString])>) -> Vec<OsString> {
    let args = HelperArgs {
        hidden: hidden.to_vec(),
        init: None,
        command: command.map(|(program, rest)| {
            std::iter::once(program.as_os_str().to_owned())
                .chain(rest.iter().cloned())
                .collect()
        }),
    };
    std::iter::once(OsString::from(HELPER))
        .chain(args.to_args())
        .collect()
}

/// Runs the helper's whole set-up without a step: `Err` says why it failed.
fn probe(helper: &Path, hidden: &[PathBuf]) -> Result<(), String> {
    let output = std::process::Command::new(helper)
        .args(helper_args(hidden, None))
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| format!("could not start `{}`: {err}", helper.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(stderr
            .trim()
            .strip_prefix("kiln: ")
            .unwrap_or(stderr.trim())
            .to_string())
    }
}

/// Isolation was required and this machine does not allow it.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("Build steps cannot be isolated on this machine: {reason}")]
    Unavailable { reason: String },
}

impl Diagnose for IsolationError {
    fn hint(&self) -> Option<String> {
        Some(
            "kiln needs unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`; \
             on Ubuntu 24.04 `sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or drop \
             --require-isolation to build without it"
                .into(),
        )
    }
}

/// The helper's entry point, called by `main` before anything else starts (unsharing a
/// user namespace needs a single-threaded process). Never returns.
pub fn helper_main(args: Vec<OsString>) -> ! {
    let code = match helper(&args) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            SETUP_FAILED
        }
    };
    std::process::exit(code)
}

/// The helper's one way to speak: a line on the stderr it shares with the step, which
/// kiln captures with the step's output.
#[allow(clippy::print_stderr)]
pub(crate) fn report(message: &str) {
    eprintln!("kiln: {message}");
}

pub(crate) struct HelperArgs {
    pub(crate) hidden: Vec<PathBuf>,
    /// Set in PID 1 (`--init FILE`): the empty file to lay over hidden files.
    pub(crate) init: Option<PathBuf>,
    /// `None` for `--probe`.
    pub(crate) command: Option<Vec<OsString>>,
}

impl HelperArgs {
    pub(crate) fn to_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        for path in &self.hidden {
            args.push("--hide".into());
            args.push(path.into());
        }
        if let Some(empty) = &self.init {
            args.push("--init".into());
            args.push(empty.into());
        }
        match &self.command {
            Some(command) => {
                args.push("--".into());
                args.extend(command.iter().cloned());
            }
            None => args.push("--probe".into()),
        }
        args
    }
}

/// Step 1 (or, with `--init`, steps 2 and 3): the namespaces are Linux's.
fn helper(args: &[OsString]) -> Result<i32, String> {
    let args = parse(args)?;
    #[cfg(target_os = "linux")]
    return linux::helper(args);
    #[cfg(not(target_os = "linux"))]
    return Err("build steps are isolated with Linux namespaces only".into());
}

fn parse(args: &[OsString]) -> Result<HelperArgs, String> {
    let mut parsed = HelperArgs {
        hidden: Vec::new(),
        init: None,
        command: None,
    };
    let mut rest = args.iter();
    loop {
        match rest.next().map(|a| a.as_bytes()) {
            Some(b"--hide") => parsed
                .hidden
                .push(rest.next().ok_or("`--hide` needs a path")?.into()),
            Some(b"--init") => {
                parsed.init = Some(rest.next().ok_or("`--init` needs a path")?.into())
            }
            Some(b"--probe") => return Ok(parsed),
            Some(b"--") => {
                let command: Vec<OsString> = rest.cloned().collect();
                if command.is_empty() {
                    return Err("no program to run".into());
                }
                parsed.command = Some(command);
                return Ok(parsed);
            }
            other => {
                return Err(format!(
                    "unexpected helper argument {:?}",
                    other.map(String::from_utf8_lossy)
                ));
            }
        }
    }
}

/// Whether `arg` (the binary's first argument) asks for the helper.
pub fn is_helper(arg: Option<&OsStr>) -> bool {
    arg == Some(OsStr::new(HELPER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_arguments_round_trip() {
        let hidden = [PathBuf::from("/a b"), PathBuf::from("/c")];
        let rest = [OsString::from("--x"), OsString::from("y")];
        let args = helper_args(&hidden, Some((Path::new("cargo"), &rest)));
        assert_eq!(args[0], HELPER);
        let parsed = parse(&args[1..]).unwrap();
        assert_eq!(parsed.hidden, hidden);
        assert_eq!(parsed.command.unwrap(), ["cargo", "--x", "y"]);
        assert!(parsed.init.is_none());
        let probe = parse(&helper_args(&hidden, None)[1..]).unwrap();
        assert!(probe.command.is_none());
        assert!(parse(&["--bogus".into()]).is_err());
        assert!(parse(&["--".into()]).is_err());
    }
}
