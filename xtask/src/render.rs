//! The generated regions of each wrapper file, rendered from the [`Input`]s.

use crate::inputs::{Input, Kind, Platform, Target};

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn yaml_str(s: &str) -> String {
    serde_json_string(s)
}

fn serde_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Groovy single-quoted string (no interpolation).
fn groovy_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn on(inputs: &[Input], platform: Platform) -> impl Iterator<Item = &Input> {
    inputs.iter().filter(move |i| i.on(platform))
}

/// The POSIX sh lines that turn the `KILN_INPUT_*` variables into `kiln build`
/// arguments, appended to `"$@"`; the same in every wrapper. Values are expanded
/// inside double quotes only, never evaluated; `--flag=VALUE` keeps a value that
/// starts with `-` a value; the project directory comes last, after `--`.
pub fn shell_args(inputs: &[Input]) -> String {
    let mut out = String::new();
    let mut positional = None;
    for input in inputs {
        let env = input.env();
        match &input.target {
            Target::Flag(flag) => match input.kind {
                Kind::Bool => out.push_str(&format!(
                    "[ \"${{{env}:-}}\" != true ] || set -- \"$@\" {flag}\n"
                )),
                Kind::Number | Kind::String => out.push_str(&format!(
                    "[ -z \"${{{env}:-}}\" ] || set -- \"$@\" {flag}=\"${env}\"\n"
                )),
                Kind::Array => panic!("--{} takes a list: no kiln flag does", input.name),
            },
            Target::Positional => positional = Some((env, input.default.clone())),
            Target::Env(_) => {}
        }
    }
    if let Some((env, default)) = positional {
        let default = if default.is_empty() {
            ".".into()
        } else {
            default
        };
        out.push_str(&format!("set -- \"$@\" -- \"${{{env}:-{default}}}\"\n"));
    }
    out
}

/// action.yml `inputs:`.
pub fn github_inputs(inputs: &[Input]) -> String {
    let mut out = String::new();
    for input in on(inputs, Platform::GitHub) {
        out.push_str(&format!("{}:\n", input.name));
        out.push_str(&format!(
            "  description: {}\n",
            yaml_str(&input.long_description())
        ));
        out.push_str("  required: false\n");
        out.push_str(&format!("  default: {}\n", yaml_str(&input.default)));
    }
    out
}

/// action.yml: a step's `env:` entries, every input in its variable.
pub fn github_env(inputs: &[Input]) -> String {
    on(inputs, Platform::GitHub)
        .filter(|i| i.in_env)
        .map(|i| format!("{}: ${{{{ inputs.{} }}}}\n", i.env(), i.name))
        .collect()
}

/// The GitLab template's `spec: inputs:`.
pub fn gitlab_inputs(inputs: &[Input]) -> String {
    let mut out = String::new();
    for input in on(inputs, Platform::GitLab) {
        out.push_str(&format!("{}:\n", input.name));
        let (kind, default) = match input.kind {
            Kind::Bool => ("boolean", input.default.clone()),
            Kind::Number => ("number", input.default.clone()),
            Kind::String => ("string", yaml_str(&input.default)),
            Kind::Array => ("array", input.default.clone()),
        };
        out.push_str(&format!("  type: {kind}\n"));
        out.push_str(&format!("  default: {default}\n"));
        if !input.options.is_empty() {
            // The default (empty: kiln chooses) has to be one of the options.
            let options: Vec<String> = std::iter::once(String::new())
                .chain(input.options.iter().cloned())
                .map(|o| yaml_str(&o))
                .collect();
            out.push_str(&format!("  options: [{}]\n", options.join(", ")));
        }
        out.push_str(&format!(
            "  description: {}\n",
            yaml_str(&input.long_description())
        ));
    }
    out
}

/// The GitLab job's `variables:`, every input in its variable.
pub fn gitlab_variables(inputs: &[Input]) -> String {
    on(inputs, Platform::GitLab)
        .filter(|i| i.in_env)
        .map(|i| format!("{}: \"$[[ inputs.{} ]]\"\n", i.env(), i.name))
        .collect()
}

/// The Tekton Task's `params:`.
pub fn tekton_params(inputs: &[Input]) -> String {
    let mut out = String::new();
    for input in on(inputs, Platform::Tekton) {
        out.push_str(&format!("- name: {}\n", input.upper_snake()));
        out.push_str("  type: string\n");
        out.push_str(&format!(
            "  description: {}\n",
            yaml_str(&input.long_description())
        ));
        out.push_str(&format!("  default: {}\n", yaml_str(&input.default)));
    }
    out
}

/// The Tekton step's `env:`, every param in its variable.
pub fn tekton_env(inputs: &[Input]) -> String {
    let mut out = String::new();
    for input in on(inputs, Platform::Tekton).filter(|i| i.in_env) {
        out.push_str(&format!("- name: {}\n", input.env()));
        out.push_str(&format!("  value: $(params.{})\n", input.upper_snake()));
    }
    out
}

/// The Jenkins step's parameter list, in kilnBuild.txt.
pub fn jenkins_parameters(inputs: &[Input]) -> String {
    let mut out = String::new();
    for input in on(inputs, Platform::Jenkins) {
        let default = match (input.kind, input.default.as_str()) {
            (_, "") => "none".to_string(),
            (Kind::String, d) => format!("`'{d}'`"),
            (_, d) => format!("`{d}`"),
        };
        out.push_str(&format!(
            "* `{}`: {}. Default: {default}.\n",
            input.camel(),
            input.long_description()
        ));
    }
    out
}

/// The Jenkins step's defaults map.
pub fn jenkins_defaults(inputs: &[Input]) -> String {
    let mut out = String::new();
    for input in on(inputs, Platform::Jenkins) {
        let value = match input.kind {
            Kind::Bool | Kind::Number if !input.default.is_empty() => input.default.clone(),
            _ => groovy_str(&input.default),
        };
        out.push_str(&format!("{}: {value},\n", input.camel()));
    }
    out
}

/// The Jenkins step's parameter → variable list.
pub fn jenkins_inputs(inputs: &[Input]) -> String {
    on(inputs, Platform::Jenkins)
        .filter(|i| i.in_env)
        .map(|i| {
            format!(
                "[key: {}, env: {}],\n",
                groovy_str(&i.camel()),
                groovy_str(&i.env())
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::ALL;

    fn input(name: &str, kind: Kind, default: &str, target: Target) -> Input {
        Input {
            name: name.into(),
            description: "It's \"x\"".into(),
            kind,
            default: default.into(),
            options: vec![],
            target,
            platforms: ALL,
            in_env: true,
        }
    }

    #[test]
    fn shell_lines_quote_every_value_and_put_the_path_last() {
        let inputs = [
            input("path", Kind::String, ".", Target::Positional),
            input("force", Kind::Bool, "false", Target::Flag("--force".into())),
            input("tag", Kind::String, "", Target::Flag("--tag".into())),
        ];
        assert_eq!(
            shell_args(&inputs),
            "[ \"${KILN_INPUT_FORCE:-}\" != true ] || set -- \"$@\" --force\n\
             [ -z \"${KILN_INPUT_TAG:-}\" ] || set -- \"$@\" --tag=\"$KILN_INPUT_TAG\"\n\
             set -- \"$@\" -- \"${KILN_INPUT_PATH:-.}\"\n"
        );
    }

    #[test]
    fn strings_are_escaped_for_yaml_and_groovy() {
        assert_eq!(yaml_str("a \"b\" \\ c"), r#""a \"b\" \\ c""#);
        assert_eq!(groovy_str("it's"), r"'it\'s'");
    }
}
