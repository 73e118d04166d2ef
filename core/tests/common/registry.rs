//! A real OCI registry for the tests: Debian's `docker-registry` (distribution 2.8),
//! started by the harness on a free port of 127.0.0.1 with its storage in a temp dir,
//! and stopped by PID. Plain http, http with htpasswd basic auth, or https with a CA
//! generated for the run; plus independent read-back with skopeo and PyPI `oras`.
//!
//! distribution 2.8 has no OCI 1.1 referrers API: pushes to it exercise the tag fallback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{output_with_stdin, peer_python, repo_root, require_tool, stderr, stdout};

/// How long a registry has to answer `GET /v2/` after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How the registry is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Plain http, no auth.
    Plain,
    /// Plain http with htpasswd (bcrypt) basic auth: `GET /v2/` answers 401.
    BasicAuth { user: String, password: String },
    /// https with a server certificate for 127.0.0.1 and localhost, signed by a CA
    /// generated for this registry (see [`Registry::ca_cert`]).
    Tls,
}

impl Mode {
    pub fn basic_auth(user: &str, password: &str) -> Mode {
        Mode::BasicAuth {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }
}

/// Which end of a skopeo command the registry is on; picks the flag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `skopeo inspect`: `--tls-verify`, `--cert-dir`, `--creds`.
    Inspect,
    /// `skopeo copy` source: `--src-tls-verify`, ...
    Src,
    /// `skopeo copy` destination: `--dest-tls-verify`, ...
    Dest,
}

/// A running `docker-registry serve`. Dropping it kills the process.
#[derive(Debug)]
pub struct Registry {
    mode: Mode,
    port: u16,
    /// Holds the config, storage, certificates and the registry's log.
    temp: tempfile::TempDir,
    storage: PathBuf,
    child: Option<Child>,
}

impl Registry {
    /// Starts a registry and waits until `GET /v2/` answers (200, or 401 with basic
    /// auth). Panics with the registry's stderr when it does not come up.
    pub fn start(mode: Mode) -> Registry {
        require_tool("docker-registry");
        let temp = tempfile::Builder::new()
            .prefix("kiln-registry-")
            .tempdir()
            .unwrap();
        let storage = temp.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        match &mode {
            Mode::Plain => {}
            Mode::BasicAuth { user, password } => write_htpasswd(temp.path(), user, password),
            Mode::Tls => generate_certificates(temp.path()),
        }
        let mut registry = Registry {
            mode,
            port: 0,
            temp,
            storage,
            child: None,
        };
        // The free port is found by binding and releasing it, so another process can
        // take it before the registry does: then try another one.
        for attempt in 1.. {
            registry.port = free_port();
            std::fs::write(registry.config_path(), registry.config()).unwrap();
            match registry.spawn_and_wait() {
                Ok(()) => return registry,
                Err(Failure::AddressInUse) if attempt < 5 => continue,
                Err(failure) => registry.fail(&failure),
            }
        }
        unreachable!()
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.mode == Mode::Tls {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host())
    }

