// Step tests for vars/kilnBuild.groovy, run with plain Groovy (Debian's `groovy`):
//
//   groovy jenkins/test/KilnBuildTest.groovy
//
// The pipeline steps kilnBuild calls (sh, withEnv, withCredentials, the credential
// bindings, archiveArtifacts, readJSON, error) are stubbed; `sh` runs the step's
// script for real with /bin/sh, in the environment withEnv and withCredentials would
// give it, against a recording stand-in for kiln (a shell script that writes its
// arguments and a summary). With KILN_TEST_BIN set to a real kiln and
// KILN_TEST_PROJECT to a project copy, one more test builds that project with it.
//
// Prints "N passed, N failed" and exits non-zero on a failure.

import groovy.json.JsonSlurper

class Pipeline {
    List<Map> calls = []
    Map<String, String> credentialValues = [:]
    File cwd

    Binding binding() {
        def b = new Binding()
        def env = [:]
        b.setVariable('env', env)
        def scopes = []
        b.setVariable('withEnv', { List vars, Closure body ->
            calls << [step: 'withEnv', vars: vars]
            scopes << vars.collectEntries { String v -> def i = v.indexOf('='); [(v.substring(0, i)): v.substring(i + 1)] }
            try { body() } finally { scopes.pop() }
        })
        b.setVariable('withCredentials', { List bindings, Closure body ->
            calls << [step: 'withCredentials', bindings: bindings]
            Map values = [:]
            bindings.each { Map binding ->
                if (binding.type == 'usernamePassword') {
                    values[binding.usernameVariable] = credentialValues[binding.credentialsId + ':user']
                    values[binding.passwordVariable] = credentialValues[binding.credentialsId + ':password']
                } else {
                    values[binding.variable] = credentialValues[binding.credentialsId]
                }
            }
            scopes << values
            try { body() } finally { scopes.pop() }
        })
        b.setVariable('usernamePassword', { Map m -> [type: 'usernamePassword'] + m })
        b.setVariable('file', { Map m -> [type: 'file'] + m })
        b.setVariable('string', { Map m -> [type: 'string'] + m })
        b.setVariable('error', { String message -> throw new IllegalArgumentException(message) })
        b.setVariable('archiveArtifacts', { Map m -> calls << [step: 'archiveArtifacts'] + m })
        b.setVariable('readJSON', { Map m ->
            calls << [step: 'readJSON'] + m
            new JsonSlurper().parse(new File(cwd, m.file))
        })
        b.setVariable('sh', { Map m ->
            Map environment = new HashMap(System.getenv())
            scopes.each { environment.putAll(it) }
            calls << [step: 'sh', script: m.script, env: environment]
            def process = new ProcessBuilder('/bin/sh', '-c', m.script).directory(cwd)
            process.environment().clear()
            process.environment().putAll(environment)
            process.redirectErrorStream(true)
            def p = process.start()
            def output = p.inputStream.text
            int status = p.waitFor()
            System.err.print(output)
            if (status != 0) {
                throw new RuntimeException("script returned exit code ${status}")
            }
        })
        return b
    }
}

def stepFile = new File(new File(getClass().protectionDomain.codeSource.location.path).parentFile.parentFile, 'vars/kilnBuild.groovy')

def loadStep(File stepFile, Pipeline pipeline) {
    def shell = new GroovyShell(pipeline.binding())
    return shell.parse(stepFile)
}

// A stand-in for kiln: records its arguments (one per line) and the variables the
// step hands over, and writes a summary where kiln would.
def fakeKiln(File dir) {
    def fake = new File(dir, 'fake-kiln')
    fake.text = '''#!/bin/sh
printf '%s\\n' "$@" > "$KILN_SUMMARY_DIR/argv"
printf 'user=%s password=%s key=%s keypass=%s\\n' "${KILN_REGISTRY_USERNAME:-}" "${KILN_REGISTRY_PASSWORD:-}" "${KILN_SIGNING_KEY:-}" "${KILN_SIGNING_PASSWORD:-}" > "$KILN_SUMMARY_DIR/secrets"
printf '{"schema_version": 1, "artifact": {"digest": "sha256:abc"}, "skipped": false}' > "$KILN_SUMMARY_DIR/kiln-summary.json"
printf '### kiln' > "$KILN_SUMMARY_DIR/kiln-summary.md"
'''
    fake.setExecutable(true)
    return fake
}

def tempDir() {
    def d = File.createTempDir('kiln-jenkins-', '')
    d.deleteOnExit()
    return d
}

int passed = 0
int failed = 0
def test = { String name, Closure body ->
    try {
        body()
        passed++
        println "ok - ${name}"
    } catch (Throwable t) {
        failed++
        println "FAILED - ${name}: ${t}"
        t.printStackTrace(System.out)
    }
}

