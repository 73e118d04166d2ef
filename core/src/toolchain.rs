//! The toolchain facts every part of kiln agrees on: the targets it builds for and the
//! versions it pins. Stages, the SBOM, the inputs digest and the cache keys read them from
//! here, so none of them imports another to learn a constant.

/// The Rust target of a core module (WASI preview 1).
pub const RUST_TARGET: &str = "wasm32-wasip1";

/// The componentize-py kiln provisions and builds Python components with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The SHA-256 of each of its wheels on PyPI (manylinux x86_64 and aarch64, macOS x86_64
/// and arm64, Windows x86_64; it has no dependencies). pip installs it with
/// `--require-hashes`, so a poisoned pip cache or index cannot hand kiln another build.
/// Taken with `pip download componentize-py==0.25.1 --no-deps --platform … --only-binary=:all:`
/// and `sha256sum`; change them with the version.
pub const COMPONENTIZE_PY_SHA256: [&str; 5] = [
    "8623cd8cab8453cb0cd8bf03f3c7103420d06f2f3d360186a280a70a1ca5e89f",
    "7b6a87c520358166843af0daa86d2312d7af4cbcbbf1e598951085cf7f2991ca",
    "65fbc4a94df1de8acf7da50a1f5ed1711230188844e53e6332d99029be4e0afa",
    "a556991534cc496207a9d2ca733c4b0f17ed38ef56a8d6b5f1847fdf1225dd1b",
    "c7fd552fb0849858b0c1e8981543ed5dff4b0cc1597a8ea0bc26a495786dc0c6",
];

/// The CPython inside componentize-py's runtime: dependencies are resolved for it, not
/// for the host's Python.
pub const TARGET_PYTHON: &str = "3.14";
/// Its ABI tag, for pip's `--abi`.
pub const TARGET_ABI: &str = "cp314";
/// The wheel platform tag of WASI builds (pip's `--platform`).
pub const WASI_PLATFORM: &str = "wasi_0_0_0_wasm32";
