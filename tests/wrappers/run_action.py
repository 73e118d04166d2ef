"""Runs a composite action's steps the way the GitHub runner does, on this machine.

    run_action.py ACTION_DIR INPUTS_JSON

For each step of ACTION_DIR/action.yml: evaluates its `if:` (the few forms kiln's
action uses), builds its `env:` by substituting `${{ inputs.NAME }}` with the input's
value or default (any other expression is refused, so an unexpected one fails the
test), runs `run:` with bash in the caller's environment plus that env and
GITHUB_ACTION_PATH, appends GITHUB_PATH entries to PATH for the next steps, and reads
each step's GITHUB_OUTPUT. Prints {"outcomes": {...}, "outputs": {...}} with the
action's outputs evaluated from `steps.ID.outputs.NAME`. The runner environment
(RUNNER_TEMP, RUNNER_OS, RUNNER_ARCH, GITHUB_*) comes from the caller.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

from ruamel.yaml import YAML

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def parse_outputs(text):
    """GITHUB_OUTPUT's two forms: `name=value`, and `name<<DELIMITER` ... `DELIMITER`."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            for inner in lines:
                if inner == delimiter:
                    break
                value.append(inner)
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def main():
    action_dir, given = sys.argv[1], json.loads(sys.argv[2])
    with open(os.path.join(action_dir, "action.yml")) as f:
        action = YAML(typ="safe").load(f)
    declared = action.get("inputs") or {}
    unknown = set(given) - set(declared)
    if unknown:
        sys.exit(f"inputs not declared in action.yml: {sorted(unknown)}")
    inputs = {name: str(spec.get("default", "")) for name, spec in declared.items()}
    inputs.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in given.items()})
    if inputs.get("github-token") == "${{ github.token }}":
        inputs["github-token"] = os.environ.get("GITHUB_TOKEN", "")

    def evaluate(text, steps):
        def one(match):
            expr = match.group(1)
            m = re.fullmatch(r"inputs\.([A-Za-z0-9_-]+)", expr)
            if m:
                return inputs[m.group(1)]
            m = re.fullmatch(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", expr)
            if m:
                return steps.get(m.group(1), {}).get("outputs", {}).get(m.group(2), "")
            sys.exit(f"unsupported expression: {expr}")
        return EXPR.sub(one, str(text))

    def condition(expr, steps, failed):
        expr = EXPR.sub(lambda m: m.group(1), str(expr)).strip()
        if expr in ("", "success()"):
            return not failed
        m = re.fullmatch(r"always\(\) && steps\.([A-Za-z0-9_-]+)\.outcome == '(\w+)'", expr)
        if m:
            return steps.get(m.group(1), {}).get("outcome") == m.group(2)
        m = re.fullmatch(
            r"inputs\.([A-Za-z0-9_-]+) == '(\w+)' && contains\(inputs\.([A-Za-z0-9_-]+), '([^']*)'\)",
            expr,
        )
        if m:
            return not failed and inputs[m.group(1)] == m.group(2) and m.group(4) in inputs[m.group(3)]
        sys.exit(f"unsupported condition: {expr}")

    steps, outcomes, failed = {}, [], False
    path_file = tempfile.NamedTemporaryFile(delete=False)
    path_file.close()
    env_path = os.environ.get("PATH", "")
    for index, step in enumerate(action["runs"]["steps"]):
        step_id = step.get("id", f"__{index}")
        if not condition(step.get("if", ""), steps, failed):
            outcomes.append({"name": step.get("name"), "outcome": "skipped"})
            continue
        output = tempfile.NamedTemporaryFile(delete=False)
        output.close()
        env = dict(os.environ)
        env.update({k: evaluate(v, steps) for k, v in (step.get("env") or {}).items()})
        env["GITHUB_ACTION_PATH"] = os.path.abspath(action_dir)
        env["GITHUB_OUTPUT"] = output.name
        env["GITHUB_PATH"] = path_file.name
        with open(path_file.name) as f:
            added = [line.strip() for line in f if line.strip()]
        env["PATH"] = os.pathsep.join(list(reversed(added)) + [env_path])
        if "uses" in step:
            sys.exit(f"step {step_id}: `uses: {step['uses']}` cannot run here")
        if step.get("shell") != "bash":
            sys.exit(f"step {step_id}: only `shell: bash` is supported")
        status = subprocess.run(["bash", "-e", "-c", step["run"]], env=env).returncode
        with open(output.name) as f:
            outputs = parse_outputs(f.read())
        os.unlink(output.name)
        outcome = "success" if status == 0 else "failure"
        steps[step_id] = {"outputs": outputs, "outcome": outcome}
        outcomes.append({"name": step.get("name"), "outcome": outcome})
        failed = failed or status != 0
    result = {
        "outcomes": outcomes,
        "outputs": {name: evaluate(spec["value"], steps) for name, spec in action["outputs"].items()},
    }
    print(json.dumps(result))
    sys.exit(1 if failed else 0)


main()
