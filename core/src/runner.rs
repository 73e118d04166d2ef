//! Running a built artifact in-process with wasmtime, capability-scoped.
//!
//! 1. Tells a core module from a component by its header.
//! 2. Loads the compiled code from the cache
//!    (`cache_dir/<engine-hash>/<digest-hex>.cwasm`) or compiles it and stores it there
//!    (temp file + rename). Beside each entry is an HMAC-SHA256 (`.cwasm.mac`), under a
//!    key only kiln reads, over the artifact digest and the code, checked as the file
//!    streams by before wasmtime maps it: an entry someone else wrote (another
//!    program's code, an earlier untrusted build's plant) is recompiled, never mapped. An
//!    unusable cache entry is logged and replaced.
//! 3. Builds the guest's WASI context: host stdin/stdout/stderr, `argv`, and only the
//!    environment variables, directories and network access the request grants.
//! 4. Runs a core module with WASI preview 1 (its `_start` export) and a component with
//!    WASI 0.2 (its `wasi:cli/run` export; semver-compatible `wasi:*@0.2.x` imports
//!    resolve against wasmtime-wasi's own 0.2 version).
//! 5. Turns the guest's exit into an exit code. A trap is an error
//!    ([`RunError::Trap`]), not an exit code: the binary maps it to exit code 134, as
//!    `wasmtime run` does (128 + SIGABRT).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime::{Config, Engine, ExternType, Linker, Module, Store, Trap, WasmBacktrace};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{
    FsPerms, I32Exit, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use crate::diagnose::{Blame, Diagnose};
pub use kiln_cli::DirGrant;

/// The export a WASI preview 1 command starts at.
const START: &str = "_start";

/// What to run and what it may touch.
#[derive(Debug)]
pub struct RunRequest {
    /// Core module or component bytes.
    pub wasm: Vec<u8>,
    /// `sha256:<hex>` of `wasm` (the artifact layer digest). It names the cache entry
    /// and is trusted, not recomputed: the caller must have checked it against `wasm`.
    pub digest: String,
    /// The guest's `argv[0]`.
    pub program_name: String,
    /// The guest's `argv[1..]`.
    pub args: Vec<String>,
    /// The guest's environment: only these variables.
    pub env: Vec<(String, String)>,
    pub dirs: Vec<DirGrant>,
    /// Allow TCP, UDP and name lookup (components only: WASI preview 1 has no sockets).
    pub network: bool,
    /// Where compiled code is cached; `None` compiles every time and stores nothing.
    pub cache: Option<CodeCache>,
    /// What the guest may consume before it is stopped.
    pub limits: Limits,
}

/// The linear memory a guest may grow to when no `--max-memory` is given.
pub const DEFAULT_MAX_MEMORY: usize = 2 << 30;

/// What a guest may consume. Past a limit it is stopped with [`RunError::Limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from the start of the guest (epoch interruption, and for a guest
    /// blocked in a host call, the call is abandoned).
    pub timeout: Option<Duration>,
    /// Bytes each linear memory may grow to.
    pub max_memory: usize,
    /// wasmtime fuel: roughly one unit per Wasm instruction.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: None,
            max_memory: DEFAULT_MAX_MEMORY,
            fuel: None,
        }
    }
}

/// The limit a guest went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    #[error("it ran longer than --timeout {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("it used up its --fuel {0}")]
    Fuel(u64),
    #[error("it tried to grow its memory past --max-memory {0} bytes")]
    Memory(usize),
}

impl Exceeded {
    /// The exit status kiln ends with: 124 for time and fuel (as `timeout(1)` does),
    /// 137 for memory (as the out-of-memory killer's SIGKILL shows).
    pub fn exit_code(self) -> u8 {
        match self {
            Exceeded::Timeout(_) | Exceeded::Fuel(_) => 124,
            Exceeded::Memory(_) => 137,
        }
    }
}

/// The store's memory limiter: refuses growth past the cap with [`Exceeded::Memory`].
struct MemoryCap(usize);

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.0 {
            return Err(wasmtime::Error::new(Exceeded::Memory(self.0)));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table element is a pointer or two: the same cap, counted in elements.
        Ok(desired <= self.0 / 16)
    }
}

/// The compiled-code cache: a directory, and the key that authenticates its entries.
#[derive(Clone)]
pub struct CodeCache {
    pub dir: PathBuf,
    pub key: [u8; 32],
}

impl fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl CodeCache {
    /// The MAC that binds the code fed to it next to the artifact `digest`.
    fn mac(&self, digest: &str) -> hmac::Hmac<Sha256> {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(b"kiln compiled code v1\0");
        mac.update(digest.as_bytes());
        mac.update(b"\0");
        mac
    }
}

/// Where the machine code that ran came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    Cached,
    Compiled,
}

/// How a guest finished.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// `proc_exit(n)` or `wasi:cli/exit` gives `n`; returning normally gives 0; a
    /// component's `run` returning an error gives 1.
    pub exit_code: i32,
    pub compiled: CompileSource,
    /// From the start of [`run`] until just before the guest's entry point is called.
    pub startup: Duration,
}

