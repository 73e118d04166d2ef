"""Runs Tekton TaskRuns and PipelineRuns on this machine, as the Tekton controller, the
kubelet and Tekton's entrypoint would, as far as a machine without Kubernetes can.

    run_tekton_step.py taskrun TASK_YAML [options]
    run_tekton_step.py pipelinerun PIPELINERUN_YAML --resource PIPELINE_OR_TASK_YAML... [options]

Options:
    --param NAME=VALUE      a param of the TaskRun, or one that replaces the
                            PipelineRun's (repeatable)
    --workspace NAME=DIR    the host directory of a workspace: the TaskRun's workspace,
                            or the PipelineRun's binding (a Secret's keys as files, a
                            claim's contents); a volumeClaimTemplate or emptyDir binding
                            without one gets a fresh directory (repeatable)
    --image-file IMAGE=PATH=HOSTFILE
                            a file of IMAGE: steps of that image find HOSTFILE at PATH
                            (repeatable); the rest of a step's root is this machine's
    --results DIR           where each TaskRun's results are kept, in DIR/<task name>

What each TaskRun gets, as Tekton gives it:
- params: the given values over the Task's defaults; an undeclared param, or one
  without a value, fails the run, as the admission webhook would. In a Pipeline, task
  params may use `$(params.X)` and `$(tasks.T.results.R)`; a reference to a result the
  task did not write fails the run (`InvalidTaskResultReference`), and tasks run in an
  order that honours `runAfter` and those references.
- substitution of `$(params.X)`, `$(workspaces.X.path|bound)` and `$(results.X.path)` in
  a step's image, workingDir, env values, command, args and script; any other `$(...)`
  variable fails the run. A script must not splice params or workspaces (kiln's rule:
  they go through env), so a script holding `$(params.` or `$(workspaces.` fails too.
  `secretKeyRef` env must be `optional`: no Secret exists here, so they stay unset.
- a pod's filesystem: each step runs in its own mount namespace, chrooted into a root
  whose top-level directories are this machine's (bind mounts), plus Tekton's own:
  workspaces at /workspace/<name> (or their mountPath), results at /tekton/results,
  a shared /tekton/home, the script at /tekton/scripts/<step>, and the --image-file
  files. Scripts without a `#!` line get Tekton's `#!/bin/sh` and `set -e`.
- a step's securityContext: `runAsUser`/`runAsGroup` become the step's uid and gid in a
  user namespace that maps them to the caller (so files keep the caller's ownership:
  volume ownership and `fsGroup` are not modelled); `runAsNonRoot` refuses a step
  without a non-zero `runAsUser`, as the kubelet does when it cannot tell the image's
  user; `capabilities.drop: [ALL]` empties every capability set;
  `allowPrivilegeEscalation: false` sets no_new_privs; `seccompProfile: RuntimeDefault`
  installs the part of containerd's and CRI-O's default profile (Docker's) that decides
  what kiln's isolation can do: without CAP_SYS_ADMIN, `unshare`, `setns`, `mount`,
  `umount2` and `pivot_root` fail with EPERM, `clone` with any namespace flag fails with
  EPERM and `clone3` with ENOSYS (so that libc falls back to `clone`). Any other field
  fails the run rather than be ignored.
- results: declared results the steps did not write are reported missing; a step whose
  results add up to more than Tekton's 4096 bytes per container fails.

Steps inherit this process's environment (standing in for their image's), then their
own env. Their output goes to stderr. The exit status is 0 when every TaskRun
succeeded; stdout is a JSON report either way:
{"taskRuns": {NAME: {"succeeded": bool, "failedStep": STEP|null, "exitCode": N,
"results": {NAME: VALUE}, "missingResults": [NAME]}}, "results": {NAME: VALUE},
"failed": MESSAGE|null} ("results" at the top level: the Pipeline's).
"""

import argparse
import ctypes
import errno
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from ruamel.yaml import YAML

RESULTS_LIMIT = 4096
# Tekton's variables; any other `$(...)` (a shell's command substitution) is left alone.
VARIABLE = re.compile(
    r"\$\(((?:params|workspaces|results|context|tasks|steps|step|credentials)[.\[][^()]*)\)")


