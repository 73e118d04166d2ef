// kilnBuild: runs `kiln build` in a Jenkins pipeline, in the style of Project Piper's
// steps. kiln does the whole pipeline (restore cache, detect, build, push, sign,
// attest, summary, save cache) and writes kiln-summary.md and kiln-summary.json
// itself; this step passes the parameters, the credentials, archives the summary
// files and returns the JSON summary as a Map. See kilnBuild.txt.
//
// The regions between the GENERATED markers are written from `kiln build --help`
// by `cargo run -p xtask -- generate`.
import groovy.transform.Field

@Field static final Map DEFAULTS = [
    // BEGIN GENERATED defaults
    path: '.',
    package: '',
    bin: '',
    features: '',
    noDefaultFeatures: false,
    allowToolchainPath: false,
    rustToolchain: '',
    entry: '',
    layout: '',
    tag: '',
    dryRun: false,
    push: '',
    force: false,
    requireIsolation: false,
    noPublish: false,
    noPost: false,
    key: '',
    keyless: false,
    noKeyless: false,
    fulcioUrl: 'https://fulcio.sigstore.dev',
    rekorUrl: 'https://rekor.sigstore.dev',
    cache: '',
    noCache: false,
    cachePrefix: 'kiln',
    cacheScope: '',
    cacheReadScope: '',
    insecureRegistry: '',
    registryTimeout: 60,
    registryRetries: 4,
    allowInsecureAuth: false,
    dockerImage: 'ghcr.io/kiln-build/kiln:0.1.0',
    // END GENERATED defaults
    // The kiln binary: a path or a name on the agent's PATH.
    kilnPath: 'kiln',
    // A username/password credential for the registry.
    registryCredentialsId: '',
    // A secret file credential holding a cosign private key (PEM).
    signingKeyCredentialsId: '',
    // A secret text credential holding the signing key's password.
    signingPasswordCredentialsId: '',
    // Where kiln writes kiln-summary.md and kiln-summary.json, relative to the
    // current directory.
    summaryDir: '.',
    // Archive the summary files as build artifacts.
    archive: true,
]

// Each kiln parameter and the environment variable the script reads it from.
@Field static final List INPUTS = [
    // BEGIN GENERATED inputs
    [key: 'path', env: 'KILN_INPUT_PATH'],
    [key: 'package', env: 'KILN_INPUT_PACKAGE'],
    [key: 'bin', env: 'KILN_INPUT_BIN'],
    [key: 'features', env: 'KILN_INPUT_FEATURES'],
    [key: 'noDefaultFeatures', env: 'KILN_INPUT_NO_DEFAULT_FEATURES'],
    [key: 'allowToolchainPath', env: 'KILN_INPUT_ALLOW_TOOLCHAIN_PATH'],
    [key: 'rustToolchain', env: 'KILN_INPUT_RUST_TOOLCHAIN'],
    [key: 'entry', env: 'KILN_INPUT_ENTRY'],
    [key: 'layout', env: 'KILN_INPUT_LAYOUT'],
    [key: 'tag', env: 'KILN_INPUT_TAG'],
    [key: 'dryRun', env: 'KILN_INPUT_DRY_RUN'],
    [key: 'push', env: 'KILN_INPUT_PUSH'],
    [key: 'force', env: 'KILN_INPUT_FORCE'],
    [key: 'requireIsolation', env: 'KILN_INPUT_REQUIRE_ISOLATION'],
    [key: 'noPublish', env: 'KILN_INPUT_NO_PUBLISH'],
    [key: 'noPost', env: 'KILN_INPUT_NO_POST'],
    [key: 'key', env: 'KILN_INPUT_KEY'],
    [key: 'keyless', env: 'KILN_INPUT_KEYLESS'],
    [key: 'noKeyless', env: 'KILN_INPUT_NO_KEYLESS'],
    [key: 'fulcioUrl', env: 'KILN_INPUT_FULCIO_URL'],
    [key: 'rekorUrl', env: 'KILN_INPUT_REKOR_URL'],
    [key: 'cache', env: 'KILN_INPUT_CACHE'],
    [key: 'noCache', env: 'KILN_INPUT_NO_CACHE'],
    [key: 'cachePrefix', env: 'KILN_INPUT_CACHE_PREFIX'],
    [key: 'cacheScope', env: 'KILN_INPUT_CACHE_SCOPE'],
    [key: 'cacheReadScope', env: 'KILN_INPUT_CACHE_READ_SCOPE'],
    [key: 'insecureRegistry', env: 'KILN_INPUT_INSECURE_REGISTRY'],
    [key: 'registryTimeout', env: 'KILN_INPUT_REGISTRY_TIMEOUT'],
    [key: 'registryRetries', env: 'KILN_INPUT_REGISTRY_RETRIES'],
    [key: 'allowInsecureAuth', env: 'KILN_INPUT_ALLOW_INSECURE_AUTH'],
    // END GENERATED inputs
]

