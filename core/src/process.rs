//! Running toolchain subprocesses and keeping what a failure needs to explain itself.
//!
//! 1. Spawns the command with stdin closed and stdout/stderr piped.
//! 2. Streams every output line to the [`Reporter`] (shown live with `-v`) while
//!    keeping the whole output for the caller.
//! 3. On a non-zero exit, returns a [`ProcessError`] with the command line, the exit
//!    status and the tails of stdout and stderr.

use std::ffi::OsStr;
use std::fmt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::reporter::Reporter;

/// How many trailing lines of each stream a [`ProcessError`] keeps.
const TAIL_LINES: usize = 40;

/// The captured result of a finished subprocess.
#[derive(Debug, Clone)]
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A subprocess that could not be started or that exited unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("Failed to start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", Tails(stdout, stderr))]
    Failed {
        command: String,
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
}

struct Tails<'a>(&'a str, &'a str);

impl fmt::Display for Tails<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, text) in [("stdout", self.0), ("stderr", self.1)] {
            let tail = tail(text, TAIL_LINES);
            if !tail.trim().is_empty() {
                write!(f, "\n--- {name} (last lines) ---\n{}", tail.trim_end())?;
            }
        }
        Ok(())
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len();
    let trimmed = text.trim_end_matches('\n');
    let mut count = 0;
    for (i, _) in trimmed.rmatch_indices('\n') {
        count += 1;
        if count == n {
            start = i + 1;
            break;
        }
    }
    if count < n {
        trimmed
    } else {
        &trimmed[start..]
    }
}

/// Renders a command line for messages, quoting arguments that need it.
pub fn display_command(program: &OsStr, args: &[&OsStr]) -> String {
    let mut out = quote(program);
    for arg in args {
        out.push(' ');
        out.push_str(&quote(arg));
    }
    out
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The command line of `cmd`, for messages and logs.
pub fn describe(cmd: &Command) -> String {
    let std = cmd.as_std();
    let args: Vec<&OsStr> = std.get_args().collect();
    display_command(std.get_program(), &args)
}

/// Runs `cmd` to completion, streaming its output lines to `reporter`.
///
/// Returns the captured output when it exits with status 0, and a
/// [`ProcessError::Failed`] otherwise.
pub async fn run(cmd: &mut Command, reporter: &dyn Reporter) -> Result<Captured, ProcessError> {
    let captured = run_unchecked(cmd, reporter).await?;
    if captured.status.success() {
        Ok(captured)
    } else {
        Err(ProcessError::Failed {
            command: describe(cmd),
            status: captured.status,
            stdout: captured.stdout,
            stderr: captured.stderr,
        })
    }
}

/// Like [`run`], but a non-zero exit is returned to the caller, not turned into an error.
pub async fn run_unchecked(
    cmd: &mut Command,
    reporter: &dyn Reporter,
) -> Result<Captured, ProcessError> {
    let command = describe(cmd);
    tracing::debug!(%command, "running");
    for secret in crate::env::SECRETS {
        cmd.env_remove(secret);
    }
    let started = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (stdout, stderr, status) = tokio::join!(
        collect(stdout, reporter),
        collect(stderr, reporter),
        child.wait()
    );
    let status = status.map_err(|source| ProcessError::Spawn {
        command: command.clone(),
        source,
    })?;
    tracing::debug!(
        %command,
        %status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "finished"
    );
    Ok(Captured {
        status,
        stdout,
        stderr,
    })
}

async fn collect(stream: impl AsyncRead + Unpin, reporter: &dyn Reporter) -> String {
    let mut lines = BufReader::new(stream).lines();
    let mut all = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        reporter.output_line(&line);
        all.push_str(&line);
        all.push('\n');
    }
    all
}

/// Whether `program` can be found: a path that exists, or a name on `PATH`.
pub fn find_program(program: impl AsRef<OsStr>) -> Option<std::path::PathBuf> {
    let program = program.as_ref();
    if Path::new(program).components().count() > 1 {
        let path = Path::new(program);
        return path.is_file().then(|| path.to_path_buf());
    }
    which::which(program).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\nb\nc", 5), "a\nb\nc");
        assert_eq!(tail("", 3), "");
    }

    #[test]
    fn quotes_only_when_needed() {
        let args = [
            OsStr::new("--bin"),
            OsStr::new("my app"),
            OsStr::new("it's"),
        ];
        assert_eq!(
            display_command(OsStr::new("cargo"), &args),
            r"cargo --bin 'my app' 'it'\''s'"
        );
    }

    #[tokio::test]
    async fn failure_keeps_command_status_and_tails() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let err = run(&mut cmd, &crate::reporter::Silent).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`sh -c 'echo out; echo err >&2; exit 3'` failed"),
            "{msg}"
        );
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.contains("--- stdout (last lines) ---\nout"), "{msg}");
        assert!(msg.contains("--- stderr (last lines) ---\nerr"), "{msg}");
    }

    #[tokio::test]
    async fn toolchain_commands_never_see_secrets() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo ${KILN_SIGNING_PASSWORD:-unset} ${SIGSTORE_ID_TOKEN:-unset} $KEPT",
        ])
        .env(crate::env::KILN_SIGNING_PASSWORD, "hunter2")
        .env(crate::env::SIGSTORE_ID_TOKEN, "eyJ")
        .env("KEPT", "kept");
        let out = run(&mut cmd, &crate::reporter::Silent).await.unwrap();
        assert_eq!(out.stdout.trim(), "unset unset kept");
    }
}