    /// `127.0.0.1:PORT/REPO_TAG`
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// `(user, password)` in basic-auth mode.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match &self.mode {
            Mode::BasicAuth { user, password } => Some((user, password)),
            _ => None,
        }
    }

    /// In TLS mode, the CA certificate (PEM) that signed the server's: for
    /// `SSL_CERT_FILE`. It is alone in its directory, so its parent is a valid skopeo
    /// `--cert-dir`.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        (self.mode == Mode::Tls).then(|| self.temp.path().join("certs.d/ca.crt"))
    }

    /// The registry's storage root (`storage.filesystem.rootdirectory`).
    pub fn storage(&self) -> &Path {
        &self.storage
    }

    /// Whether the process is running (not killed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().unwrap().is_none())
    }

    /// SIGKILLs the registry now and reaps it; storage is kept. A no-op when it is
    /// not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` is SIGKILL on Unix, sent to this child's PID only.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again on the same port and storage (after [`kill`]).
    ///
    /// [`kill`]: Registry::kill
    pub fn restart(&mut self) {
        self.kill();
        if let Err(failure) = self.spawn_and_wait() {
            self.fail(&failure);
        }
    }

    /// Whether the registry stores tag `tag` in `repo`, read from its storage.
    pub fn tag_exists(&self, repo: &str, tag: &str) -> bool {
        self.tag_digest(repo, tag).is_some()
    }

    /// The manifest digest tag `tag` of `repo` points at, read from storage.
    pub fn tag_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let link = self
            .repositories()
            .join(repo)
            .join("_manifests/tags")
            .join(tag)
            .join("current/link");
        std::fs::read_to_string(link)
            .ok()
            .map(|digest| digest.trim().to_owned())
    }

    /// Whether blob `digest` (`sha256:...`) is in storage, linked to any repository
    /// or not (an upload cut short leaves none, or an unlinked one).
    pub fn blob_exists(&self, digest: &str) -> bool {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
            .is_file()
    }

    /// skopeo's flags to reach this registry from `side`.
    pub fn skopeo_flags(&self, side: Side) -> Vec<String> {
        let prefix = match side {
            Side::Inspect => "--",
            Side::Src => "--src-",
            Side::Dest => "--dest-",
        };
        let mut flags = Vec::new();
        match &self.mode {
            Mode::Plain => flags.push(format!("{prefix}tls-verify=false")),
            Mode::BasicAuth { user, password } => {
                flags.push(format!("{prefix}tls-verify=false"));
                // On the command line: acceptable for a throwaway test registry only.
                flags.push(format!("{prefix}creds={user}:{password}"));
            }
            Mode::Tls => {
                let cert_dir = self.ca_cert().unwrap().parent().unwrap().to_owned();
                flags.push(format!("{prefix}cert-dir={}", cert_dir.display()));
            }
        }
        flags
    }

    /// The registry's log so far (stdout and stderr of every start).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn repositories(&self) -> PathBuf {
        self.storage.join("docker/registry/v2/repositories")
    }

    fn config_path(&self) -> PathBuf {
        self.temp.path().join("config.yml")
    }

    fn log_path(&self) -> PathBuf {
        self.temp.path().join("registry.log")
    }

    fn config(&self) -> String {
        let dir = self.temp.path();
        let quote = |p: PathBuf| serde_json::to_string(p.to_str().unwrap()).unwrap();
        // Upload purging off: what a cut-off push leaves stays for the test to see.
        let mut config = format!(
            "\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: kiln-test-secret
",
            storage = quote(self.storage.clone()),
            port = self.port,
        );
        match self.mode {
            Mode::Plain => {}
            Mode::BasicAuth { .. } => config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                quote(dir.join("htpasswd"))
            )),
            Mode::Tls => config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                quote(dir.join("tls/server.crt")),
                quote(dir.join("tls/server.key"))
            )),
        }
        config
    }

    fn spawn_and_wait(&mut self) -> Result<(), Failure> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let log_start = usize::try_from(log.metadata().unwrap().len()).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.config_path())
            .current_dir(self.temp.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                let output = self.log().get(log_start..).unwrap_or_default().to_owned();
                return Err(if output.contains("address already in use") {
                    Failure::AddressInUse
                } else {
                    Failure::Exited(status.to_string())
                });
            }
            // An answer is final: only a registry that is not listening yet is waited for.
            let failure = match self.probe() {
                Ok(status) if status == self.ready_status() => return Ok(()),
                Ok(status) => Failure::Answered(format!("`GET /v2/` answered {status}")),
                Err(Probe::Rejected(err)) => Failure::Answered(err),
                Err(Probe::NotYet(err)) if Instant::now() > deadline => Failure::Timeout(err),
                Err(Probe::NotYet(_)) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            self.kill();
            return Err(failure);
        }
    }

    fn ready_status(&self) -> u16 {
        match self.mode {
            Mode::BasicAuth { .. } => 401,
            Mode::Plain | Mode::Tls => 200,
        }
    }

    /// The status of `GET /v2/`; over TLS through `openssl s_client`, which checks
    /// the server's certificate against the CA and 127.0.0.1.
    fn probe(&self) -> Result<u16, Probe> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .map_err(|err| Probe::NotYet(format!("connect: {err}")))?;
        let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host());
        let response = if self.mode == Mode::Tls {
            drop(stream);
            let out = output_with_stdin(
                Command::new(require_tool("openssl"))
                    .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
                    .arg(self.host())
                    .args(["-verify_ip", "127.0.0.1", "-CAfile"])
                    .arg(self.ca_cert().unwrap()),
                &request,
            );
            if !out.status.success() && out.stdout.is_empty() {
                let err = format!("openssl s_client: {}", stderr(&out));
                // A certificate that does not verify will not verify later either.
                return Err(if err.contains("verify error") {
                    Probe::Rejected(err)
                } else {
                    Probe::NotYet(err)
                });
            }
            stdout(&out)
        } else {
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            stream
                .write_all(request.as_bytes())
                .map_err(|err| Probe::NotYet(format!("write: {err}")))?;
            let mut response = String::new();
            stream
                .read_to_string(&mut response)
                .map_err(|err| Probe::NotYet(format!("read: {err}")))?;
            response
        };
        response
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("HTTP/"))
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| Probe::NotYet(format!("not an HTTP response: {response:?}")))
    }

    fn fail(&mut self, failure: &Failure) -> ! {
        self.kill();
        panic!(
            "docker-registry did not come up on {} ({failure:?})\n--- config\n{}\n--- registry output\n{}",
            self.host(),
            self.config(),
            tail(&self.log(), 60)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug)]
