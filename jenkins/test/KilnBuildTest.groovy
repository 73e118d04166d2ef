// Step tests for vars/kilnBuild.groovy, run with plain Groovy (Debian's `groovy`):
//
//   KILN_TEST_ANT_JAR=target/test-peers/ant-1.10.18.jar groovy jenkins/test/KilnBuildTest.groovy
//
// The pipeline steps kilnBuild calls (pwd, sh, withEnv, withCredentials, the credential
// bindings, archiveArtifacts, fileExists, readFile, error, and the Docker Pipeline
// plugin's docker global) are stubbed; `sh` runs the step's script for real with
// /bin/sh, in the environment withEnv and withCredentials would give it, against a
// recording stand-in for kiln (a shell script that writes its arguments and a summary).
// Only the stubbed steps exist: a step that calls another (readJSON, say) fails here.
//
// The pattern the step hands archiveArtifacts is matched the way Jenkins does it
// (ArtifactArchiver's ListFiles: Util.createFileSet, then Ant's DirectoryScanner), with
// the Ant jar KILN_TEST_ANT_JAR names (`scripts/setup --test` installs it), against the
// files the step left on disk. With KILN_TEST_BIN set to a real kiln and
// KILN_TEST_PROJECT to a project copy, one more test builds that project with it.
//
// Prints "N passed, N failed" and exits non-zero on a failure.

import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.customizers.ImportCustomizer

class Pipeline {
    List<Map> calls = []
    Map<String, String> credentialValues = [:]
    // Variables of the agent's environment that differ from this process's (PATH).
    Map<String, String> agentEnv = [:]
    // Set for a Jenkins with the Docker Pipeline plugin: the image's bin directory,
    // which its `inside` puts on the PATH, as kiln's image has kiln on its PATH.
    File imageBin
    File cwd

    private List<Map> scopes = []

    private File resolve(String path) {
        def f = new File(path)
        return f.isAbsolute() ? f : new File(cwd, path)
    }

