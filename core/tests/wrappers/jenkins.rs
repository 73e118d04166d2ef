//! The Jenkins shared-library step.

use super::*;

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
        .env("KILN_TEST_BIN", env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_TEST_PROJECT", &project)
        .env("JENKINS_URL", "http://jenkins.example.com/")
        .env("WORKSPACE", ctx.path())
        .output()
        .unwrap();
    assert_ok("the Jenkins step tests", &out);
    let log = stdout(&out);
    assert!(log.contains("6 passed, 0 failed"), "{log}");
}