/// A guest that could not be run, or that trapped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("`{program}` is neither a WebAssembly module nor a component")]
    NotWasm { program: String },
    #[error("Invalid artifact digest `{digest}`: expected `sha256:` and 64 lowercase hex digits")]
    Digest { digest: String },
    #[error("Failed to set up the WebAssembly runtime")]
    Engine {
        #[source]
        source: BoxError,
    },
    #[error("Failed to compile `{program}`")]
    Compile {
        program: String,
        #[source]
        source: BoxError,
    },
    #[error("Failed to grant directory `{}` to the guest as `{guest}`", host.display())]
    Dir {
        host: PathBuf,
        guest: String,
        #[source]
        source: BoxError,
    },
    #[error("`{program}` needs imports kiln does not provide")]
    Link {
        program: String,
        #[source]
        source: BoxError,
    },
    #[error("`{program}` is a core module without a `{START}` function")]
    NoStart { program: String },
    #[error("`{program}` is a component without a `wasi:cli/run` export")]
    NotCommand {
        program: String,
        #[source]
        source: BoxError,
    },
    #[error("`{program}` was stopped: {limit}")]
    Limit { program: String, limit: Exceeded },
    /// The guest trapped. This is not an exit status: the binary exits with 134 for
    /// it, as `wasmtime run` does.
    #[error("`{program}` trapped: {trap}{}", Backtrace(backtrace.as_deref()))]
    Trap {
        program: String,
        trap: Trap,
        /// wasmtime's rendering of the guest's stack, when it captured one.
        backtrace: Option<String>,
    },
    #[error("`{program}` failed")]
    Guest {
        program: String,
        #[source]
        source: BoxError,
    },
}

/// wasmtime's error type does not implement `std::error::Error`; this does, and
/// keeps its chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

struct Backtrace<'a>(Option<&'a str>);

impl fmt::Display for Backtrace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(bt) => write!(f, "\n{}", bt.trim_end()),
            None => Ok(()),
        }
    }
}

impl Diagnose for RunError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Compile { .. } => Some(
                "the artifact may be damaged; rebuild it, or check it with `wasm-tools validate`"
                    .to_owned(),
            ),
            Self::Dir { host, .. } => Some(format!(
                "`--dir` needs an existing directory: check that `{}` is one",
                host.display()
            )),
            Self::Link { .. } => Some(
                "kiln provides WASI preview 1 to core modules and WASI 0.2 to components, \
                 nothing else; build for `wasm32-wasip1` or `wasm32-wasip2`"
                    .to_owned(),
            ),
            Self::NoStart { .. } => Some(
                "build a command (a binary with `fn main`), not a library or a reactor".to_owned(),
            ),
            Self::NotCommand { .. } => Some(
                "build a command component, one that exports `wasi:cli/run` \
                 (componentize-py: `componentize-py -w wasi:cli/command`)"
                    .to_owned(),
            ),
            Self::Limit { limit, .. } => Some(match limit {
                Exceeded::Timeout(_) => "give it longer with `--timeout`, or find where it \
                                         loops or waits"
                    .to_owned(),
                Exceeded::Fuel(_) => "give it more with `--fuel`".to_owned(),
                Exceeded::Memory(_) => {
                    "raise `--max-memory` if it really needs that much".to_owned()
                }
            }),
            Self::Trap { .. } => Some(
                "set `WASMTIME_BACKTRACE_DETAILS=1` for file and line numbers, if the guest \
                 was built with debug info"
                    .to_owned(),
            ),
            Self::NotWasm { .. }
            | Self::Digest { .. }
            | Self::Engine { .. }
            | Self::Guest { .. } => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            Self::Digest { .. } | Self::Engine { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

/// What the bytes are, which decides the WASI version the guest gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Module,
    Component,
}

enum Compiled {
    Module(Module),
    Component(Component),
}

impl Compiled {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Self::Module(module) => module.serialize(),
            Self::Component(component) => component.serialize(),
        }
    }
}

/// Compiles (or loads) and runs a guest until it exits.
pub async fn run(req: RunRequest) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let RunRequest {
        wasm,
        digest,
        program_name: program,
        args,
        env,
        dirs,
        network,
        cache,
        limits,
    } = req;

    let kind = if wasmparser::Parser::is_component(&wasm) {
        Kind::Component
    } else if wasmparser::Parser::is_core_wasm(&wasm) {
        Kind::Module
    } else {
        return Err(RunError::NotWasm { program });
    };
    // The hex digits become a file name: only a valid digest gets through.
    let digest_hex = crate::oci::sha256_hex(&digest).ok_or_else(|| RunError::Digest {
        digest: digest.clone(),
    })?;
    // Before compiling, so that a mistyped `--dir` fails at once.
    let wasi = wasi_ctx(&program, &args, &env, &dirs, network)?;

    let mut config = Config::new();
    // Both change the code wasmtime emits (and so the cache entry's engine hash): only on
    // when asked for.
    config
        .epoch_interruption(limits.timeout.is_some())
        .consume_fuel(limits.fuel.is_some());
    let engine = Engine::new(&config).map_err(|e| RunError::Engine {
        source: e.into_boxed_dyn_error(),
    })?;
    tracing::debug!(elapsed = ?started.elapsed(), "engine ready");
    let cache_entry = cache.map(|cache| CacheEntry {
        path: cache
            .dir
            .join(engine_hash(&engine))
            .join(format!("{digest_hex}.cwasm")),
        cache,
        digest: digest.clone(),
    });

    let (compiled, source) = {
        let engine = engine.clone();
        let program = program.clone();
        tokio::task::spawn_blocking(move || {
            load_or_compile(&engine, kind, &wasm, cache_entry.as_ref(), &program)
        })
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))?
    };

    let (exit_code, startup) = match compiled {
        Compiled::Module(module) => {
            run_module(&engine, &module, wasi, &program, limits, started).await?
        }
        Compiled::Component(component) => {
            run_component(&engine, &component, wasi, &program, limits, started).await?
        }
    };
    tracing::debug!(exit_code, ?startup, elapsed = ?started.elapsed(), "guest finished");
    Ok(RunOutcome {
        exit_code,
        compiled: source,
        startup,
    })
}