// The shell script: a fixed string, no Groovy interpolation. Parameters reach it
// only as environment variables, expanded inside double quotes.
@Field static final String SCRIPT = '''\
set -eu
# kiln writes the summary the step returns; an earlier build's must not stand in for it.
rm -f "$KILN_SUMMARY_DIR/kiln-summary.json" "$KILN_SUMMARY_DIR/kiln-summary.md"
set -- build --platform=jenkins --summary-file="$KILN_SUMMARY_DIR/kiln-summary.json"
# BEGIN GENERATED args
[ -z "${KILN_INPUT_PACKAGE:-}" ] || set -- "$@" --package="$KILN_INPUT_PACKAGE"
[ -z "${KILN_INPUT_BIN:-}" ] || set -- "$@" --bin="$KILN_INPUT_BIN"
[ -z "${KILN_INPUT_FEATURES:-}" ] || set -- "$@" --features="$KILN_INPUT_FEATURES"
[ "${KILN_INPUT_NO_DEFAULT_FEATURES:-}" != true ] || set -- "$@" --no-default-features
[ "${KILN_INPUT_ALLOW_TOOLCHAIN_PATH:-}" != true ] || set -- "$@" --allow-toolchain-path
[ -z "${KILN_INPUT_RUST_TOOLCHAIN:-}" ] || set -- "$@" --rust-toolchain="$KILN_INPUT_RUST_TOOLCHAIN"
[ -z "${KILN_INPUT_ENTRY:-}" ] || set -- "$@" --entry="$KILN_INPUT_ENTRY"
[ -z "${KILN_INPUT_LAYOUT:-}" ] || set -- "$@" --layout="$KILN_INPUT_LAYOUT"
[ -z "${KILN_INPUT_TAG:-}" ] || set -- "$@" --tag="$KILN_INPUT_TAG"
[ "${KILN_INPUT_DRY_RUN:-}" != true ] || set -- "$@" --dry-run
[ -z "${KILN_INPUT_PUSH:-}" ] || set -- "$@" --push="$KILN_INPUT_PUSH"
[ "${KILN_INPUT_FORCE:-}" != true ] || set -- "$@" --force
[ "${KILN_INPUT_REQUIRE_ISOLATION:-}" != true ] || set -- "$@" --require-isolation
[ "${KILN_INPUT_NO_PUBLISH:-}" != true ] || set -- "$@" --no-publish
[ "${KILN_INPUT_NO_POST:-}" != true ] || set -- "$@" --no-post
[ -z "${KILN_INPUT_KEY:-}" ] || set -- "$@" --key="$KILN_INPUT_KEY"
[ "${KILN_INPUT_KEYLESS:-}" != true ] || set -- "$@" --keyless
[ "${KILN_INPUT_NO_KEYLESS:-}" != true ] || set -- "$@" --no-keyless
[ -z "${KILN_INPUT_FULCIO_URL:-}" ] || set -- "$@" --fulcio-url="$KILN_INPUT_FULCIO_URL"
[ -z "${KILN_INPUT_REKOR_URL:-}" ] || set -- "$@" --rekor-url="$KILN_INPUT_REKOR_URL"
[ -z "${KILN_INPUT_CACHE:-}" ] || set -- "$@" --cache="$KILN_INPUT_CACHE"
[ "${KILN_INPUT_NO_CACHE:-}" != true ] || set -- "$@" --no-cache
[ -z "${KILN_INPUT_CACHE_PREFIX:-}" ] || set -- "$@" --cache-prefix="$KILN_INPUT_CACHE_PREFIX"
[ -z "${KILN_INPUT_CACHE_SCOPE:-}" ] || set -- "$@" --cache-scope="$KILN_INPUT_CACHE_SCOPE"
[ -z "${KILN_INPUT_CACHE_READ_SCOPE:-}" ] || set -- "$@" --cache-read-scope="$KILN_INPUT_CACHE_READ_SCOPE"
[ -z "${KILN_INPUT_INSECURE_REGISTRY:-}" ] || set -- "$@" --insecure-registry="$KILN_INPUT_INSECURE_REGISTRY"
[ -z "${KILN_INPUT_REGISTRY_TIMEOUT:-}" ] || set -- "$@" --registry-timeout="$KILN_INPUT_REGISTRY_TIMEOUT"
[ -z "${KILN_INPUT_REGISTRY_RETRIES:-}" ] || set -- "$@" --registry-retries="$KILN_INPUT_REGISTRY_RETRIES"
[ "${KILN_INPUT_ALLOW_INSECURE_AUTH:-}" != true ] || set -- "$@" --allow-insecure-auth
set -- "$@" -- "${KILN_INPUT_PATH:-.}"
# END GENERATED args
exec "$KILN_PATH" "$@"
'''