enum Failure {
    AddressInUse,
    Exited(String),
    /// It answered, but not as a ready registry of its mode does.
    Answered(String),
    Timeout(String),
}

enum Probe {
    /// Not listening or not answering yet.
    NotYet(String),
    /// Answered in a way that will not change.
    Rejected(String),
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skipped = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skipped > 0 {
        out.push_str(&format!("[{skipped} earlier lines]\n"));
    }
    out.push_str(&lines[skipped..].join("\n"));
    out
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `htpasswd` (Debian `apache2-utils`) writes the bcrypt entry distribution requires;
/// cost 4, the minimum, since the registry checks it on every request.
fn write_htpasswd(dir: &Path, user: &str, password: &str) {
    let out = output_with_stdin(
        Command::new(require_tool("htpasswd")).args(["-n", "-i", "-B", "-C", "4", user]),
        password,
    );
    assert!(out.status.success(), "htpasswd: {}", stderr(&out));
    std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
}

/// A CA (`certs.d/ca.crt`, alone in its dir for skopeo's `--cert-dir`) and a server
/// certificate for IP 127.0.0.1 and DNS localhost (`tls/server.{crt,key}`), P-256.
fn generate_certificates(dir: &Path) {
    let tls = dir.join("tls");
    let certs = dir.join("certs.d");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(
        tls.join("server.ext"),
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = IP:127.0.0.1, DNS:localhost\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new(require_tool("openssl"))
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            stderr(&out)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "2", "-subj", "/CN=kiln test CA"][..],
            &key,
            &["-keyout", "tls/ca.key", "-out", "certs.d/ca.crt"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=127.0.0.1"][..],
            &key,
            &["-keyout", "tls/server.key", "-out", "tls/server.csr"],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        "tls/server.csr",
        "-CA",
        "certs.d/ca.crt",
        "-CAkey",
        "tls/ca.key",
        "-CAcreateserial",
        "-CAserial",
        "tls/ca.srl",
        "-extfile",
        "tls/server.ext",
        "-out",
        "tls/server.crt",
    ]);
}

