//! The Jenkins shared-library step.

use super::*;

/// Apache Ant's jar, which `scripts/setup --test` installs beside the peer python
/// (`target/test-peers/ant-VERSION.jar`, the version that script pins): the step tests
/// match the pattern the step hands `archiveArtifacts` with Ant, as Jenkins does.
fn ant_jar() -> PathBuf {
    let setup = std::fs::read_to_string(repo_root().join("scripts/setup")).unwrap();
    let version = setup
        .lines()
        .find_map(|l| l.trim().strip_prefix("ant_version="))
        .expect("scripts/setup pins `ant_version=`");
    let jar = peer_python()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join(format!("ant-{version}.jar"));
    assert!(
        jar.is_file(),
        "`{}` is not installed: run the tests through `scripts/test`, which installs it",
        jar.display()
    );
    jar
}

#[test]
fn jenkins_step_tests_pass() {
    let ctx = TestContext::new();
    let groovy = require_tool("groovy");
    let project = ctx.fixture("rust-bin");
    let mut cmd = isolated(&ctx, groovy);
    if std::env::var_os("JAVA_HOME").is_none() && !Path::new("/usr/lib/jvm/default-java").exists() {
        let java = std::fs::canonicalize(require_tool("java")).unwrap();
        cmd.env("JAVA_HOME", java.parent().unwrap().parent().unwrap());
    }
    let out = cmd
        .arg(repo_root().join("jenkins/test/KilnBuildTest.groovy"))
        .env("KILN_TEST_ANT_JAR", ant_jar())
        .env("KILN_TEST_BIN", env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_TEST_PROJECT", &project)
        .env("JENKINS_URL", "http://jenkins.example.com/")
        .env("WORKSPACE", ctx.path())
        .output()
        .unwrap();
    assert_ok("the Jenkins step tests", &out);
    let log = stdout(&out);
    assert!(log.contains("16 passed, 0 failed"), "{log}");
}
