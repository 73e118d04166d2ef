"""Runs a Tekton Task's single step on this machine, as the Tekton controller and
entrypoint would.

    run_tekton_step.py TASK_YAML PARAMS_JSON WORKSPACES_JSON

PARAMS_JSON: {"NAME": "value"} for the TaskRun's params (the rest take their
defaults; an unknown name fails, as the TaskRun would). WORKSPACES_JSON: {"name":
"/host/path"} for the bound workspaces. Tekton substitutes `$(params.X)` and
`$(workspaces.X.path|bound)` in the step's image, workingDir and env values; this
does the same, and refuses a script that contains either, since kiln's Task must not
splice params into its script. `secretKeyRef` entries are optional ones whose Secret
does not exist here, so they are left unset. The results directory comes from the
caller's KILN_TEKTON_RESULTS, in place of /tekton/results. Exits with the step's status.
"""

import json
import os
import re
import subprocess
import sys

from ruamel.yaml import YAML

with open(sys.argv[1]) as f:
    task = YAML(typ="safe").load(f)
given, workspaces = json.loads(sys.argv[2]), json.loads(sys.argv[3])
spec = task["spec"]
params = {p["name"]: p.get("default") for p in spec.get("params", [])}
unknown = set(given) - set(params)
if unknown:
    sys.exit(f"params the Task does not declare: {sorted(unknown)}")
params.update(given)
missing = [name for name, value in params.items() if value is None]
if missing:
    sys.exit(f"params without a value: {missing}")
for ws in spec.get("workspaces", []):
    if ws["name"] not in workspaces and not ws.get("optional"):
        sys.exit(f"workspace {ws['name']} is not optional")

VARIABLE = re.compile(r"\$\((params|workspaces)\.([A-Za-z0-9_.-]+?)(?:\.(path|bound))?\)")


def substitute(text):
    def one(m):
        kind, name, attribute = m.groups()
        if kind == "params":
            return params[name]
        bound = name in workspaces
        if attribute == "bound":
            return "true" if bound else "false"
        return workspaces.get(name, "")
    return VARIABLE.sub(one, text)


(step,) = spec["steps"]
script = step["script"]
if "$(params." in script or "$(workspaces." in script:
    sys.exit("the step's script splices a param or workspace: pass it through env")
env = dict(os.environ)
for var in step.get("env", []):
    if "value" in var:
        env[var["name"]] = substitute(var["value"])
    elif not var["valueFrom"]["secretKeyRef"].get("optional"):
        sys.exit(f"env {var['name']} needs a Secret")
substitute(step["image"])
cwd = substitute(step.get("workingDir", "."))
interpreter = script.splitlines()[0][2:].split() if script.startswith("#!") else ["sh"]
sys.exit(subprocess.run(interpreter + ["-c", script], env=env, cwd=cwd).returncode)