/// skopeo with an auth file of its own (none), so the user's logins play no part.
pub fn skopeo(registry: &Registry) -> Command {
    let mut cmd = Command::new(require_tool("skopeo"));
    cmd.env(
        "REGISTRY_AUTH_FILE",
        registry.temp.path().join("skopeo-auth.json"),
    )
    .stdin(Stdio::null());
    cmd
}

/// `skopeo inspect --raw` of `REPO:TAG` (or `REPO@DIGEST`) on `registry`, as stored.
/// Panics when skopeo fails.
pub fn skopeo_inspect_raw(registry: &Registry, repo_tag: &str) -> serde_json::Value {
    let out = skopeo_inspect_output(registry, repo_tag, &[]);
    assert!(
        out.status.success(),
        "skopeo inspect {repo_tag}: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON manifest")
}

/// `skopeo inspect --raw --config` of `REPO:TAG`: the config blob. Panics when skopeo
/// fails.
pub fn skopeo_inspect_config(registry: &Registry, repo_tag: &str) -> serde_json::Value {
    let out = skopeo_inspect_output(registry, repo_tag, &["--config"]);
    assert!(
        out.status.success(),
        "skopeo inspect --config {repo_tag}: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON config")
}

/// `skopeo inspect --raw EXTRA docker://HOST/REPO_TAG` with the registry's flags;
/// the output, for tests that expect a failure.
pub fn skopeo_inspect_output(registry: &Registry, repo_tag: &str, extra: &[&str]) -> Output {
    skopeo(registry)
        .args(["inspect", "--raw"])
        .args(extra)
        .args(registry.skopeo_flags(Side::Inspect))
        .arg(format!("docker://{}", registry.reference(repo_tag)))
        .output()
        .unwrap()
}

/// `skopeo copy SRC docker://HOST/REPO_TAG` (SRC e.g. `oci:DIR:TAG`), digests
/// preserved; the output, so that failures can be asserted too.
pub fn skopeo_copy_to(registry: &Registry, src: &str, repo_tag: &str) -> Output {
    skopeo(registry)
        .args(["copy", "--quiet", "--preserve-digests"])
        .args(registry.skopeo_flags(Side::Dest))
        .arg(src)
        .arg(format!("docker://{}", registry.reference(repo_tag)))
        .output()
        .unwrap()
}

/// Reads `REPO:TAG` back with PyPI `oras` (`tests/peers/oras_fetch.py`): returns
/// `{manifest, config, layer_sha256}`, the last computed over the first layer's bytes.
pub fn oras_fetch(registry: &Registry, repo_tag: &str) -> serde_json::Value {
    let out = oras_fetch_output(registry, repo_tag);
    assert!(
        out.status.success(),
        "oras_fetch.py {repo_tag} (PyPI `oras` comes from `scripts/setup --test`): {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("oras_fetch.py JSON")
}

/// The output of `oras_fetch.py`, for tests that expect a failure.
pub fn oras_fetch_output(registry: &Registry, repo_tag: &str) -> Output {
    let mut cmd = Command::new(peer_python());
    cmd.arg(repo_root().join("tests/peers/oras_fetch.py"))
        .arg(registry.reference(repo_tag))
        // oras reads ~/.docker/config.json: keep the user's logins out.
        .env("HOME", registry.temp.path())
        .env_remove("ORAS_USER")
        .env_remove("ORAS_PASS")
        .stdin(Stdio::null());
    match &registry.mode {
        Mode::Plain => {
            cmd.arg("--insecure");
        }
        Mode::BasicAuth { user, password } => {
            cmd.arg("--insecure")
                .env("ORAS_USER", user)
                .env("ORAS_PASS", password);
        }
        Mode::Tls => {
            cmd.arg("--ca").arg(registry.ca_cert().unwrap());
        }
    }
    cmd.output().unwrap()
}
