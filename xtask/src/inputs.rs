//! The wrappers' inputs, read from `kiln build`'s clap definition.
//!
//! The rule: every argument of `kiln build` is an input of every wrapper, except
//! hidden and global arguments (`--verbose`, `--quiet`, `--output`: the wrappers choose
//! those themselves), `--help`, and the few in [`WRAPPER_OWNED`], which each wrapper
//! sets itself because it reads what they produce. Then come the wrapper-only inputs
//! of [`wrapper_only`] (which kiln to install, credentials as secrets, the container
//! image), each marked with the wrappers that have it.

use clap::{ArgAction, CommandFactory};

/// `kiln build` arguments the wrappers set themselves rather than exposing.
pub const WRAPPER_OWNED: &[(&str, &str)] = &[
    (
        "summary-file",
        "every wrapper writes the summary where it reads it back from",
    ),
    (
        "platform",
        "every wrapper knows which CI it runs in, and says so",
    ),
];

/// The CI systems kiln has a wrapper for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    GitHub,
    GitLab,
    Jenkins,
    Tekton,
}

pub const ALL: &[Platform] = &[
    Platform::GitHub,
    Platform::GitLab,
    Platform::Jenkins,
    Platform::Tekton,
];

/// The type of an input's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch: `--force` when `true`.
    Bool,
    /// A whole number, passed as `--flag=N`.
    Number,
    /// Anything else, passed as `--flag=VALUE` when not empty.
    String,
    /// A list, written as JSON: only GitLab's own job keywords (`rules`) take one, and
    /// never as a kiln flag.
    Array,
}

/// What the wrapper does with an input's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A `kiln build` flag (`--registry-timeout`).
    Flag(String),
    /// `kiln build`'s positional argument, passed after `--`.
    Positional,
    /// Handed to kiln (or to the wrapper's install step) in this environment variable.
    Env(String),
}

#[derive(Debug, Clone)]
pub struct Input {
    /// kebab-case: the GitHub and GitLab input name.
    pub name: String,
    pub description: String,
    pub kind: Kind,
    /// The default as the wrappers spell it; empty means "kiln decides".
    pub default: String,
    /// The allowed values, when clap has a fixed list.
    pub options: Vec<String>,
    pub target: Target,
    pub platforms: &'static [Platform],
    /// Whether the wrapper hands the value over in [`Input::env`]; `false` for the few
    /// the wrapper's own definition uses (the job's image and stage).
    pub in_env: bool,
}

impl Input {
    pub fn on(&self, platform: Platform) -> bool {
        self.platforms.contains(&platform)
    }

    /// `UPPER_SNAKE`: the Tekton parameter name.
    pub fn upper_snake(&self) -> String {
        self.name.replace('-', "_").to_uppercase()
    }