class RunFailed(Exception):
    """The run cannot go on, as a TaskRun or PipelineRun would fail."""


def load(path):
    with open(path) as f:
        return YAML(typ="safe").load(f)


def key_value(text):
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def image_file(text):
    image, sep, rest = text.partition("=")
    path, sep2, host = rest.partition("=")
    if not (sep and sep2 and path.startswith("/")):
        raise argparse.ArgumentTypeError(f"expected IMAGE=/PATH=HOSTFILE, got {text!r}")
    return image, path, host


# --- variables -------------------------------------------------------------------


def substitute(text, resolve, where):
    """Replaces every Tekton variable in text with resolve(expression); resolve returns
    None for one it does not know, which fails the run."""

    def one(m):
        value = resolve(m.group(1))
        if value is None:
            raise RunFailed(f"{where}: no value for `$({m.group(1)})`")
        return value

    return VARIABLE.sub(one, text)


# --- the pod: mount namespace, root, security context ------------------------------

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
# Docker's mask for clone's flags (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
# NEWPID, NEWNET): its default profile allows clone only when none is set.
CLONE_NAMESPACE_FLAGS = 0x7E020000

# (AUDIT_ARCH_*, syscall numbers) of the native ABI.
SYSCALLS = {
    "x86_64": (0xC000003E, {"unshare": 272, "setns": 308, "mount": 165, "umount2": 166,
                            "pivot_root": 155, "clone": 56, "clone3": 435}),
    "aarch64": (0xC00000B7, {"unshare": 97, "setns": 268, "mount": 40, "umount2": 39,
                             "pivot_root": 41, "clone": 220, "clone3": 435}),
}