    Binding binding() {
        def b = new Binding()
        b.setVariable('env', [:])
        // pwd(), and pwd(tmp: true): the workspace's @tmp twin.
        b.setVariable('pwd', { Map m = [:] -> calls << [step: 'pwd'] + m; m.tmp ? cwd.path + '@tmp' : cwd.path })
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
        b.setVariable('error', { String message -> calls << [step: 'error', message: message]; throw new IllegalArgumentException(message) })
        b.setVariable('archiveArtifacts', { Map m -> calls << [step: 'archiveArtifacts'] + m })
        b.setVariable('fileExists', { String path -> calls << [step: 'fileExists', file: path]; resolve(path).isFile() })
        b.setVariable('readFile', { Map m ->
            calls << [step: 'readFile'] + m
            resolve(m.file).getText(m.encoding ?: 'UTF-8')
        })
        b.setVariable('sh', { Map m ->
            Map environment = new HashMap(System.getenv())
            environment.putAll(agentEnv)
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
        if (imageBin != null) {
            b.setVariable('docker', new Docker(pipeline: this))
        }
        return b
    }

    // docker.image(id).inside(args) { body }: the body runs with the image's PATH
    // and a marker the stand-in kiln records.
    void inside(String image, String args, Closure body) {
        calls << [step: 'docker.image.inside', image: image, args: args]
        String path = imageBin.path + ':' + (agentEnv.PATH ?: System.getenv('PATH'))
        scopes << [PATH: path, KILN_TEST_CONTAINER: image]
        try { body() } finally { scopes.pop() }
    }
}

class Docker {
    Pipeline pipeline
    def image(String id) {
        pipeline.calls << [step: 'docker.image', id: id]
        return new DockerImage(pipeline: pipeline, id: id)
    }
}

class DockerImage {
    Pipeline pipeline
    String id
    def inside(String args, Closure body) { pipeline.inside(id, args, body) }
    def inside(Closure body) { pipeline.inside(id, '', body) }
}

// Ant's matching, from the pinned jar only (Debian's groovy has an Ant of its own on
// its classpath, which this leaves out).
class Ant {
    static ClassLoader loader

    static void load(String jar) {
        assert jar: 'KILN_TEST_ANT_JAR is not set: run `scripts/setup --test`, which installs Ant into target/test-peers'
        def file = new File(jar)
        assert file.isFile(): "KILN_TEST_ANT_JAR ${jar} is not a file: run `scripts/setup --test`"
        loader = new URLClassLoader([file.toURI().toURL()] as URL[], ClassLoader.platformClassLoader)
        def source = loader.loadClass('org.apache.tools.ant.DirectoryScanner').protectionDomain.codeSource.location
        assert new File(source.toURI()).canonicalPath == file.canonicalPath
    }

    // The files under `base` that archiveArtifacts(args) archives, as Jenkins lists
    // them: Util.createFileSet (the includes split on `,` and trimmed), the default
    // excludes unless defaultExcludes: false, DirectoryScanner.getIncludedFiles.
    static List<String> archived(File base, Map args) {
        def fileSet = loader.loadClass('org.apache.tools.ant.types.FileSet').getConstructor().newInstance()
        fileSet.setDir(base)
        fileSet.setProject(loader.loadClass('org.apache.tools.ant.Project').getConstructor().newInstance())
        def tokens = new StringTokenizer(args.artifacts, ',')
        while (tokens.hasMoreTokens()) {
            fileSet.createInclude().setName(tokens.nextToken().trim())
        }
        fileSet.setDefaultexcludes(args.defaultExcludes == null ? true : args.defaultExcludes)
        return (fileSet.getDirectoryScanner().getIncludedFiles() as List).collect { it.replace(File.separatorChar, '/' as char) }.sort()
    }
}

def stepFile = new File(new File(getClass().protectionDomain.codeSource.location.path).parentFile.parentFile, 'vars/kilnBuild.groovy')

// Loads the step as Jenkins' CPS shell would compile it: with com.cloudbees.groovy.cps.*
// (@NonCPS) imported.
def loadStep(File stepFile, Pipeline pipeline) {
    def classes = new GroovyClassLoader(getClass().classLoader)
    classes.parseClass('''package com.cloudbees.groovy.cps
import java.lang.annotation.*
@Retention(RetentionPolicy.RUNTIME) @Target([ElementType.METHOD]) @interface NonCPS {}
''')
    def config = new CompilerConfiguration()
    config.addCompilationCustomizers(new ImportCustomizer().addStarImports('com.cloudbees.groovy.cps'))
    def shell = new GroovyShell(classes, pipeline.binding(), config)
    return shell.parse(stepFile)
}

// A stand-in for kiln: records its arguments (one per line) and the variables the
// step hands over, and writes a summary where kiln would.
def fakeKiln(File dir, String name = 'fake-kiln') {
    dir.mkdirs()
    def fake = new File(dir, name)
    fake.text = '''#!/bin/sh
printf '%s\\n' "$@" > "$KILN_SUMMARY_DIR/argv"
printf 'user=%s password=%s key=%s keypass=%s\\n' "${KILN_REGISTRY_USERNAME:-}" "${KILN_REGISTRY_PASSWORD:-}" "${KILN_SIGNING_KEY:-}" "${KILN_SIGNING_PASSWORD:-}" > "$KILN_SUMMARY_DIR/secrets"
printf 'container=%s kiln=%s\\n' "${KILN_TEST_CONTAINER:-}" "$0" > "$KILN_SUMMARY_DIR/where"
printf '%s\\n' "$HOME" > "$KILN_SUMMARY_DIR/home"
printf '{"schema_version": 1, "artifact": {"digest": "sha256:abc", "layers": [{"size": 3}]}, "skipped": false}' > "$KILN_SUMMARY_DIR/kiln-summary.json"
printf '### kiln' > "$KILN_SUMMARY_DIR/kiln-summary.md"
'''
    fake.setExecutable(true)
    return fake
}

// Directories the tests make, deleted at the end.
temporary = []

def tempDir() {
    def d = File.createTempDir('kiln-jenkins-', '')
    temporary << d
    return d
}

// Every class in a value the step returns, to check it holds only plain Java types.
def classesIn(value) {
    if (value instanceof Map) {
        return [value.getClass()] + value.values().collectMany { classesIn(it) }
    }
    if (value instanceof List) {
        return [value.getClass()] + value.collectMany { classesIn(it) }
    }
    return value == null ? [] : [value.getClass()]
}

// What a pipeline does with the value between steps: Java serialisation.
def serialises(value) {
    new ObjectOutputStream(new ByteArrayOutputStream()).writeObject(value)
    return true
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

// A failed step: the message error() was given.
def errorOf = { Closure body ->
    try {
        body()
    } catch (IllegalArgumentException e) {
        return e.message
    }
    throw new AssertionError('the step did not fail')
}

test('Ant, as archiveArtifacts uses it, never matches a pattern that starts with ./') {
    Ant.load(System.getenv('KILN_TEST_ANT_JAR'))
    def dir = tempDir()
    new File(dir, 'kiln-summary.json').text = '{}'
    new File(dir, 'kiln-summary.md').text = '#'
    // The pattern kilnBuild used to archive with `summaryDir: '.'`, against a plain one.
    assert Ant.archived(dir, [artifacts: './kiln-summary.*']) == []
    assert Ant.archived(dir, [artifacts: 'kiln-summary.*']) == ['kiln-summary.json', 'kiln-summary.md']
}

test('passes every parameter as a quoted argument and returns the summary as a Map') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    def kiln = fakeKiln(dir)
    // Values a shell would break on, or run: none may be evaluated.
    def summary = step.call(
        dockerImage: '',
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
    assert archived.artifacts == 'kiln-summary.json,kiln-summary.md'
    assert archived.allowEmptyArchive == true
    assert archived.defaultExcludes == false
}

test('the summary comes back as plain, serialisable maps and lists, read without readJSON') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    def summary = step.call(dockerImage: '', kilnPath: fakeKiln(dir).path)
    assert summary == [schema_version: 1, artifact: [digest: 'sha256:abc', layers: [[size: 3]]], skipped: false]
    // JsonSlurper's LazyMap is not Serializable: a pipeline holding it across a step fails.
    assert classesIn(summary).every { it.name.startsWith('java.') }
    assert serialises(summary)
    assert pipeline.calls.find { it.step == 'readFile' }.file == './kiln-summary.json'
}

test('defaults leave kiln its own defaults') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    step.call(dockerImage: '', kilnPath: fakeKiln(dir).path)
    def argv = new File(dir, 'argv').readLines()
    assert argv.first() == 'build'
    assert argv[-2..-1] == ['--', '.']
    assert !argv.any { it == '--force' || it.startsWith('--push') || it.startsWith('--tag') }
    // No credential asked for: no withCredentials, so no Credentials Binding plugin needed.
    assert !pipeline.calls.any { it.step == 'withCredentials' }
}

test('credentials reach kiln through withCredentials only') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    pipeline.credentialValues = ['reg:user': 'robot', 'reg:password': 's3cr3t', 'key': '/secrets/cosign.key', 'pass': 'pw']
    def step = loadStep(stepFile, pipeline)
    step.call(dockerImage: '', kilnPath: fakeKiln(dir).path, registryCredentialsId: 'reg', signingKeyCredentialsId: 'key',
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
    assert errorOf { step.call(pushh: 'x') } == 'kilnBuild: unknown parameter(s) pushh; see kilnBuild.txt'
    assert pipeline.calls*.step == ['error']
}

// summaryDir as a user may write it -> where kiln writes, relative to the current directory.
def summaryDirs = { File dir ->
    [
        '.': '', '': '', './': '', './/.': '', (dir.path): '', (dir.path + '/'): '', (dir.path + '/.'): '',
        'out': 'out', 'out/': 'out', './out': 'out', './out/': 'out', 'out//': 'out', 'x/../out': 'out',
        (dir.path + '/out'): 'out', (dir.path + '//out/'): 'out',
        'reports/kiln': 'reports/kiln', './reports/./kiln/': 'reports/kiln', (dir.path + '/reports/kiln/'): 'reports/kiln',
        'my reports': 'my reports', '.kiln': '.kiln', '.git/kiln': '.git/kiln',
    ]
}

test('the archived pattern matches exactly the two summary files, however summaryDir is written') {
    Ant.load(System.getenv('KILN_TEST_ANT_JAR'))
    def probe = tempDir()
    summaryDirs(probe).eachWithIndex { Map.Entry entry, int index ->
        String given = entry.key
        String where = entry.value
        // A fresh workspace per case, whose absolute paths the case uses.
        def dir = new File(probe.parentFile, "${probe.name}-${index}")
        dir.mkdirs()
        temporary << dir
        String summaryDir = given.startsWith(probe.path) ? dir.path + given.substring(probe.path.length()) : given
        // Decoys: files a looser pattern would also take.
        def target = where ? new File(dir, where) : dir
        target.mkdirs()
        new File(target, 'kiln-summary.json.bak').text = 'stale'
        new File(target, 'kiln-summary.txt').text = 'other'
        new File(target, 'nested').mkdirs()
        new File(target, 'nested/kiln-summary.json').text = '{}'
        new File(dir, 'elsewhere').mkdirs()
        new File(dir, 'elsewhere/kiln-summary.md').text = '#'
        if (where) {
            new File(dir, 'kiln-summary.json').text = '{}'
        }
        def pipeline = new Pipeline(cwd: dir)
        def step = loadStep(stepFile, pipeline)
        def summary = step.call(dockerImage: '', kilnPath: fakeKiln(new File(dir, 'bin')).path, summaryDir: summaryDir)
        assert summary.artifact.digest == 'sha256:abc'
        assert new File(target, 'kiln-summary.json').isFile(): "summaryDir '${summaryDir}'"
        def archived = pipeline.calls.find { it.step == 'archiveArtifacts' }
        def prefix = where ? where + '/' : ''
        assert Ant.archived(dir, archived) == ["${prefix}kiln-summary.json", "${prefix}kiln-summary.md"]*.toString():
            "summaryDir '${summaryDir}' archived as '${archived.artifacts}'"
    }
}

test('a summaryDir outside the current directory fails before kiln runs, unless not archived') {
    def dir = tempDir()
    def outside = tempDir()
    def workspace = new File(dir, 'ws')
    workspace.mkdirs()
    ['../elsewhere', outside.path, '/'].each { String summaryDir ->
        def pipeline = new Pipeline(cwd: workspace)
        def step = loadStep(stepFile, pipeline)
        assert errorOf { step.call(dockerImage: '', kilnPath: fakeKiln(dir).path, summaryDir: summaryDir) } ==
            "kilnBuild: summaryDir '${summaryDir}' is outside the current directory '${workspace.path}', " +
            "and archiveArtifacts archives only files inside it; use a directory inside it, or archive: false"
        assert !pipeline.calls.any { it.step == 'sh' || it.step == 'archiveArtifacts' }
    }
    // Not archived, it is only where kiln writes, and where the summary is read from.
    def pipeline = new Pipeline(cwd: workspace)
    def step = loadStep(stepFile, pipeline)
    def summary = step.call(dockerImage: '', kilnPath: fakeKiln(dir).path, summaryDir: outside.path, archive: false)
    assert summary.artifact.digest == 'sha256:abc'
    assert new File(outside, 'kiln-summary.md').isFile()
    assert !pipeline.calls.any { it.step == 'archiveArtifacts' }
}

test('a summaryDir an Ant pattern cannot name literally fails before kiln runs') {
    def dir = tempDir()
    [['a,b', '`,`'], ['out*', '`*`'], ['out?', '`?`'], ['$HOME', '`$`'], ['a\\b', '`\\`'], [' out', 'leading or trailing blanks']].each { given, what ->
        def pipeline = new Pipeline(cwd: dir)
        def step = loadStep(stepFile, pipeline)
        assert errorOf { step.call(dockerImage: '', kilnPath: fakeKiln(dir).path, summaryDir: given) } ==
            "kilnBuild: summaryDir '${given}' holds ${what}, which archiveArtifacts cannot match literally; " +
            "use another directory, or archive: false"
        assert !pipeline.calls.any { it.step == 'sh' }
    }
}

test('a failed build still archives the summary files, and fails the step') {
    Ant.load(System.getenv('KILN_TEST_ANT_JAR'))
    def dir = tempDir()
    new File(dir, 'reports').mkdirs()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    def failing = new File(dir, 'failing-kiln')
    failing.text = '#!/bin/sh\nprintf "### kiln failed" > "$KILN_SUMMARY_DIR/kiln-summary.md"\nexit 1\n'
    failing.setExecutable(true)
    try {
        step.call(dockerImage: '', kilnPath: failing.path, summaryDir: 'reports/')
        assert false: 'no error'
    } catch (RuntimeException e) {
        assert e.message.contains('exit code 1')
    }
    assert new File(dir, 'reports/kiln-summary.md').exists()
    def archived = pipeline.calls.find { it.step == 'archiveArtifacts' }
    assert archived.artifacts == 'reports/kiln-summary.json,reports/kiln-summary.md'
    assert Ant.archived(dir, archived) == ['reports/kiln-summary.md']
    assert !pipeline.calls.any { it.step == 'readFile' }
}

test('a kiln that succeeds without writing a summary fails the step') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    def silent = new File(dir, 'silent-kiln')
    silent.text = '#!/bin/sh\nexit 0\n'
    silent.setExecutable(true)
    assert errorOf { step.call(dockerImage: '', kilnPath: silent.path, summaryDir: 'out') } ==
        'kilnBuild: kiln succeeded but wrote no summary at `out/kiln-summary.json`'
}

