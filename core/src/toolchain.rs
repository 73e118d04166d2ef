//! The toolchain facts every part of kiln agrees on: the targets it builds for and the
//! versions it pins. Stages, the SBOM, the inputs digest and the cache keys read them from
//! here, so none of them imports another to learn a constant.

/// The Rust target of a core module (WASI preview 1).
pub const RUST_TARGET: &str = "wasm32-wasip1";

/// The componentize-py kiln provisions and builds Python components with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The CPython inside componentize-py's runtime: dependencies are resolved for it, not
/// for the host's Python.
pub const TARGET_PYTHON: &str = "3.14";
/// Its ABI tag, for pip's `--abi`.
pub const TARGET_ABI: &str = "cp314";
/// The wheel platform tag of WASI builds (pip's `--platform`).
pub const WASI_PLATFORM: &str = "wasi_0_0_0_wasm32";