def checked(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def mount(source, target, fstype, flags, data=None):
    checked(libc.mount(source and source.encode(), target.encode(),
                       fstype and fstype.encode(), ctypes.c_ulong(flags),
                       data and data.encode()), f"mount {source} on {target}")


def runtime_default_filter():
    """The seccomp program: see the module's doc."""
    if platform.machine() not in SYSCALLS:
        raise RunFailed(f"seccompProfile RuntimeDefault is not emulated on {platform.machine()}")
    arch, nr = SYSCALLS[platform.machine()]
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    # (code, jump-if-true label, jump-if-false label, k) with symbolic labels.
    program, labels = [], {}

    def op(code, k, jt=None, jf=None):
        program.append([code, jt, jf, k])

    def label(name):
        labels[name] = len(program)

    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    op(ld, 4)  # seccomp_data.arch
    op(jeq, arch, None, "allow")
    op(ld, 0)  # seccomp_data.nr
    for name in ("unshare", "setns", "mount", "umount2", "pivot_root"):
        op(jeq, nr[name], "eperm", None)
    op(jeq, nr["clone3"], "enosys", None)
    op(jeq, nr["clone"], None, "allow")
    op(ld, 16)  # the low 32 bits of args[0] (little-endian): clone's flags
    op(jset, CLONE_NAMESPACE_FLAGS, "eperm", "allow")
    label("allow")
    op(ret, allow)
    label("eperm")
    op(ret, eperm)
    label("enosys")
    op(ret, enosys)
    code = b""
    for at, (c, jt, jf, k) in enumerate(program):
        offset = lambda target: 0 if target is None else labels[target] - at - 1
        code += struct.pack("HBBI", c, offset(jt), offset(jf), k)
    return code


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def drop_capabilities():
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        checked(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    checked(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient")
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = bytes(24)  # two empty {effective, permitted, inheritable}
    checked(libc.capset(header, data), "capset")


class Pod:
    """What a step's process does between fork and exec: enter its namespaces and
    root, take its identity, and lose its privileges."""

    def __init__(self, root, mounts, cwd, security):
        self.root, self.mounts, self.cwd = root, mounts, cwd
        self.uid, self.gid = security.get("uid"), security.get("gid")
        self.drop_all, self.no_new_privs = security["drop_all"], security["no_new_privs"]
        self.seccomp = runtime_default_filter() if security["runtime_default"] else None
        self.caller = (os.getuid(), os.getgid())

    def __call__(self):
        try:
            self.enter()
        except BaseException as err:  # the parent only learns that preexec_fn failed
            os.write(2, f"run_tekton_step.py: setting up the step failed: {err}\n".encode())
            raise

    def enter(self):
        uid, gid = self.uid, self.gid
        user_ns = uid is not None or self.caller[0] != 0
        checked(libc.unshare(CLONE_NEWNS | (CLONE_NEWUSER if user_ns else 0)), "unshare")
        if user_ns:
            uid = self.caller[0] if uid is None else uid
            gid = self.caller[1] if gid is None else gid
            # A process maps only its own ids into a user namespace it has entered, and
            # its gid only once setgroups(2) is denied there.
            write("/proc/self/setgroups", "deny")
            write("/proc/self/uid_map", f"{uid} {self.caller[0]} 1")
            write("/proc/self/gid_map", f"{gid} {self.caller[1]} 1")
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        root = self.root
        mount("tmpfs", root, "tmpfs", 0, "mode=0755")
        own = {m.strip("/").split("/")[0] for m, _ in self.mounts}
        for name in sorted(os.listdir("/")):
            source, target = "/" + name, os.path.join(root, name)
            if name in own:
                continue
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
            elif os.path.isdir(source):
                os.mkdir(target)
                mount(source, target, None, MS_BIND | MS_REC)
        for path, source in sorted(self.mounts, key=lambda m: m[0].count("/")):
            target = root + path
            if os.path.isdir(source):
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, "a").close()
            mount(source, target, None, MS_BIND | MS_REC)
        os.chroot(root)
        os.chdir(self.cwd)
        if self.drop_all:
            drop_capabilities()
        if self.no_new_privs or self.seccomp:
            checked(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if self.seccomp:
            buffer = ctypes.create_string_buffer(self.seccomp)
            prog = SockFprog(len(self.seccomp) // 8, ctypes.addressof(buffer))
            checked(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0),
                    "seccomp")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def security_of(step, where):
    """The emulated parts of a step's securityContext; anything else fails the run."""
    context = dict(step.get("securityContext") or {})
    security = {"drop_all": False, "no_new_privs": False, "runtime_default": False}
    if "runAsUser" in context:
        security["uid"] = int(context.pop("runAsUser"))
    if "runAsGroup" in context:
        security["gid"] = int(context.pop("runAsGroup"))
    if context.pop("runAsNonRoot", False) and not security.get("uid"):
        raise RunFailed(f"{where}: runAsNonRoot without a non-zero runAsUser: the kubelet "
                        "refuses to start it unless the image's user is non-root")
    if context.pop("allowPrivilegeEscalation", True) is False:
        security["no_new_privs"] = True
    capabilities = dict(context.pop("capabilities", None) or {})
    drop = capabilities.pop("drop", [])
    if capabilities or drop not in ([], ["ALL"]):
        raise RunFailed(f"{where}: only `capabilities: {{drop: [ALL]}}` is emulated")
    security["drop_all"] = drop == ["ALL"]
    seccomp = dict(context.pop("seccompProfile", None) or {"type": "Unconfined"})
    kind = seccomp.pop("type", None)
    if seccomp or kind not in ("RuntimeDefault", "Unconfined"):
        raise RunFailed(f"{where}: seccompProfile {kind} is not emulated")
    security["runtime_default"] = kind == "RuntimeDefault"
    if context:
        raise RunFailed(f"{where}: securityContext fields not emulated: {sorted(context)}")
    return security


def remove_tree(path):
    """Removes a scratch tree, unless something is mounted inside it: the steps' mounts
    live in their own namespaces, and a tree holding one would hold this machine."""
    for top, dirs, _ in os.walk(path):
        if any(os.path.ismount(os.path.join(top, d)) for d in dirs):
            print(f"run_tekton_step.py: {path} holds a mount point: left in place",
                  file=sys.stderr)
            return
    shutil.rmtree(path, ignore_errors=True)


# --- TaskRuns ----------------------------------------------------------------------


class Runner:
    def __init__(self, images, results_base, scratch):
        self.images, self.results_base, self.scratch = images, results_base, scratch

    def task_run(self, name, task, given, workspaces):
        """Runs `task` with params `given` and workspaces {name: host dir}; returns
        its report entry."""
        spec = task["spec"]
        where = f"TaskRun {name}"
        params = {p["name"]: p.get("default") for p in spec.get("params", [])}
        unknown = set(given) - set(params)
        if unknown:
            raise RunFailed(f"{where}: params the Task does not declare: {sorted(unknown)}")
        params.update(given)
        missing = [p for p, value in params.items() if value is None]
        if missing:
            raise RunFailed(f"{where}: params without a value: {missing}")
        mount_paths = {}
        for ws in spec.get("workspaces", []):
            if ws["name"] in workspaces:
                mount_paths[ws["name"]] = ws.get("mountPath", f"/workspace/{ws['name']}")
            elif not ws.get("optional"):
                raise RunFailed(f"{where}: workspace {ws['name']} is not bound")
        extra = set(workspaces) - {ws["name"] for ws in spec.get("workspaces", [])}
        if extra:
            raise RunFailed(f"{where}: workspaces the Task does not declare: {sorted(extra)}")
        declared = [r["name"] for r in spec.get("results", [])]

        def resolve(expression):
            kind, _, rest = expression.partition(".")
            if kind == "params":
                return params.get(rest)
            if kind == "results":
                result, _, attribute = rest.rpartition(".")
                if attribute == "path" and result in declared:
                    return f"/tekton/results/{result}"
            if kind == "workspaces":
                ws, _, attribute = rest.rpartition(".")
                if attribute == "bound" and ws in {w["name"] for w in spec.get("workspaces", [])}:
                    return "true" if ws in mount_paths else "false"
                if attribute == "path" and ws in {w["name"] for w in spec.get("workspaces", [])}:
                    return mount_paths.get(ws, "")
            return None

        results = os.path.join(self.results_base, name)
        os.makedirs(results, exist_ok=True)
        if os.listdir(results):
            raise RunFailed(f"{where}: {results} is not empty: a TaskRun starts with no results")
        pod = tempfile.mkdtemp(prefix=f"{name}-", dir=self.scratch)
        home, scripts = os.path.join(pod, "home"), os.path.join(pod, "scripts")
        os.makedirs(home)
        os.makedirs(scripts)
        root = os.path.join(pod, "root")
        os.mkdir(root)
        report = {"succeeded": True, "failedStep": None, "exitCode": 0}
        for step in spec["steps"]:
            step_where = f"{where} step {step['name']}"
            sub = lambda text: substitute(str(text), resolve, step_where)
            image = sub(step["image"])
            mounts = [(path, workspaces[ws]) for ws, path in mount_paths.items()]
            mounts += [("/tekton/results", results), ("/tekton/home", home),
                       ("/tekton/scripts", scripts)]
            mounts += [(path, host) for img, path, host in self.images if img == image]
            env = dict(os.environ)
            for var in step.get("env", []):
                if "value" in var:
                    env[var["name"]] = sub(var["value"])
                elif not var["valueFrom"]["secretKeyRef"].get("optional"):
                    raise RunFailed(f"{step_where}: env {var['name']} needs a Secret")
                else:
                    sub(var["valueFrom"]["secretKeyRef"]["name"])
            command = [sub(c) for c in step.get("command", [])]
            args = [sub(a) for a in step.get("args", [])]
            if "script" in step:
                script = step["script"]
                if "$(params." in script or "$(workspaces." in script:
                    raise RunFailed(f"{step_where}: the script splices a param or workspace: "
                                    "pass it through env")
                script = sub(script)
                if not script.startswith("#!"):
                    script = "#!/bin/sh\nset -e\n" + script
                with open(os.path.join(scripts, step["name"]), "w") as f:
                    f.write(script)
                os.chmod(os.path.join(scripts, step["name"]), 0o755)
                command = [f"/tekton/scripts/{step['name']}"] + args
            else:
                command += args
            if not command:
                raise RunFailed(f"{step_where}: neither script nor command")
            cwd = sub(step.get("workingDir", "/"))
            security = security_of(step, step_where)
            try:
                code = subprocess.run(command, env=env, stdout=sys.stderr,
                                      stdin=subprocess.DEVNULL,
                                      preexec_fn=Pod(root, mounts, cwd, security)).returncode
            except subprocess.SubprocessError as err:
                raise RunFailed(f"{step_where}: could not start it: {err}") from err
            size = sum(os.path.getsize(os.path.join(results, r)) for r in os.listdir(results))
            if code == 0 and size > RESULTS_LIMIT:
                print(f"{step_where}: its results add up to {size} bytes, over Tekton's "
                      f"{RESULTS_LIMIT}", file=sys.stderr)
                code = 1
            if code != 0:
                report.update(succeeded=False, failedStep=step["name"], exitCode=code)
                break
        report["results"] = {r: open(os.path.join(results, r)).read()
                             for r in declared if os.path.isfile(os.path.join(results, r))}
        report["missingResults"] = [r for r in declared if r not in report["results"]]
        remove_tree(pod)
        return report


def host_dirs(pairs):
    dirs = {name: os.path.abspath(path) for name, path in pairs}
    for name, path in dirs.items():
        if not os.path.isdir(path):
            raise RunFailed(f"--workspace {name}: {path} is not a directory")
    return dirs


def run_task(args, runner, out):
    task = load(args.file)
    if task.get("kind") != "Task":
        raise RunFailed(f"{args.file} is not a Task")
    name = task["metadata"]["name"]
    workspaces = host_dirs(args.workspace)
    entry = runner.task_run(name, task, dict(args.param), workspaces)
    out["taskRuns"][name] = entry
    if not entry["succeeded"]:
        raise RunFailed(f"TaskRun {name} failed: step {entry['failedStep']} exited with "
                        f"{entry['exitCode']}")


# --- PipelineRuns ------------------------------------------------------------------


def run_pipeline(args, runner, out):
    run = load(args.file)
    if run.get("kind") != "PipelineRun":
        raise RunFailed(f"{args.file} is not a PipelineRun")
    resources = {}
    for path in args.resource:
        doc = load(path)
        resources[(doc["kind"], doc["metadata"]["name"])] = doc
    spec = run["spec"]
    pipeline = resources.get(("Pipeline", spec["pipelineRef"]["name"]))
    if pipeline is None:
        raise RunFailed(f"no Pipeline {spec['pipelineRef']['name']} among the resources")
    pspec = pipeline["spec"]
    for unsupported in ("finally",):
        if unsupported in pspec:
            raise RunFailed(f"the Pipeline's `{unsupported}` is not emulated")

    params = {p["name"]: p.get("default") for p in pspec.get("params", [])}
    given = {p["name"]: p["value"] for p in spec.get("params", [])}
    given.update(dict(args.param))
    unknown = set(given) - set(params)
    if unknown:
        raise RunFailed(f"params the Pipeline does not declare: {sorted(unknown)}")
    params.update(given)
    missing = [p for p, value in params.items() if value is None]
    if missing:
        raise RunFailed(f"Pipeline params without a value: {missing}")

    hosts = host_dirs(args.workspace)
    bound = {}
    for binding in spec.get("workspaces", []):
        ws = binding["name"]
        if ws in hosts:
            bound[ws] = hosts.pop(ws)
        elif "emptyDir" in binding or "volumeClaimTemplate" in binding:
            bound[ws] = tempfile.mkdtemp(prefix=f"{ws}-", dir=runner.scratch)
        else:
            raise RunFailed(f"workspace binding {ws} needs --workspace {ws}=DIR")
        if binding.get("subPath"):
            bound[ws] = os.path.join(bound[ws], binding["subPath"])
            os.makedirs(bound[ws], exist_ok=True)
    if hosts:
        raise RunFailed(f"--workspace for bindings the PipelineRun lacks: {sorted(hosts)}")
    for ws in pspec.get("workspaces", []):
        if ws["name"] not in bound and not ws.get("optional"):
            raise RunFailed(f"the Pipeline's workspace {ws['name']} is not bound")

    tasks = {t["name"]: t for t in pspec["tasks"]}
    reference = re.compile(r"\$\(tasks\.([^.()]+)\.results\.([^.()]+)\)")

    def needs(task):
        after = set(task.get("runAfter", []))
        for p in task.get("params", []):
            after |= {m.group(1) for m in reference.finditer(str(p["value"]))}
        unknown = after - set(tasks)
        if unknown:
            raise RunFailed(f"pipeline task {task['name']} runs after unknown {sorted(unknown)}")
        return after

    def result_of(task, result, where):
        entry = out["taskRuns"].get(task)
        if entry is None or result not in entry["results"]:
            raise RunFailed(f"{where}: InvalidTaskResultReference: `$(tasks.{task}.results."
                            f"{result})` was not written")
        return entry["results"][result]

    def resolve_for(where):
        def resolve(expression):
            kind, _, rest = expression.partition(".")
            if kind == "params":
                return params.get(rest)
            m = re.fullmatch(r"tasks\.([^.]+)\.results\.([^.]+)", expression)
            if m:
                return result_of(m.group(1), m.group(2), where)
            if expression == "context.pipelineRun.name":
                return run["metadata"].get("name") or run["metadata"]["generateName"] + "local"
            return None
        return resolve

    done = set()
    while len(done) < len(tasks):
        ready = [t for name, t in tasks.items() if name not in done and needs(t) <= done]
        if not ready:
            raise RunFailed(f"the Pipeline's tasks form a cycle: {sorted(set(tasks) - done)}")
        task = ready[0]
        where = f"pipeline task {task['name']}"
        for unsupported in ("when", "matrix", "retries", "taskSpec"):
            if unsupported in task:
                raise RunFailed(f"{where}: `{unsupported}` is not emulated")
        ref = task["taskRef"]
        definition = resources.get(("Task", ref.get("name")))
        if definition is None or set(ref) != {"name"}:
            raise RunFailed(f"{where}: no Task {ref} among the resources")
        task_params = {p["name"]: substitute(str(p["value"]), resolve_for(where), where)
                       for p in task.get("params", [])}
        task_workspaces = {}
        for ws in task.get("workspaces", []):
            if ws["workspace"] not in bound:
                continue  # an optional Pipeline workspace left unbound
            path = bound[ws["workspace"]]
            if ws.get("subPath"):
                path = os.path.join(path, ws["subPath"])
                os.makedirs(path, exist_ok=True)
            task_workspaces[ws["name"]] = path
        entry = runner.task_run(task["name"], definition, task_params, task_workspaces)
        out["taskRuns"][task["name"]] = entry
        if not entry["succeeded"]:
            raise RunFailed(f"TaskRun {task['name']} failed: step {entry['failedStep']} "
                            f"exited with {entry['exitCode']}")
        done.add(task["name"])
    for result in pspec.get("results", []):
        where = f"Pipeline result {result['name']}"
        out["results"][result["name"]] = substitute(str(result["value"]), resolve_for(where),
                                                    where)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["taskrun", "pipelinerun"])
    parser.add_argument("file")
    parser.add_argument("--resource", action="append", default=[])
    parser.add_argument("--param", action="append", default=[], type=key_value)
    parser.add_argument("--workspace", action="append", default=[], type=key_value)
    parser.add_argument("--image-file", action="append", default=[], type=image_file)
    parser.add_argument("--results", required=True)
    args = parser.parse_args()
    for image, path, host in args.image_file:
        if not os.path.exists(host):
            parser.error(f"--image-file {image}={path}: {host} does not exist")
    out = {"taskRuns": {}, "results": {}, "failed": None}
    scratch = tempfile.mkdtemp(prefix="tekton-")
    runner = Runner(args.image_file, os.path.abspath(args.results), scratch)
    try:
        (run_task if args.kind == "taskrun" else run_pipeline)(args, runner, out)
    except RunFailed as err:
        out["failed"] = str(err)
        print(f"run_tekton_step.py: {err}", file=sys.stderr)
    finally:
        remove_tree(scratch)
    json.dump(out, sys.stdout, indent=2)
    print()
    sys.exit(1 if out["failed"] else 0)


if __name__ == "__main__":
    main()
