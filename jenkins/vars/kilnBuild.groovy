// kilnBuild: runs `kiln build` in a Jenkins pipeline, in the style of Project Piper's
// steps. kiln does the whole pipeline (restore cache, detect, build, push, sign,
// attest, summary, save cache) and writes kiln-summary.md and kiln-summary.json
// itself; this step passes the parameters and the credentials, runs kiln in its image
// (or from the agent's PATH), archives the summary files and returns the JSON summary
// as a Map. See kilnBuild.txt for the parameters and the plugins it needs.
//
// The regions between the GENERATED markers are written from `kiln build --help`
// by `cargo run -p xtask -- generate`.
import groovy.json.JsonSlurper
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
    // The kiln binary: a path or a name on the PATH (the image's, with dockerImage).
    kilnPath: 'kiln',
    // A username/password credential for the registry.
    registryCredentialsId: '',
    // A secret file credential holding a cosign private key (PEM).
    signingKeyCredentialsId: '',
    // A secret text credential holding the signing key's password.
    signingPasswordCredentialsId: '',
    // Where kiln writes kiln-summary.md and kiln-summary.json: relative to the
    // current directory, or absolute; archived only from inside the current directory.
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

    // archiveArtifacts matches Ant patterns against paths relative to the current
    // directory, so the summary directory is normalised against it: `./out`, `out/`
    // and `$PWD/out` all become `out`, and `.` or '' the directory itself.
    String requested = c.summaryDir == null ? '' : c.summaryDir.toString()
    String base = pwd()
    String relative = relativeTo(base, requested)
    String summaryDir = relative == null ? requested : (relative ?: '.')
    String artifacts = null
    if (c.archive) {
        artifacts = summaryArtifacts(base, requested, relative)
    }
    String dockerImage = c.dockerImage == null ? '' : c.dockerImage.toString()
    def dockerPipeline = dockerImage ? dockerGlobal(dockerImage) : null

    List environment = INPUTS.collect { "${it.env}=${render(c[it.key])}".toString() }
    environment << "KILN_PATH=${c.kilnPath}".toString()
    environment << "KILN_SUMMARY_DIR=${summaryDir}".toString()
    if (dockerPipeline != null) {
        // `inside` runs the container as the agent's user, whom the image does not know,
        // and leaves the agent's HOME out: HOME would be `/`, where neither kiln's cache
        // (KILN_HOME defaults to ~/.cache/kiln) nor the toolchains' can be written. The
        // workspace's @tmp directory is mounted too, and is kept between builds.
        environment << "HOME=${pwd(tmp: true)}/kiln-home".toString()
    }

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

    try {
        if (dockerPipeline != null) {
            // The workspace is mounted at the same path, so the current directory, the
            // summary directory and withCredentials' secret files are where kiln looks.
            // `--entrypoint=` runs the shell whatever ENTRYPOINT the image sets.
            dockerPipeline.image(dockerImage).inside('--entrypoint=') {
                runKiln(environment, credentials)
            }
        } else {
            runKiln(environment, credentials)
        }
    } finally {
        if (artifacts != null) {
            archiveArtifacts(artifacts: artifacts, allowEmptyArchive: true, defaultExcludes: false,
                fingerprint: false)
        }
    }
    if (c.dryRun) {
        // A dry run prints the plan and writes no summary.
        return [:]
    }
    String json = "${summaryDir}/kiln-summary.json".toString()
    if (!fileExists(json)) {
        error("kilnBuild: kiln succeeded but wrote no summary at `${json}`")
    }
    return parseSummary(readFile(file: json, encoding: 'UTF-8'))
}

private void runKiln(List environment, List credentials) {
    withEnv(environment) {
        if (credentials) {
            withCredentials(credentials) {
                sh(script: SCRIPT, label: 'kiln build')
            }
        } else {
            // withCredentials (the Credentials Binding plugin) only when a credential is asked for.
            sh(script: SCRIPT, label: 'kiln build')
        }
    }
}

// The Docker Pipeline plugin's `docker` global, or a failed step that says what to do.
private def dockerGlobal(String image) {
    try {
        return docker
    } catch (MissingPropertyException e) {
        error("kilnBuild: dockerImage '${image}' needs the Docker Pipeline plugin (docker-workflow), " +
            "which provides docker.image().inside, and it is not installed; install it, or pass " +
            "dockerImage: '' to run kiln from the agent's PATH (kilnPath)")
    }
}

// The archiveArtifacts pattern that matches exactly the two summary files: their
// names, comma-separated, under the summary directory relative to `base`.
private String summaryArtifacts(String base, String requested, String relative) {
    if (relative == null) {
        error("kilnBuild: summaryDir '${requested}' is outside the current directory '${base}', " +
            "and archiveArtifacts archives only files inside it; use a directory inside it, " +
            "or archive: false")
    }
    String unmatchable = unmatchable(relative)
    if (unmatchable != null) {
        error("kilnBuild: summaryDir '${requested}' holds ${unmatchable}, which archiveArtifacts " +
            "cannot match literally; use another directory, or archive: false")
    }
    String prefix = relative ? relative + '/' : ''
    return "${prefix}kiln-summary.json,${prefix}kiln-summary.md".toString()
}

// What in a relative directory an archiveArtifacts pattern cannot name literally, or
// null: Jenkins splits the pattern on `,`, trims it and expands `$VARIABLES` in it, and
// Ant reads `*` and `?` as wildcards and `\` as a separator; none can be escaped.
@NonCPS
private static String unmatchable(String relative) {
    for (String special : [',', '*', '?', '$', '\\']) {
        if (relative.contains(special)) {
            return "`${special}`"
        }
    }
    return relative == relative.trim() ? null : 'leading or trailing blanks'
}

// `dir` relative to `base` (both as Jenkins gives them: `base` absolute, `dir` absolute
// or relative to it), without `.`, `..` or empty segments: '' for `base` itself, null
// when `dir` lies outside `base`.
@NonCPS
private static String relativeTo(String base, String dir) {
    List target = segments(dir.startsWith('/') ? dir : base + '/' + dir)
    List root = segments(base)
    if (target == null || root == null || target.size() < root.size()
        || target.subList(0, root.size()) != root) {
        return null
    }
    return target.subList(root.size(), target.size()).join('/')
}

// A path's segments with `.` and empty ones dropped and `..` applied; null when `..`
// climbs above the first.
@NonCPS
private static List segments(String path) {
    List out = []
    for (String part : path.split('/')) {
        if (part == '' || part == '.') {
            continue
        }
        if (part == '..') {
            if (out.isEmpty()) {
                return null
            }
            out.remove(out.size() - 1)
        } else {
            out.add(part)
        }
    }
    return out
}

// The summary JSON as plain, serialisable maps and lists: JsonSlurper's own LazyMap is
// not Serializable, and a pipeline that keeps the result across a step would fail.
// JsonSlurper is used, not the Pipeline Utility Steps plugin's readJSON, and is allowed
// in the Groovy sandbox, where a library loaded with the `library` step runs.
@NonCPS
private static Map parseSummary(String text) {
    return plain(new JsonSlurper().parseText(text))
}

@NonCPS
private static plain(value) {
    if (value instanceof Map) {
        Map copy = [:]
        value.each { k, v -> copy.put(k, plain(v)) }
        return copy
    }
    if (value instanceof List) {
        List copy = []
        value.each { copy.add(plain(it)) }
        return copy
    }
    return value
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