/// The guest's WASI context: host stdio, and only what the request grants.
fn wasi_ctx(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    dirs: &[DirGrant],
    network: bool,
) -> Result<WasiCtxBuilder, RunError> {
    let mut builder = WasiCtxBuilder::new();
    builder.inherit_stdio().arg(program).args(args);
    for (key, value) in env {
        builder.env(key, value);
    }
    for dir in dirs {
        builder
            .preopened_dir(
                &dir.host,
                &dir.guest,
                if dir.writable {
                    FsPerms::ReadWrite
                } else {
                    FsPerms::ReadOnly
                },
            )
            .map_err(|e| RunError::Dir {
                host: dir.host.clone(),
                guest: dir.guest.clone(),
                source: e.into_boxed_dyn_error(),
            })?;
    }
    // wasmtime-wasi 48 already denies all of this by default (its docs disagree on
    // TCP/UDP: the code denies them); say so here rather than rely on it.
    builder
        .allow_tcp(network)
        .allow_udp(network)
        .allow_ip_name_lookup(network);
    if network {
        builder.inherit_network();
    } else {
        builder.socket_addr_check(|_, _| Box::pin(async { false }));
    }
    Ok(builder)
}

/// A stable hex name for everything that makes compiled code loadable by `engine`
/// (wasmtime version, target, compiler flags, features).
fn engine_hash(engine: &Engine) -> String {
    /// Feeds `Hash` into SHA-256, so the name does not depend on std's hasher.
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            unreachable!("only the SHA-256 digest is read")
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    // The first 16 of the digest's 32 bytes.
    hex::encode(hasher.0.finalize()).chars().take(32).collect()
}

/// One artifact's entry in the compiled-code cache.
struct CacheEntry {
    path: PathBuf,
    cache: CodeCache,
    digest: String,
}

/// Loads the cached machine code, or compiles it and caches it. Blocking.
fn load_or_compile(
    engine: &Engine,
    kind: Kind,
    wasm: &[u8],
    entry: Option<&CacheEntry>,
    program: &str,
) -> Result<(Compiled, CompileSource), RunError> {
    if let Some(entry) = entry.filter(|entry| entry.path.exists()) {
        let t = Instant::now();
        match load_cached(engine, kind, entry) {
            Ok(compiled) => {
                tracing::debug!(path = %entry.path.display(), elapsed = ?t.elapsed(), "loaded from cache");
                return Ok((compiled, CompileSource::Cached));
            }
            Err(e) => tracing::warn!(
                path = %entry.path.display(),
                error = %format!("{e:#}"),
                "Compiled-code cache entry is unusable; recompiling"
            ),
        }
    }

    let t = Instant::now();
    let compiled = match kind {
        Kind::Module => Module::new(engine, wasm).map(Compiled::Module),
        Kind::Component => Component::new(engine, wasm).map(Compiled::Component),
    }
    .map_err(|e| RunError::Compile {
        program: program.to_owned(),
        source: e.into_boxed_dyn_error(),
    })?;
    tracing::debug!(elapsed = ?t.elapsed(), "compiled");

    if let Some(entry) = entry {
        let t = Instant::now();
        match store_cached(&compiled, entry) {
            Ok(()) => {
                tracing::debug!(path = %entry.path.display(), elapsed = ?t.elapsed(), "cached")
            }
            Err(e) => tracing::warn!(
                path = %entry.path.display(),
                error = %e,
                "Failed to cache compiled code; the next run compiles again"
            ),
        }
    }
    Ok((compiled, CompileSource::Compiled))
}

impl CacheEntry {
    /// The entry's MAC, beside it: `<digest hex>.cwasm.mac`.
    fn mac_path(&self) -> PathBuf {
        self.path.with_extension("cwasm.mac")
    }
}

/// Loads a cache entry written by [`store_cached`] for this artifact, once its MAC
/// checks out.
#[allow(unsafe_code)]
fn load_cached(engine: &Engine, kind: Kind, entry: &CacheEntry) -> wasmtime::Result<Compiled> {
    use hmac::Mac;
    let tag = std::fs::read(entry.mac_path())?;
    // Streamed: a component's code is tens of megabytes, mapped below rather than read.
    let mut mac = entry.cache.mac(&entry.digest);
    let file = std::fs::File::open(&entry.path)?;
    std::io::copy(
        &mut std::io::BufReader::with_capacity(1 << 16, &file),
        &mut mac,
    )?;
    if mac.verify_slice(&tag).is_err() {
        wasmtime::bail!(
            "its MAC does not match: kiln did not write it for {}",
            entry.digest
        );
    }
    // Mapped through the descriptor just read, so a rename over the entry in between
    // cannot put other code under the checked MAC.
    #[cfg(target_os = "linux")]
    let mapped = {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
    };
    #[cfg(not(target_os = "linux"))]
    let mapped = entry.path.clone();
    // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output and maps it
    // as executable code. The MAC, under a key only kiln reads (0600 in its private home,
    // hidden from build steps), proves kiln wrote exactly these bytes for this digest,
    // and on Linux the file mapped is the open file checked. Only kiln writes this
    // directory (private to the user, hidden from build steps), always as a new file
    // renamed into place, so a checked file's bytes do not change under the mapping.
    // wasmtime still checks its header against this engine, and the file name carries
    // the engine's compatibility hash.
    let loaded = unsafe {
        match kind {
            Kind::Module => Module::deserialize_file(engine, &mapped).map(Compiled::Module),
            Kind::Component => {
                Component::deserialize_file(engine, &mapped).map(Compiled::Component)
            }
        }
    };
    drop(file);
    loaded
}

/// Writes `compiled`, then its MAC, to the entry: each a temp file in the same
/// directory renamed over whatever was there. A reader that sees the new code with the
/// old MAC (or none) recompiles.
fn store_cached(compiled: &Compiled, entry: &CacheEntry) -> Result<(), BoxError> {
    use hmac::Mac;
    let bytes = compiled.serialize().map_err(|e| e.into_boxed_dyn_error())?;
    let mut mac = entry.cache.mac(&entry.digest);
    mac.update(&bytes);
    let tag = mac.finalize().into_bytes();
    let dir = entry
        .path
        .parent()
        .ok_or("cache path has no parent directory")?;
    std::fs::create_dir_all(dir)?;
    for (path, content) in [
        (entry.path.clone(), &bytes[..]),
        (entry.mac_path(), &tag[..]),
    ] {
        let mut file = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".cwasm")
            .tempfile_in(dir)?;
        file.write_all(content)?;
        file.persist(&path).map_err(|e| e.error)?;
    }
    Ok(())
}