test('passes every parameter as a quoted argument and returns the summary as a Map') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    def kiln = fakeKiln(dir)
    // Values a shell would break on, or run: none may be evaluated.
    def summary = step.call(
        kilnPath: kiln.path,
        path: 'my app; rm -rf /',
        push: 'registry.example.com/acme/app:$(id)',
        features: ['json', 'tls'],
        force: true,
        registryTimeout: 5,
        tag: '-t`whoami`',
    )
    assert summary instanceof Map
    assert summary.artifact.digest == 'sha256:abc'
    assert summary.skipped == false
    def argv = new File(dir, 'argv').readLines()
    assert argv.first() == 'build'
    assert argv.contains('--push=registry.example.com/acme/app:$(id)')
    assert argv.contains('--features=json,tls')
    assert argv.contains('--force')
    assert argv.contains('--registry-timeout=5')
    assert argv.contains('--tag=-t`whoami`')
    assert !argv.contains('--no-default-features')
    assert argv[-2..-1] == ['--', 'my app; rm -rf /']
    def script = pipeline.calls.find { it.step == 'sh' }.script
    assert !script.contains('my app')
    assert !script.contains('registry.example.com')
    def archived = pipeline.calls.find { it.step == 'archiveArtifacts' }
    assert archived.artifacts == './kiln-summary.*'
    assert archived.allowEmptyArchive == true
}

test('defaults leave kiln its own defaults') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    step.call(kilnPath: fakeKiln(dir).path)
    def argv = new File(dir, 'argv').readLines()
    assert argv.first() == 'build'
    assert argv[-2..-1] == ['--', '.']
    assert !argv.any { it == '--force' || it.startsWith('--push') || it.startsWith('--tag') }
    def withCredentials = pipeline.calls.find { it.step == 'withCredentials' }
    assert withCredentials.bindings == []
}

test('credentials reach kiln through withCredentials only') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    pipeline.credentialValues = ['reg:user': 'robot', 'reg:password': 's3cr3t', 'key': '/secrets/cosign.key', 'pass': 'pw']
    def step = loadStep(stepFile, pipeline)
    step.call(kilnPath: fakeKiln(dir).path, registryCredentialsId: 'reg', signingKeyCredentialsId: 'key',
        signingPasswordCredentialsId: 'pass')
    def bindings = pipeline.calls.find { it.step == 'withCredentials' }.bindings
    assert bindings*.type == ['usernamePassword', 'file', 'string']
    assert bindings[0].usernameVariable == 'KILN_REGISTRY_USERNAME'
    assert bindings[0].passwordVariable == 'KILN_REGISTRY_PASSWORD'
    assert bindings[1].variable == 'KILN_SIGNING_KEY'
    assert bindings[2].variable == 'KILN_SIGNING_PASSWORD'
    assert new File(dir, 'secrets').text.trim() == 'user=robot password=s3cr3t key=/secrets/cosign.key keypass=pw'
    def withEnv = pipeline.calls.find { it.step == 'withEnv' }.vars
    assert !withEnv.any { it.contains('s3cr3t') }
}

test('an unknown parameter fails the step before anything runs') {
    def pipeline = new Pipeline(cwd: tempDir())
    def step = loadStep(stepFile, pipeline)
    try {
        step.call(pushh: 'x')
        assert false: 'no error'
    } catch (IllegalArgumentException e) {
        assert e.message.contains('unknown parameter(s) pushh')
    }
    assert pipeline.calls.isEmpty()
}

test('a failed build still archives the summary files, and fails the step') {
    def dir = tempDir()
    new File(dir, 'reports').mkdirs()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    def failing = new File(dir, 'failing-kiln')
    failing.text = '#!/bin/sh\nprintf "### kiln failed" > "$KILN_SUMMARY_DIR/kiln-summary.md"\nexit 1\n'
    failing.setExecutable(true)
    try {
        step.call(kilnPath: failing.path, summaryDir: 'reports/')
        assert false: 'no error'
    } catch (RuntimeException e) {
        assert e.message.contains('exit code 1')
    }
    assert new File(dir, 'reports/kiln-summary.md').exists()
    def archived = pipeline.calls.find { it.step == 'archiveArtifacts' }
    assert archived.artifacts == 'reports/kiln-summary.*'
    assert !pipeline.calls.any { it.step == 'readJSON' }
}

def realKiln = System.getenv('KILN_TEST_BIN')
def project = System.getenv('KILN_TEST_PROJECT')
if (realKiln && project) {
    test('builds a project with the real kiln and returns its summary') {
        def dir = new File(project).parentFile
        def pipeline = new Pipeline(cwd: dir)
        def step = loadStep(stepFile, pipeline)
        def summary = step.call(kilnPath: realKiln, path: new File(project).name)
        assert summary.schema_version == 1
        assert summary.artifact.digest ==~ /sha256:[0-9a-f]{64}/
        assert summary.project.name == 'rust-bin'
        assert new File(dir, 'kiln-summary.md').text.contains(summary.artifact.digest.substring(0, 19))
    }
}

println "${passed} passed, ${failed} failed"
System.exit(failed == 0 ? 0 : 1)