    /// `camelCase`: the Jenkins step parameter name, as Piper's steps spell theirs.
    pub fn camel(&self) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in self.name.chars() {
            if c == '-' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The environment variable the wrapper hands the value over in.
    pub fn env(&self) -> String {
        match &self.target {
            Target::Env(name) => name.clone(),
            Target::Flag(_) | Target::Positional => format!("KILN_INPUT_{}", self.upper_snake()),
        }
    }

    /// The description with the flag it sets and its allowed values.
    pub fn long_description(&self) -> String {
        let mut text = self.description.clone();
        match &self.target {
            Target::Flag(flag) => text.push_str(&format!(" (`{flag}`)")),
            Target::Positional => text.push_str(" (`kiln build PATH`)"),
            Target::Env(_) => {}
        }
        if !self.options.is_empty() {
            text.push_str(&format!(
                ". One of: {}; empty lets kiln choose",
                self.options.join(", ")
            ));
        }
        text
    }
}

/// Every input, `kiln build`'s first (in clap's order), then the wrapper-only ones.
pub fn inputs() -> Vec<Input> {
    let mut inputs = cli_inputs();
    inputs.extend(wrapper_only());
    inputs
}

/// The inputs derived from `kiln build`.
pub fn cli_inputs() -> Vec<Input> {
    let cli = kiln_cli::Cli::command();
    let build = cli
        .find_subcommand("build")
        .expect("kiln has a `build` subcommand");
    let mut inputs = Vec::new();
    let mut positional = None;
    for arg in build.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set()
            || arg.is_global_set()
            || matches!(id, "help" | "version")
            || matches!(arg.get_action(), ArgAction::Help | ArgAction::Version)
        {
            continue;
        }
        let name = arg
            .get_long()
            .map(str::to_string)
            .unwrap_or_else(|| id.replace('_', "-"));
        if WRAPPER_OWNED.iter().any(|(owned, _)| *owned == name) {
            continue;
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let kind = match arg.get_action() {
            ArgAction::SetTrue => Kind::Bool,
            _ if !defaults.is_empty() && defaults.iter().all(|d| d.parse::<u64>().is_ok()) => {
                Kind::Number
            }
            _ => Kind::String,
        };
        let mut description = arg
            .get_help()
            .map(|h| h.to_string())
            .unwrap_or_default()
            .replace('\n', " ");
        if arg.get_value_delimiter().is_some() && !description.contains("comma-separated") {
            description.push_str(" (several: comma-separated)");
        }
        let default = match kind {
            Kind::Bool => "false".to_string(),
            _ if arg.is_positional() => defaults.join(","),
            _ => defaults.join(","),
        };
        let options = match kind {
            Kind::Bool => Vec::new(),
            _ => arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect(),
        };
        let input = Input {
            name,
            description,
            kind,
            default,
            options,
            target: if arg.is_positional() {
                Target::Positional
            } else {
                Target::Flag(format!("--{}", arg.get_long().expect("a named flag")))
            },
            platforms: ALL,
            in_env: true,
        };
        if arg.is_positional() {
            positional = Some(input);
        } else {
            inputs.push(input);
        }
    }
    // The project directory first: it is what most callers set.
    if let Some(path) = positional {
        inputs.insert(0, path);
    }
    inputs
}

/// The long flags a kiln subcommand (`["cache", "save"]`) accepts.
pub fn flags_of(subcommand: &[&str]) -> Vec<String> {
    let mut cmd = kiln_cli::Cli::command();
    for name in subcommand {
        cmd = cmd
            .find_subcommand(name)
            .unwrap_or_else(|| panic!("kiln has no `{}` subcommand", subcommand.join(" ")))
            .clone();
    }
    cmd.get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

/// The inputs a kiln subcommand other than `build` takes too (`kiln cache save`, which
/// the GitHub Action runs after a failed build), by the same names.
pub fn inputs_for(subcommand: &[&str]) -> Vec<Input> {
    let flags = flags_of(subcommand);
    cli_inputs()
        .into_iter()
        .filter(|i| match &i.target {
            Target::Flag(flag) => flags.contains(flag),
            Target::Positional => true,
            Target::Env(_) => false,
        })
        .collect()
}

/// kiln's own version: the release the wrappers install by default.
pub fn kiln_version() -> String {
    kiln_cli::Cli::command()
        .get_version()
        .expect("kiln has a version")
        .to_string()
}

/// Where releases are downloaded from: `BASE/vVERSION/kiln-TRIPLE`.
pub const DOWNLOAD_URL: &str = "https://github.com/kiln-build/kiln/releases/download";

/// The image the release workflow builds from `Containerfile`, tagged with the version.
pub const IMAGE: &str = "ghcr.io/kiln-build/kiln";

/// kiln's own image at this version: the default of every wrapper that runs a container.
pub fn kiln_image() -> String {
    format!("{IMAGE}:{}", kiln_version())
}

/// GitLab's default `rules`: merge request pipelines (where kiln's note goes), and
/// branch and tag pipelines, except a branch's when it has an open merge request, which
/// would build the same commit twice (GitLab's documented way of switching between the
/// two).
pub const GITLAB_RULES: &str = r#"[{"if": "$CI_PIPELINE_SOURCE == \"merge_request_event\""}, {"if": "$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS", "when": "never"}, {"if": "$CI_COMMIT_BRANCH"}, {"if": "$CI_COMMIT_TAG"}]"#;

/// Inputs that are not `kiln build` flags: how to get kiln, and secrets, which go
/// through the environment kiln reads rather than the command line.
pub fn wrapper_only() -> Vec<Input> {
    use Platform::*;
    let input = |name: &str,
                 description: &str,
                 kind: Kind,
                 default: &str,
                 env: &str,
                 platforms: &'static [Platform]| Input {
        name: name.to_string(),
        description: description.to_string(),
        kind,
        default: default.to_string(),
        options: Vec::new(),
        target: Target::Env(env.to_string()),
        platforms,
        in_env: !env.is_empty(),
    };
    vec![
        input(
            "command",
            "`build` (the whole pipeline, or only its first half with `no-publish`), or `publish`: push, sign and attest what a `no-publish` build stored, running no project code (flags `kiln publish` does not take must stay unset)",
            Kind::String,
            "build",
            "KILN_INPUT_COMMAND",
            &[GitHub],
        ),
        input(
            "version",
            "The kiln release to install",
            Kind::String,
            &kiln_version(),
            "KILN_INPUT_VERSION",
            &[GitHub, GitLab],
        ),
        input(
            "download-url",
            "Where kiln releases are downloaded from: BASE/vVERSION/kiln-TARGET, checked against the sha256 committed with this wrapper",
            Kind::String,
            DOWNLOAD_URL,
            "KILN_INPUT_DOWNLOAD_URL",
            &[GitHub, GitLab],
        ),
        input(
            "install-from-source",
            "Build kiln with `cargo install --git` instead of downloading a release: with kiln's own Rust (rustup installs it), outside the workspace, kept between jobs by actions/cache for release versions",
            Kind::Bool,
            "false",
            "KILN_INPUT_INSTALL_FROM_SOURCE",
            &[GitHub],
        ),
        input(
            "github-token",
            "The token kiln pushes to ghcr.io with and posts the pull request comment with",
            Kind::String,
            "${{ github.token }}",
            "GITHUB_TOKEN",
            &[GitHub],
        ),
        input(
            "registry-username",
            "Registry username, used before any other credential source",
            Kind::String,
            "",
            "KILN_REGISTRY_USERNAME",
            &[GitHub],
        ),
        input(
            "registry-password",
            "Registry password or token (pass a secret)",
            Kind::String,
            "",
            "KILN_REGISTRY_PASSWORD",
            &[GitHub],
        ),
        input(
            "signing-key",
            "A cosign private key (PEM, pass a secret); empty signs keyless when the workflow grants `id-token: write`",
            Kind::String,
            "",
            "KILN_SIGNING_KEY",
            &[GitHub],
        ),
        input(
            "signing-password",
            "The signing key's password (pass a secret)",
            Kind::String,
            "",
            "KILN_SIGNING_PASSWORD",
            &[GitHub],
        ),
        input(
            "image",
            "The container image the job runs in: kiln's own (kiln, Rust with wasm32-wasip1, Python with venv and componentize-py, Go), or any image with curl, which kiln is downloaded into",
            Kind::String,
            &kiln_image(),
            "",
            &[GitLab],
        ),
        input(
            "job-name",
            "The name of the kiln job: give each include its own to build several projects",
            Kind::String,
            "kiln-build",
            "",
            &[GitLab],
        ),
        input(
            "stage",
            "The pipeline stage of the kiln job",
            Kind::String,
            "build",
            "",
            &[GitLab],
        ),
        input(
            "rules",
            "The job's `rules` [default: merge request pipelines, and branch and tag pipelines except a branch's with an open merge request]",
            Kind::Array,
            GITLAB_RULES,
            "",
            &[GitLab],
        ),
        input(
            "image",
            "The image of the step that runs kiln: kiln's own, or any with kiln on its PATH",
            Kind::String,
            &kiln_image(),
            "",
            &[Tekton],
        ),
        input(
            "docker-image",
            "The image the step runs kiln in (with the Docker Pipeline plugin's `docker.image().inside`); empty runs kiln from the agent's PATH",
            Kind::String,
            &kiln_image(),
            "",
            &[Jenkins],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_each_platforms_convention() {
        let input = Input {
            name: "registry-timeout".into(),
            description: String::new(),
            kind: Kind::Number,
            default: "60".into(),
            options: vec![],
            target: Target::Flag("--registry-timeout".into()),
            platforms: ALL,
            in_env: true,
        };
        assert_eq!(input.upper_snake(), "REGISTRY_TIMEOUT");
        assert_eq!(input.camel(), "registryTimeout");
        assert_eq!(input.env(), "KILN_INPUT_REGISTRY_TIMEOUT");
    }

    #[test]
    fn the_cli_inputs_are_builds_flags_without_globals() {
        let names: Vec<String> = cli_inputs().into_iter().map(|i| i.name).collect();
        assert_eq!(names[0], "path");
        for flag in ["push", "force", "registry-timeout", "features"] {
            assert!(names.iter().any(|n| n == flag), "{flag} in {names:?}");
        }
        for global in ["verbose", "quiet", "output", "help", "summary-file"] {
            assert!(!names.iter().any(|n| n == global), "{global} in {names:?}");
        }
    }

    #[test]
    fn every_wrapper_owned_flag_exists() {
        let cli = kiln_cli::Cli::command();
        let build = cli.find_subcommand("build").unwrap();
        for (flag, _) in WRAPPER_OWNED {
            assert!(
                build.get_arguments().any(|a| a.get_long() == Some(flag)),
                "`kiln build --{flag}` does not exist: remove it from WRAPPER_OWNED"
            );
        }
    }
}