/// Runs a core module's `_start` with WASI preview 1.
async fn run_module(
    engine: &Engine,
    module: &Module,
    mut wasi: WasiCtxBuilder,
    program: &str,
    limits: Limits,
    started: Instant,
) -> Result<(i32, Duration), RunError> {
    let mut linker = Linker::<P1State>::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| &mut s.wasi).map_err(|e| {
        RunError::Engine {
            source: e.into_boxed_dyn_error(),
        }
    })?;
    let pre = linker.instantiate_pre(module).map_err(|e| RunError::Link {
        program: program.to_owned(),
        source: e.into_boxed_dyn_error(),
    })?;
    if !matches!(module.get_export(START), Some(ExternType::Func(_))) {
        return Err(RunError::NoStart {
            program: program.to_owned(),
        });
    }

    let mut store = Store::new(
        engine,
        P1State {
            wasi: wasi.build_p1(),
            cap: MemoryCap(limits.max_memory),
        },
    );
    store.limiter(|s| &mut s.cap);
    let _watchdog = Watchdog::arm(&mut store, engine, limits)?;
    let instance = match within(limits, pre.instantiate_async(&mut store)).await {
        Ok(instance) => instance,
        // A start function may already exit or trap.
        Err(e) => return Ok((exit_code(e, program, limits)?, started.elapsed())),
    };
    let start = instance
        .get_typed_func::<(), ()>(&mut store, START)
        .map_err(|_| RunError::NoStart {
            program: program.to_owned(),
        })?;
    let startup = started.elapsed();
    tracing::debug!(?startup, "calling `_start`");
    let code = match within(limits, start.call_async(&mut store, ())).await {
        Ok(()) => 0,
        Err(e) => exit_code(e, program, limits)?,
    };
    Ok((code, startup))
}

/// Store state for a core module: its WASI context and the memory cap.
struct P1State {
    wasi: WasiP1Ctx,
    cap: MemoryCap,
}

/// Store state for a component: WASI 0.2 needs a resource table beside the context.
struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
    cap: MemoryCap,
}

/// Stops a guest at its time limit: a thread that advances the engine's epoch when the
/// time is up (the guest, whose deadline is one epoch, traps at its next check), unless
/// the guest finished first and this was dropped.
struct Watchdog {
    _cancel: Option<std::sync::mpsc::Sender<()>>,
}

impl Watchdog {
    /// Gives the store its fuel and its epoch deadline, and starts the timer.
    fn arm<T>(store: &mut Store<T>, engine: &Engine, limits: Limits) -> Result<Watchdog, RunError> {
        if let Some(fuel) = limits.fuel {
            store.set_fuel(fuel).map_err(|e| RunError::Engine {
                source: e.into_boxed_dyn_error(),
            })?;
        }
        let Some(timeout) = limits.timeout else {
            return Ok(Watchdog { _cancel: None });
        };
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let engine = engine.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(timeout)
            {
                engine.increment_epoch();
            }
        });
        Ok(Watchdog {
            _cancel: Some(cancel),
        })
    }
}

/// Runs `call` within the time limit: a guest waiting in a host call (reading a stdin
/// that never ends) does not reach an epoch check, so the call itself is abandoned.
async fn within<T>(
    limits: Limits,
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    match limits.timeout {
        // The epoch trap comes first for a guest that computes; this is for one that waits.
        Some(timeout) => tokio::time::timeout(timeout + Duration::from_millis(100), call)
            .await
            .unwrap_or_else(|_| Err(wasmtime::Error::new(Exceeded::Timeout(timeout)))),
        None => call.await,
    }
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Runs a component's `wasi:cli/run` with WASI 0.2.
async fn run_component(
    engine: &Engine,
    component: &Component,
    mut wasi: WasiCtxBuilder,
    program: &str,
    limits: Limits,
    started: Instant,
) -> Result<(i32, Duration), RunError> {
    let mut linker = ComponentLinker::<P2State>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| RunError::Engine {
        source: e.into_boxed_dyn_error(),
    })?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| RunError::Link {
            program: program.to_owned(),
            source: e.into_boxed_dyn_error(),
        })?;
    let pre = CommandPre::new(pre).map_err(|e| RunError::NotCommand {
        program: program.to_owned(),
        source: e.into_boxed_dyn_error(),
    })?;

    let state = P2State {
        ctx: wasi.build(),
        table: ResourceTable::new(),
        cap: MemoryCap(limits.max_memory),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.cap);
    let _watchdog = Watchdog::arm(&mut store, engine, limits)?;
    let command = match within(limits, pre.instantiate_async(&mut store)).await {
        Ok(command) => command,
        Err(e) => return Ok((exit_code(e, program, limits)?, started.elapsed())),
    };
    let startup = started.elapsed();
    tracing::debug!(?startup, "calling `wasi:cli/run`");
    let code = match within(limits, command.wasi_cli_run().call_run(&mut store)).await {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(e) => exit_code(e, program, limits)?,
    };
    Ok((code, startup))
}