test('by default kiln runs in kiln\'s image, through docker.image().inside') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir, imageBin: new File(dir, 'image-bin'))
    pipeline.credentialValues = ['reg:user': 'robot', 'reg:password': 's3cr3t']
    fakeKiln(pipeline.imageBin, 'kiln')
    def step = loadStep(stepFile, pipeline)
    def summary = step.call(registryCredentialsId: 'reg')
    assert summary.artifact.digest == 'sha256:abc'
    assert pipeline.calls.find { it.step == 'docker.image' }.id == 'ghcr.io/kiln-build/kiln:0.1.0'
    assert pipeline.calls.find { it.step == 'docker.image.inside' }.args == '--entrypoint='
    // kiln ran inside the container, as the image's `kiln`, credentials bound there too.
    assert new File(dir, 'where').text.trim() == "container=ghcr.io/kiln-build/kiln:0.1.0 kiln=${pipeline.imageBin.path}/kiln"
    assert new File(dir, 'secrets').text.startsWith('user=robot password=s3cr3t ')
    // The image does not know the agent's user: HOME is a directory of the workspace's.
    assert new File(dir, 'home').text.trim() == "${dir.path}@tmp/kiln-home"
    def order = pipeline.calls*.step.findAll { it in ['docker.image.inside', 'withEnv', 'withCredentials', 'sh', 'archiveArtifacts'] }
    assert order == ['docker.image.inside', 'withEnv', 'withCredentials', 'sh', 'archiveArtifacts']
}

