"""Makes a pure-Python wheel of a package built without its optional C speed-ups.

Run by the host python: `python purify.py WHEEL OUT_DIR`. WHEEL was built from the
package's source distribution with no C compiler and the common speed-up switches off.
When it holds no native code, its tags only say which interpreter built it: it is
written again into OUT_DIR tagged `py3-none-any`, once its top-level modules import
without the speed-ups. Exit status 0: OUT_DIR has the pure wheel; 3: the wheel has
native code; 4: its modules do not import without it (the reason is on stderr).
"""

import base64
import hashlib
import importlib
import os
import sys
import tempfile
import zipfile

NATIVE = (".so", ".pyd", ".dylib", ".dll", ".a", ".lib", ".o")


def top_level(names):
    """The wheel's top-level packages and modules."""
    tops = set()
    for name in names:
        first, _, rest = name.partition("/")
        if first.endswith((".dist-info", ".data")):
            continue
        if rest and rest.split("/")[0] and f"{first}/__init__.py" in names:
            tops.add(first)
        elif not rest and first.endswith(".py"):
            tops.add(first[:-3])
    return sorted(t for t in tops if t.isidentifier())


def main():
    wheel, out_dir = sys.argv[1], sys.argv[2]
    dist, version = os.path.basename(wheel).split("-")[:2]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        native = [n for n in names if n.lower().endswith(NATIVE) or ".so." in n]
        if native:
            print(f"native code in the wheel: {', '.join(native[:5])}", file=sys.stderr)
            return 3
        info_dir = next(n.split("/")[0] for n in names if n.count("/") == 1 and n.endswith(".dist-info/WHEEL"))
        tops = top_level(names)
        with tempfile.TemporaryDirectory() as unpacked:
            archive.extractall(unpacked)
            sys.path.insert(0, unpacked)
            for top in tops:
                try:
                    importlib.import_module(top)
                except SyntaxError:
                    # Newer syntax than this host python's: CPython 3.14 will judge.
                    continue
                except Exception as error:
                    print(f"`import {top}` fails without the speed-ups: {type(error).__name__}: {error}", file=sys.stderr)
                    return 4
            del sys.path[0]
        wheel_file = f"{info_dir}/WHEEL"
        record_file = f"{info_dir}/RECORD"
        lines = archive.read(wheel_file).decode("utf-8").splitlines()
        lines = [line for line in lines if not line.startswith(("Tag:", "Root-Is-Purelib:"))]
        lines += ["Root-Is-Purelib: true", "Tag: py3-none-any"]
        wheel_text = ("\n".join(lines) + "\n").encode("utf-8")
        digest = base64.urlsafe_b64encode(hashlib.sha256(wheel_text).digest()).rstrip(b"=").decode()
        out = os.path.join(out_dir, f"{dist}-{version}-py3-none-any.whl")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as pure:
            for item in archive.infolist():
                data = archive.read(item)
                if item.filename == wheel_file:
                    data = wheel_text
                elif item.filename == record_file:
                    record = []
                    for line in data.decode("utf-8").splitlines():
                        if line.startswith(wheel_file + ","):
                            line = f"{wheel_file},sha256={digest},{len(wheel_text)}"
                        record.append(line)
                    data = ("\n".join(record) + "\n").encode("utf-8")
                pure.writestr(item, data)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