def call(Map config = [:]) {
    def unknown = config.keySet().findAll { !DEFAULTS.containsKey(it) }
    if (unknown) {
        error("kilnBuild: unknown parameter(s) ${unknown.sort().join(', ')}; see kilnBuild.txt")
    }
    Map c = DEFAULTS + config
    List environment = INPUTS.collect { "${it.env}=${render(c[it.key])}".toString() }
    environment << "KILN_PATH=${c.kilnPath}".toString()
    environment << "KILN_SUMMARY_DIR=${c.summaryDir}".toString()

    List credentials = []
    if (c.registryCredentialsId) {
        credentials << usernamePassword(credentialsId: c.registryCredentialsId,
            usernameVariable: 'KILN_REGISTRY_USERNAME', passwordVariable: 'KILN_REGISTRY_PASSWORD')
    }
    if (c.signingKeyCredentialsId) {
        credentials << file(credentialsId: c.signingKeyCredentialsId, variable: 'KILN_SIGNING_KEY')
    }
    if (c.signingPasswordCredentialsId) {
        credentials << string(credentialsId: c.signingPasswordCredentialsId, variable: 'KILN_SIGNING_PASSWORD')
    }

    String dir = c.summaryDir.toString().replaceAll('/+$', '')
    try {
        withEnv(environment) {
            withCredentials(credentials) {
                sh(script: SCRIPT, label: 'kiln build')
            }
        }
    } finally {
        if (c.archive) {
            archiveArtifacts(artifacts: "${dir}/kiln-summary.*".toString(), allowEmptyArchive: true, fingerprint: false)
        }
    }
    if (c.dryRun) {
        // A dry run prints the plan and writes no summary.
        return [:]
    }
    def summary = readJSON(file: "${dir}/kiln-summary.json".toString(), returnPojo: true)
    return summary as Map
}

// A parameter's value as the script reads it: lists comma-separated, null empty.
private static String render(value) {
    if (value == null) {
        return ''
    }
    if (value instanceof Collection) {
        return value.join(',')
    }
    return value.toString()
}