test('another dockerImage is the image kiln runs in') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir, imageBin: new File(dir, 'image-bin'))
    fakeKiln(pipeline.imageBin, 'kiln')
    def step = loadStep(stepFile, pipeline)
    step.call(dockerImage: 'registry.example.com/mirror/kiln:0.1.0')
    assert pipeline.calls.find { it.step == 'docker.image' }.id == 'registry.example.com/mirror/kiln:0.1.0'
    assert new File(dir, 'where').text.startsWith('container=registry.example.com/mirror/kiln:0.1.0 ')
}

test('dockerImage \'\' runs kilnPath from the agent\'s PATH, without Docker') {
    def dir = tempDir()
    def agentBin = new File(dir, 'agent-bin')
    fakeKiln(agentBin, 'kiln')
    def pipeline = new Pipeline(cwd: dir, imageBin: new File(dir, 'image-bin'))
    pipeline.agentEnv.PATH = agentBin.path + ':' + System.getenv('PATH')
    def step = loadStep(stepFile, pipeline)
    def summary = step.call(dockerImage: '')
    assert summary.artifact.digest == 'sha256:abc'
    assert !pipeline.calls.any { it.step.startsWith('docker') }
    assert new File(dir, 'where').text.trim() == "container= kiln=${agentBin.path}/kiln"
    assert new File(dir, 'home').text.trim() == (System.getenv('HOME') ?: '')
}

