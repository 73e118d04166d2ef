//! The one way kiln starts a subprocess, and what a failure keeps to explain itself.
//!
//! 1. [`Cmd::new`] starts from an **empty environment plus an allowlist** taken from
//!    kiln's [`Env`] ([`Env::for_subprocess`]): toolchain probes, `cargo metadata`, git,
//!    pip, componentize-py, cargo and credential helpers all get PATH, HOME, the toolchain
//!    and proxy settings, and what kiln sets on purpose ([`Cmd::env`]); never a token,
//!    password or key kiln was handed.
//! 2. Runs it with stdin closed (or fed from [`Cmd::stdin`]) and stdout/stderr piped,
//!    streaming every output line to the [`Reporter`] (shown live with `-v`) while keeping
//!    the whole output for the caller; [`Cmd::timeout`] bounds it and kills it after.
//! 3. On a non-zero exit, returns a [`ProcessError`] with the command line, the exit
//!    status and the tails of stdout and stderr.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};

use crate::env::Env;
use crate::isolation::Sandbox;
use crate::reporter::{Reporter, Silent};

/// How many trailing lines of each stream a [`ProcessError`] keeps.
const TAIL_LINES: usize = 40;

/// A subprocess to run: program, arguments, working directory and its whole environment.
#[derive(Clone)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    sandbox: Option<Sandbox>,
}

impl fmt::Debug for Cmd {
    /// The command line and the names (not values) of its environment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmd")
            .field("command", &self.to_string())
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<&OsStr> = self.args.iter().map(OsString::as_os_str).collect();
        f.write_str(&display_command(self.program.as_os_str(), &args))
    }
}

impl Cmd {
    /// `program` with the environment [`Env::for_subprocess`] allows, and nothing else.
    pub fn new(program: impl Into<PathBuf>, env: &Env) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: env
                .for_subprocess()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            cwd: None,
            stdin: None,
            timeout: None,
            sandbox: None,
        }
    }

    /// `program` with every variable of `env`: only for Docker credential helpers, which
    /// the user configured to read credentials (`docker-credential-ecr-login` needs
    /// `AWS_*`). Never for anything the project controls.
    pub fn with_full_environment(program: impl Into<PathBuf>, env: &Env) -> Cmd {
        Cmd {
            env: env.all().map(|(k, v)| (k.into(), v.into())).collect(),
            ..Cmd::new(program, &Env::new())
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets a variable on purpose (it replaces an inherited one of the same name).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        let key = key.as_ref().to_owned();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.as_ref().to_owned()));
        self
    }

    /// Drops an inherited variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.env.retain(|(k, _)| k.as_os_str() != key.as_ref());
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    /// Feeds these bytes on stdin, then closes it.
    pub fn stdin(mut self, bytes: Vec<u8>) -> Cmd {
        self.stdin = Some(bytes);
        self
    }

    /// Kills the process and fails with [`ProcessError::TimedOut`] after `limit`.
    pub fn timeout(mut self, limit: Duration) -> Cmd {
        self.timeout = Some(limit);
        self
    }

    /// Runs it isolated in `sandbox` (see [`crate::isolation`]): for every step that
    /// executes project code.
    pub fn isolated(mut self, sandbox: &Sandbox) -> Cmd {
        self.sandbox = Some(sandbox.clone());
        self
    }

    /// The program's path or name.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The environment it will get, in order: for tests and `--verbose` logs.
    pub fn environment(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// Runs to completion, streaming output lines to `reporter`; a non-zero exit is an
    /// error.
    pub async fn run(&self, reporter: &dyn Reporter) -> Result<Captured, ProcessError> {
        let captured = self.run_unchecked(reporter).await?;
        if captured.status.success() {
            Ok(captured)
        } else {
            Err(ProcessError::Failed {
                command: self.to_string(),
                status: captured.status,
                stdout: captured.stdout,
                stderr: captured.stderr,
            })
        }
    }

    /// Runs and captures quietly: for probes whose output is data.
    pub async fn output(&self) -> Result<Captured, ProcessError> {
        self.run(&Silent).await
    }

    /// Like [`Cmd::run`], but a non-zero exit is returned to the caller.
    pub async fn run_unchecked(&self, reporter: &dyn Reporter) -> Result<Captured, ProcessError> {
        let command = self.to_string();
        tracing::debug!(%command, "running");
        let started = std::time::Instant::now();
        let mut child = self.spawn().map_err(|source| ProcessError::Spawn {
            command: command.clone(),
            source,
        })?;
        let stdin = child.stdin.take();
        let input = self.stdin.clone();
        let feed = async move {
            if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
                // A child that exits without reading its input is not an error here.
                let _ = pipe.write_all(&bytes).await;
            }
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let finished = async {
            let ((), stdout, stderr, status) = tokio::join!(
                feed,
                collect(stdout, reporter),
                collect(stderr, reporter),
                child.wait()
            );
            (stdout, stderr, status)
        };
        let (stdout, stderr, status) = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, finished).await {
                Ok(done) => done,
                Err(_) => {
                    return Err(ProcessError::TimedOut {
                        command,
                        seconds: limit.as_secs_f64(),
                    });
                }
            },
            None => finished.await,
        };
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

    fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        let mut attempts = 0;
        let wrapped = match &self.sandbox {
            Some(sandbox) => sandbox.wrap(&self.resolve_program()?, &self.args),
            None => None,
        };
        let (program, args) = match &wrapped {
            Some((helper, args)) => (helper.as_path(), args.as_slice()),
            None => (self.program.as_path(), self.args.as_slice()),
        };
        loop {
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args)
                .env_clear()
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(if self.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            if let Some(dir) = &self.cwd {
                cmd.current_dir(dir);
            }
            match cmd.spawn() {
                // ETXTBSY: a program written a moment ago (an installer, a test) can still
                // be open for writing in a child another thread is forking. It clears.
                Err(err)
                    if err.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 5 =>
                {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }
}

impl Cmd {
    /// The program as a path, looked up on the child's `PATH` the way the OS would: an
    /// isolated step is started by the helper, so a missing program must be found
    /// missing here.
    fn resolve_program(&self) -> std::io::Result<PathBuf> {
        if self.program.components().count() > 1 {
            return Ok(self.program.clone());
        }
        let path = self
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        let cwd = match &self.cwd {
            Some(dir) => dir.clone(),
            None => std::env::current_dir()?,
        };
        which::which_in(&self.program, path, cwd)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::NotFound, err.to_string()))
    }
}