/// The exit code inside a guest's error, or the error it really is.
fn exit_code(e: wasmtime::Error, program: &str, limits: Limits) -> Result<i32, RunError> {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    let exceeded = match (e.downcast_ref::<Exceeded>(), e.downcast_ref::<Trap>()) {
        (Some(exceeded), _) => Some(*exceeded),
        (None, Some(Trap::Interrupt)) => limits.timeout.map(Exceeded::Timeout),
        (None, Some(Trap::OutOfFuel)) => limits.fuel.map(Exceeded::Fuel),
        _ => None,
    };
    if let Some(limit) = exceeded {
        return Err(RunError::Limit {
            program: program.to_owned(),
            limit,
        });
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return Err(RunError::Trap {
            program: program.to_owned(),
            trap: *trap,
            backtrace: e.downcast_ref::<WasmBacktrace>().map(ToString::to_string),
        });
    }
    Err(RunError::Guest {
        program: program.to_owned(),
        source: e.into_boxed_dyn_error(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Hand-assembled binaries: wasmtime's `wat` feature is off, and these stay tiny.
    mod wasm {
        pub fn uleb(mut v: u64, out: &mut Vec<u8>) {
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(byte);
                    return;
                }
                out.push(byte | 0x80);
            }
        }

        fn sleb(mut v: i64, out: &mut Vec<u8>) {
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
                if done {
                    out.push(byte);
                    return;
                }
                out.push(byte | 0x80);
            }
        }

        fn name(s: &str, out: &mut Vec<u8>) {
            uleb(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }

        fn vec(items: &[Vec<u8>]) -> Vec<u8> {
            let mut out = Vec::new();
            uleb(items.len() as u64, &mut out);
            for item in items {
                out.extend_from_slice(item);
            }
            out
        }

        fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
            out.push(id);
            uleb(body.len() as u64, out);
            out.extend_from_slice(body);
        }

        fn func_type(params: usize, results: usize) -> Vec<u8> {
            let mut t = vec![0x60];
            t.extend(vec(&vec![vec![0x7f]; params]));
            t.extend(vec(&vec![vec![0x7f]; results]));
            t
        }

        // Instructions.
        pub fn i32_const(v: i32) -> Vec<u8> {
            let mut out = vec![0x41];
            sleb(v.into(), &mut out);
            out
        }
        pub fn call(f: u32) -> Vec<u8> {
            let mut out = vec![0x10];
            uleb(f.into(), &mut out);
            out
        }
        /// `i32.load` of the word at `addr`.
        pub fn load(addr: i32) -> Vec<u8> {
            let mut out = i32_const(addr);
            out.extend([0x28, 0x02, 0x00]);
            out
        }
        pub const DROP: u8 = 0x1a;
        pub const UNREACHABLE: u8 = 0x00;

        /// A `wasi_snapshot_preview1` function import, all-`i32` signature.
        pub struct Import(pub &'static str, pub usize, pub usize);

        /// A core module with the given `wasi_snapshot_preview1` imports (functions
        /// 0..n), one exported page of `memory` holding `data`, and an exported function
        /// `entry` (function n) running `body`.
        pub fn module(
            imports: &[Import],
            entry: &str,
            body: &[u8],
            data: &[(i32, &[u8])],
        ) -> Vec<u8> {
            let mut out = b"\0asm\x01\0\0\0".to_vec();
            let mut types: Vec<_> = imports.iter().map(|i| func_type(i.1, i.2)).collect();
            types.push(func_type(0, 0));
            section(1, &vec(&types), &mut out);
            let imports_bytes: Vec<_> = imports
                .iter()
                .enumerate()
                .map(|(idx, i)| {
                    let mut e = Vec::new();
                    name("wasi_snapshot_preview1", &mut e);
                    name(i.0, &mut e);
                    e.push(0x00);
                    uleb(idx as u64, &mut e);
                    e
                })
                .collect();
            section(2, &vec(&imports_bytes), &mut out);
            let mut entry_type = Vec::new();
            uleb(imports.len() as u64, &mut entry_type);
            section(3, &vec(&[entry_type.clone()]), &mut out);
            section(5, &vec(&[vec![0x00, 0x01]]), &mut out);
            let mut memory_export = Vec::new();
            name("memory", &mut memory_export);
            memory_export.extend([0x02, 0x00]);
            let mut entry_export = Vec::new();
            name(entry, &mut entry_export);
            entry_export.push(0x00);
            entry_export.extend(&entry_type);
            section(7, &vec(&[memory_export, entry_export]), &mut out);
            let mut code = vec![0x00];
            code.extend_from_slice(body);
            code.push(0x0b);
            let mut sized = Vec::new();
            uleb(code.len() as u64, &mut sized);
            sized.extend(code);
            section(10, &vec(&[sized]), &mut out);
            let segments: Vec<_> = data
                .iter()
                .map(|(offset, bytes)| {
                    let mut s = vec![0x00];
                    s.extend(i32_const(*offset));
                    s.push(0x0b);
                    uleb(bytes.len() as u64, &mut s);
                    s.extend_from_slice(bytes);
                    s
                })
                .collect();
            section(11, &vec(&segments), &mut out);
            out
        }

        /// A component importing, under each name in `imports`, an instance with
        /// `wasi:cli/environment`'s `get-arguments`, and
        /// exporting instance `export` with `run: func() -> result`, whose core
        /// function returns `discriminant` (0 = ok, 1 = err).
        pub fn component(imports: &[&str], export: &str, discriminant: i32) -> Vec<u8> {
            let mut out = b"\0asm\x0d\0\x01\0".to_vec();
            // Core module: (func (export "run") (result i32) i32.const D).
            let mut core = b"\0asm\x01\0\0\0".to_vec();
            section(1, &vec(&[func_type(0, 1)]), &mut core);
            section(3, &vec(&[vec![0x00]]), &mut core);
            let mut run_export = Vec::new();
            name("run", &mut run_export);
            run_export.extend([0x00, 0x00]);
            section(7, &vec(&[run_export.clone()]), &mut core);
            let mut code = vec![0x00];
            code.extend(i32_const(discriminant));
            code.push(0x0b);
            let mut sized = Vec::new();
            uleb(code.len() as u64, &mut sized);
            sized.extend(code);
            section(10, &vec(&[sized]), &mut core);
            section(0x01, &core, &mut out);
            // Core instance 0 of module 0, and core func 0 aliased from its export.
            section(0x02, &vec(&[vec![0x00, 0x00, 0x00]]), &mut out);
            let mut alias = vec![0x00, 0x00, 0x01, 0x00];
            name("run", &mut alias);
            section(0x06, &vec(&[alias]), &mut out);
            // Types: 0 = result, 1 = func() -> result, 2.. = instance types.
            let mut types = vec![vec![0x6a, 0x00, 0x00], vec![0x40, 0x00, 0x00, 0x00]];
            // Each import: instance { get-arguments: func() -> list<string> }, as in
            // `wasi:cli/environment`, so that resolving it means finding a definition.
            let mut environment = vec![0x42, 0x03, 0x01, 0x70, 0x73, 0x01, 0x40, 0x00, 0x00, 0x00];
            environment.push(0x04);
            environment.push(0x00);
            name("get-arguments", &mut environment);
            environment.extend([0x01, 0x01]);
            types.extend(imports.iter().map(|_| environment.clone()));
            section(0x07, &vec(&types), &mut out);
            if !imports.is_empty() {
                let entries: Vec<_> = imports
                    .iter()
                    .enumerate()
                    .map(|(i, import)| {
                        let mut e = vec![0x00];
                        name(import, &mut e);
                        e.push(0x05);
                        uleb(2 + i as u64, &mut e);
                        e
                    })
                    .collect();
                section(0x0a, &vec(&entries), &mut out);
            }
            // Component func 0 = lift core func 0 at type 1.
            section(0x08, &vec(&[vec![0x00, 0x00, 0x00, 0x00, 0x01]]), &mut out);
            // Instance `imports.len()`: { run: func 0 }.
            let mut inline = vec![0x00];
            name("run", &mut inline);
            inline.extend([0x01, 0x00]);
            let mut instance = vec![0x01];
            instance.extend(vec(&[inline]));
            section(0x05, &vec(&[instance]), &mut out);
            let mut exp = vec![0x00];
            name(export, &mut exp);
            exp.push(0x05);
            uleb(imports.len() as u64, &mut exp);
            exp.push(0x00);
            section(0x0b, &vec(&[exp]), &mut out);
            out
        }
    }

    use wasm::Import;

    const PROC_EXIT: Import = Import("proc_exit", 1, 0);
    const EBADF: i32 = 8;

    fn request(wasm: Vec<u8>) -> RunRequest {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&wasm)));
        RunRequest {
            wasm,
            digest,
            program_name: "guest".to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            dirs: Vec::new(),
            network: false,
            cache: None,
            limits: Limits::default(),
        }
    }

    /// `loop br 0 end`: never returns.
    const ENDLESS: [u8; 5] = [0x03, 0x40, 0x0c, 0x00, 0x0b];
    /// `loop (memory.grow (i32.const 1)) drop br 0 end`: a page more, forever.
    const GREEDY: [u8; 10] = [0x03, 0x40, 0x41, 0x01, 0x40, 0x00, 0x1a, 0x0c, 0x00, 0x0b];

    fn limited(body: &[u8], limits: Limits) -> RunRequest {
        RunRequest {
            limits,
            ..request(wasm::module(&[], START, body, &[]))
        }
    }

    #[tokio::test]
    async fn an_endless_guest_stops_at_its_timeout() {
        let timeout = Duration::from_millis(300);
        let limits = Limits {
            timeout: Some(timeout),
            ..Limits::default()
        };
        let started = Instant::now();
        let err = run(limited(&ENDLESS, limits)).await.unwrap_err();
        assert!(
            matches!(err, RunError::Limit { limit: Exceeded::Timeout(t), .. } if t == timeout),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(err.to_string().contains("--timeout 300ms"), "{err}");
        let RunError::Limit { limit, .. } = err else {
            unreachable!()
        };
        assert_eq!(limit.exit_code(), 124);
    }

    #[tokio::test]
    async fn an_endless_guest_stops_when_its_fuel_runs_out() {
        let limits = Limits {
            fuel: Some(100_000),
            ..Limits::default()
        };
        let err = run(limited(&ENDLESS, limits)).await.unwrap_err();
        assert!(
            matches!(
                err,
                RunError::Limit {
                    limit: Exceeded::Fuel(100_000),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_greedy_guest_stops_at_its_memory_cap() {
        let limits = Limits {
            max_memory: 1 << 20,
            ..Limits::default()
        };
        let err = run(limited(&GREEDY, limits)).await.unwrap_err();
        assert!(
            matches!(err, RunError::Limit { limit: Exceeded::Memory(cap), .. } if cap == 1 << 20),
            "{err}"
        );
        let RunError::Limit { limit, .. } = err else {
            unreachable!()
        };
        assert_eq!(limit.exit_code(), 137);
    }

    /// A command whose `_start` runs `body` then exits with the `i32` it leaves.
    fn exits_with(imports: &[Import], body: &[&[u8]], data: &[(i32, &[u8])]) -> Vec<u8> {
        let mut all = vec![PROC_EXIT];
        all.extend(imports.iter().map(|i| Import(i.0, i.1, i.2)));
        let mut code = body.concat();
        code.extend(wasm::call(0));
        wasm::module(&all, START, &code, data)
    }

    fn exit_7() -> Vec<u8> {
        exits_with(&[], &[&wasm::i32_const(7)], &[])
    }

    async fn exit_code_of(req: RunRequest) -> i32 {
        run(req).await.expect("guest runs").exit_code
    }

    #[test]
    fn digests_must_be_sha256_hex() {
        let hex = "a".repeat(64);
        assert_eq!(
            crate::oci::sha256_hex(&format!("sha256:{hex}")),
            Some(hex.as_str())
        );
        for bad in [
            hex.clone(),
            format!("sha512:{hex}"),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}/../x", "a".repeat(59)),
            "sha256:abc".to_owned(),
        ] {
            assert_eq!(crate::oci::sha256_hex(&bad), None, "{bad}");
        }
    }

    #[test]
    fn run_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&run(request(exit_7())));
    }

    #[tokio::test]
    async fn proc_exit_status_becomes_exit_code() {
        let outcome = run(request(exit_7())).await.unwrap();
        assert_eq!(outcome.exit_code, 7);
        assert_eq!(outcome.compiled, CompileSource::Compiled);
    }

    #[tokio::test]
    async fn returning_from_start_is_exit_zero() {
        let wasm = wasm::module(&[], START, &[], &[]);
        assert_eq!(exit_code_of(request(wasm)).await, 0);
    }

    #[tokio::test]
    async fn trap_is_an_error_with_a_backtrace() {
        let wasm = wasm::module(&[], START, &[wasm::UNREACHABLE], &[]);
        let err = run(request(wasm)).await.unwrap_err();
        let RunError::Trap {
            trap, backtrace, ..
        } = &err
        else {
            panic!("expected a trap, got {err:?}");
        };
        assert_eq!(*trap, Trap::UnreachableCodeReached);
        assert!(
            backtrace.as_deref().unwrap().contains("wasm backtrace"),
            "{err}"
        );
        assert!(err.to_string().starts_with("`guest` trapped: "), "{err}");
    }

    #[tokio::test]
    async fn second_run_loads_from_the_cache() {
        let cache = tempfile::tempdir().unwrap();
        let req = || RunRequest {
            cache: Some(code_cache(cache.path().to_owned())),
            ..request(exit_7())
        };
        let first = run(req()).await.unwrap();
        assert_eq!(first.compiled, CompileSource::Compiled);
        let entry = cached_entry(cache.path(), &req().digest);
        assert!(entry.is_file(), "{} missing", entry.display());
        let second = run(req()).await.unwrap();
        assert_eq!(
            (second.compiled, second.exit_code),
            (CompileSource::Cached, 7)
        );
        // Nothing but the entry and its MAC: the temp files were renamed, not left behind.
        assert_eq!(
            std::fs::read_dir(entry.parent().unwrap()).unwrap().count(),
            2
        );
    }

    /// A compiled-code cache in `dir` with a fixed key.
    fn code_cache(dir: PathBuf) -> CodeCache {
        CodeCache { dir, key: [7; 32] }
    }

    #[tokio::test]
    async fn another_artifacts_code_under_this_digest_is_recompiled_never_run() {
        // An entry kiln itself wrote, for another artifact, moved under this one's name
        // (what anyone who can write the cache directory could do): it is valid machine
        // code, and running it would run the other program.
        let cache = tempfile::tempdir().unwrap();
        let other = wasm::module(&[], START, &[], &[]);
        let req = |wasm: Vec<u8>| RunRequest {
            cache: Some(code_cache(cache.path().to_owned())),
            ..request(wasm)
        };
        let first = run(req(other.clone())).await.unwrap();
        assert_eq!(first.exit_code, 0);
        let other_entry = cached_entry(cache.path(), &req(other).digest);
        let entry = cached_entry(cache.path(), &req(exit_7()).digest);
        std::fs::copy(&other_entry, &entry).unwrap();
        std::fs::copy(
            other_entry.with_extension("cwasm.mac"),
            entry.with_extension("cwasm.mac"),
        )
        .unwrap();

        let outcome = run(req(exit_7())).await.unwrap();
        assert_eq!(
            (outcome.compiled, outcome.exit_code),
            (CompileSource::Compiled, 7)
        );
        // And code stored under another key is not trusted either.
        let foreign = RunRequest {
            cache: Some(CodeCache {
                dir: cache.path().to_owned(),
                key: [8; 32],
            }),
            ..request(exit_7())
        };
        assert_eq!(
            run(foreign).await.unwrap().compiled,
            CompileSource::Compiled
        );
    }

    /// `cache/<engine hash>/<digest hex>.cwasm`, with the one engine hash there is.
    fn cached_entry(cache: &Path, digest: &str) -> PathBuf {
        let engine = Engine::new(&Config::new()).unwrap();
        cache
            .join(engine_hash(&engine))
            .join(format!("{}.cwasm", crate::oci::sha256_hex(digest).unwrap()))
    }

    #[tokio::test]
    async fn corrupt_cache_entry_is_recompiled_and_replaced() {
        let cache = tempfile::tempdir().unwrap();
        let req = || RunRequest {
            cache: Some(code_cache(cache.path().to_owned())),
            ..request(exit_7())
        };
        let entry = cached_entry(cache.path(), &req().digest);
        std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
        std::fs::write(&entry, b"\x7fELF not really").unwrap();

        let first = run(req()).await.unwrap();
        assert_eq!(
            (first.compiled, first.exit_code),
            (CompileSource::Compiled, 7)
        );
        assert_ne!(std::fs::read(&entry).unwrap(), b"\x7fELF not really");
        let second = run(req()).await.unwrap();
        assert_eq!(second.compiled, CompileSource::Cached);
    }

    #[tokio::test]
    async fn cache_entry_of_the_other_kind_is_recompiled() {
        // A module's code stored under a component's digest must not be loaded as one.
        let cache = tempfile::tempdir().unwrap();
        let component = wasm::component(&[], "wasi:cli/run@0.2.0", 0);
        let req = || RunRequest {
            cache: Some(code_cache(cache.path().to_owned())),
            ..request(component.clone())
        };
        let engine = Engine::new(&Config::new()).unwrap();
        let module_code = engine.precompile_module(&exit_7()).unwrap();
        let entry = cached_entry(cache.path(), &req().digest);
        std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
        std::fs::write(&entry, module_code).unwrap();

        let outcome = run(req()).await.unwrap();
        assert_eq!(
            (outcome.compiled, outcome.exit_code),
            (CompileSource::Compiled, 0)
        );
    }

    #[tokio::test]
    async fn unwritable_cache_still_runs() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let req = RunRequest {
            cache: Some(code_cache(file.path().join("under-a-file"))),
            ..request(exit_7())
        };
        assert_eq!(exit_code_of(req).await, 7);
    }

    #[tokio::test]
    async fn guest_gets_argv() {
        let wasm = exits_with(
            &[Import("args_sizes_get", 2, 1)],
            &[
                &wasm::i32_const(0),
                &wasm::i32_const(4),
                &wasm::call(1),
                &[wasm::DROP],
                &wasm::load(0),
            ],
            &[],
        );
        let req = RunRequest {
            args: vec!["a".to_owned(), "b".to_owned()],
            ..request(wasm)
        };
        assert_eq!(exit_code_of(req).await, 3);
    }

    fn env_count() -> Vec<u8> {
        exits_with(
            &[Import("environ_sizes_get", 2, 1)],
            &[
                &wasm::i32_const(0),
                &wasm::i32_const(4),
                &wasm::call(1),
                &[wasm::DROP],
                &wasm::load(0),
            ],
            &[],
        )
    }

    #[tokio::test]
    async fn environment_is_empty_unless_granted() {
        assert_eq!(exit_code_of(request(env_count())).await, 0);
        let req = RunRequest {
            env: vec![("A".into(), "1".into()), ("B".into(), "2".into())],
            ..request(env_count())
        };
        assert_eq!(exit_code_of(req).await, 2);
    }

    /// Exits with the errno of `fd_prestat_get(3)`: 0 when a directory is preopened.
    fn first_preopen() -> Vec<u8> {
        exits_with(
            &[Import("fd_prestat_get", 2, 1)],
            &[&wasm::i32_const(3), &wasm::i32_const(0), &wasm::call(1)],
            &[],
        )
    }

    #[tokio::test]
    async fn no_directory_unless_granted() {
        assert_eq!(exit_code_of(request(first_preopen())).await, EBADF);
        let dir = tempfile::tempdir().unwrap();
        let req = RunRequest {
            dirs: vec![format!("{}::/data", dir.path().display()).parse().unwrap()],
            ..request(first_preopen())
        };
        assert_eq!(exit_code_of(req).await, 0);
    }

    #[tokio::test]
    async fn missing_granted_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let req = RunRequest {
            dirs: vec![DirGrant {
                host: dir.path().join("absent"),
                guest: "/data".to_owned(),
                writable: false,
            }],
            ..request(exit_7())
        };
        let err = run(req).await.unwrap_err();
        assert!(matches!(err, RunError::Dir { .. }), "{err:?}");
        assert!(err.hint().unwrap().contains("absent"));
    }

    #[tokio::test]
    async fn module_without_start_is_refused() {
        let wasm = wasm::module(&[], "main", &[], &[]);
        let err = run(request(wasm)).await.unwrap_err();
        assert!(matches!(err, RunError::NoStart { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn unknown_import_is_a_link_error() {
        let wasm = exits_with(
            &[Import("not_a_wasi_function", 0, 0)],
            &[&wasm::i32_const(0)],
            &[],
        );
        let err = run(request(wasm)).await.unwrap_err();
        assert!(matches!(err, RunError::Link { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn bytes_that_are_not_wasm_are_refused() {
        let err = run(request(b"#!/bin/sh\n".to_vec())).await.unwrap_err();
        assert!(matches!(err, RunError::NotWasm { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn invalid_module_is_a_compile_error() {
        let mut wasm = exit_7();
        wasm.push(0xff); // not a section id
        let err = run(request(wasm)).await.unwrap_err();
        assert!(matches!(err, RunError::Compile { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn component_run_result_becomes_exit_code() {
        let ok = wasm::component(&[], "wasi:cli/run@0.2.0", 0);
        assert_eq!(exit_code_of(request(ok)).await, 0);
        let err = wasm::component(&[], "wasi:cli/run@0.2.0", 1);
        assert_eq!(exit_code_of(request(err)).await, 1);
    }

    #[tokio::test]
    async fn component_wasi_versions_resolve_by_semver() {
        // componentize-py imports and exports WASI 0.2.9; wasmtime-wasi 48 is 0.2.12.
        let wasm = wasm::component(&["wasi:cli/environment@0.2.9"], "wasi:cli/run@0.2.9", 0);
        assert_eq!(exit_code_of(request(wasm)).await, 0);
    }

    #[tokio::test]
    async fn component_with_unknown_import_is_a_link_error() {
        let wasm = wasm::component(&["wasi:cli/environment@0.3.0"], "wasi:cli/run@0.2.0", 0);
        let err = run(request(wasm)).await.unwrap_err();
        assert!(matches!(err, RunError::Link { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn component_without_run_is_refused() {
        let wasm = wasm::component(&[], "wasi:cli/main@0.2.0", 0);
        let err = run(request(wasm)).await.unwrap_err();
        assert!(matches!(err, RunError::NotCommand { .. }), "{err:?}");
    }

    /// Writes "hi\n" to fd 1 and exits with the byte count `fd_write` reports.
    fn write_hi() -> Vec<u8> {
        // iovec at 0: { buf: 16, len: 3 }; bytes written land at 8.
        let iovec = [16u8, 0, 0, 0, 3, 0, 0, 0];
        exits_with(
            &[Import("fd_write", 4, 1)],
            &[
                &wasm::i32_const(1),
                &wasm::i32_const(0),
                &wasm::i32_const(1),
                &wasm::i32_const(8),
                &wasm::call(1),
                &[wasm::DROP],
                &wasm::load(8),
            ],
            &[(0, &iovec), (16, b"hi\n")],
        )
    }

    /// Run by [`guest_stdout_is_the_host_stdout`] in a child process, whose stdout it
    /// reads: the guest's output cannot be captured in-process.
    #[tokio::test]
    #[ignore = "run as a child process by guest_stdout_is_the_host_stdout"]
    async fn write_hi_child() {
        assert_eq!(exit_code_of(request(write_hi())).await, 3);
    }

    #[test]
    fn guest_stdout_is_the_host_stdout() {
        let module = module_path!().split_once("::").unwrap().1;
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &format!("{module}::write_hi_child")])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // libtest prints the test's name without a newline before the guest writes.
        assert!(stdout.contains("write_hi_child ... hi\n"), "{stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}