test('without the Docker Pipeline plugin, a dockerImage fails the step with what to do') {
    def dir = tempDir()
    def pipeline = new Pipeline(cwd: dir)
    def step = loadStep(stepFile, pipeline)
    assert errorOf { step.call() } ==
        "kilnBuild: dockerImage 'ghcr.io/kiln-build/kiln:0.1.0' needs the Docker Pipeline plugin (docker-workflow), " +
        "which provides docker.image().inside, and it is not installed; install it, or pass dockerImage: '' " +
        "to run kiln from the agent's PATH (kilnPath)"
    assert !pipeline.calls.any { it.step == 'sh' || it.step == 'archiveArtifacts' }
}

def realKiln = System.getenv('KILN_TEST_BIN')
def project = System.getenv('KILN_TEST_PROJECT')
if (realKiln && project) {
    test('builds a project with the real kiln and returns its summary') {
        Ant.load(System.getenv('KILN_TEST_ANT_JAR'))
        def dir = new File(project).parentFile
        def pipeline = new Pipeline(cwd: dir)
        def step = loadStep(stepFile, pipeline)
        def summary = step.call(dockerImage: '', kilnPath: realKiln, path: new File(project).name)
        assert summary.schema_version == 1
        assert summary.artifact.digest ==~ /sha256:[0-9a-f]{64}/
        assert summary.project.name == 'rust-bin'
        assert new File(dir, 'kiln-summary.md').text.contains(summary.artifact.digest.substring(0, 19))
        assert serialises(summary)
        def archived = pipeline.calls.find { it.step == 'archiveArtifacts' }
        assert Ant.archived(dir, archived) == ['kiln-summary.json', 'kiln-summary.md']
    }
}

temporary.each { it.deleteDir() }
println "${passed} passed, ${failed} failed"
System.exit(failed == 0 ? 0 : 1)