/// The captured result of a finished subprocess.
#[derive(Debug, Clone)]
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A subprocess that could not be started, ran too long, or exited unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("Failed to start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` did not finish in {seconds} s and was stopped")]
    TimedOut { command: String, seconds: f64 },
    #[error("`{command}` failed ({status}){}", Tails(stdout, stderr))]
    Failed {
        command: String,
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
}

impl ProcessError {
    /// The program could not be found or executed at all.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcessError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The tails of a failed command's stdout and stderr, for messages.
#[derive(Debug)]
pub struct Tails<'a>(pub &'a str, pub &'a str);

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
    let trimmed = text.trim_end_matches('\n');
    if n == 0 {
        return trimmed;
    }
    // After the `n`th newline from the end (a one-byte char: `i + 1` is a boundary), or
    // all of it when there are fewer lines.
    trimmed
        .rmatch_indices('\n')
        .nth(n - 1)
        .and_then(|(i, _)| trimmed.get(i + 1..))
        .unwrap_or(trimmed)
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

/// Every line of `stream` (bytes that are not UTF-8 replaced, never dropped), each also
/// handed to `reporter`.
async fn collect(stream: impl AsyncRead + Unpin, reporter: &dyn Reporter) -> String {
    let mut reader = BufReader::new(stream);
    let mut all = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                reporter.output_line(text);
                all.push_str(text);
                all.push('\n');
            }
        }
    }
    all
}

/// Whether `program` can be found: a path that exists, or a name on the `PATH` of `env`.
pub fn find_program(program: impl AsRef<OsStr>, env: &Env) -> Option<PathBuf> {
    let program = program.as_ref();
    if Path::new(program).components().count() > 1 {
        let path = Path::new(program);
        return path.is_file().then(|| path.to_path_buf());
    }
    let cwd = std::env::current_dir().ok()?;
    which::which_in(program, env.get("PATH"), cwd).ok()
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

    fn sh(script: &str, env: &Env) -> Cmd {
        Cmd::new("sh", env).args(["-c", script])
    }

    fn path_only() -> Env {
        Env::from_pairs([("PATH", std::env::var("PATH").unwrap_or_default())])
    }

    #[tokio::test]
    async fn failure_keeps_command_status_and_tails() {
        let err = sh("echo out; echo err >&2; exit 3", &path_only())
            .run(&Silent)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sh -c 'echo out; echo err >&2; exit 3'` failed (exit status: 3)\n\
             --- stdout (last lines) ---\nout\n--- stderr (last lines) ---\nerr"
        );
    }

    #[tokio::test]
    async fn children_see_only_the_allowlist_and_what_kiln_sets() {
        let mut env = path_only();
        env.set(crate::env::KILN_SIGNING_PASSWORD, "hunter2");
        env.set(crate::env::SIGSTORE_ID_TOKEN, "eyJ");
        env.set("CARGO_HOME", "/c");
        let out = sh("env | sort", &env)
            .env("PIP_NO_INPUT", "1")
            .output()
            .await
            .unwrap();
        let names: Vec<&str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            // The shell adds its own.
            .filter(|k| !["PWD", "SHLVL", "_", "OLDPWD"].contains(k))
            .collect();
        assert_eq!(names, ["CARGO_HOME", "PATH", "PIP_NO_INPUT"]);
    }

    #[tokio::test]
    async fn stdin_is_fed_and_timeouts_stop_the_child() {
        let out = sh("cat", &path_only())
            .stdin(b"fed".to_vec())
            .output()
            .await
            .unwrap();
        assert_eq!(out.stdout, "fed\n");
        let err = sh("sleep 5", &path_only())
            .timeout(Duration::from_millis(100))
            .output()
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }), "{err}");
    }
}
