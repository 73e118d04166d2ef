"""Runs a Wasm module (WASI preview 1) or component (WASI p2, `wasi:cli/run`) with
PyPI `wasmtime`: an independent runtime that checks what kiln built.

usage: run_wasm.py FILE.wasm [ARGS...]   (stdin/stdout/stderr are inherited)
Exits with the guest's exit code; 99 when the runtime itself failed.
"""

import sys
import traceback

import wasmtime
import wasmtime.component as component

COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"


def wasi_config(argv):
    config = wasmtime.WasiConfig()
    config.argv = argv
    config.inherit_stdin()
    config.inherit_stdout()
    config.inherit_stderr()
    return config


def run_module(engine, store, data):
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, wasmtime.Module(engine, data))
    instance.exports(store)["_start"](store)
    return 0


def run_component(engine, store, data):
    linker = component.Linker(engine)
    linker.add_wasip2()
    instance = linker.instantiate(store, component.Component(engine, data))
    for version in ("0.2.0", "0.2.3", "0.2.6", "0.2.9"):
        run_interface = instance.get_export_index(store, f"wasi:cli/run@{version}")
        if run_interface is not None:
            break
    else:
        raise RuntimeError("the component exports no wasi:cli/run")
    run = instance.get_func(store, instance.get_export_index(store, "run", run_interface))
    try:
        result = run(store)
    except wasmtime.WasmtimeError as err:
        # `result<_, _>::err` surfaces as an error value in some versions.
        if "err" in str(err).lower():
            return 1
        raise
    run.post_return(store)
    return 1 if result is not None and getattr(result, "tag", "ok") != "ok" else 0


def main():
    path, args = sys.argv[1], sys.argv[2:]
    with open(path, "rb") as f:
        data = f.read()
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi_config([path.rsplit("/", 1)[-1]] + args))
    try:
        if data.startswith(COMPONENT_HEADER):
            code = run_component(engine, store, data)
        else:
            code = run_module(engine, store, data)
    except wasmtime.ExitTrap as exit_trap:
        code = exit_trap.code
    except Exception:
        traceback.print_exc()
        sys.stdout.flush()
        sys.exit(99)
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
