"""Finds the modules a Python app may import, for kiln to carry into its component.

Run by the host python: `python imports.py SPEC.json OUT.json`. SPEC has `script` (a file
run as `__main__`, or null), `modules` (module names to start from), `path` (directories
searched before the standard library) and `excludes` (packages never followed).

componentize-py only carries modules imported while it pre-initialises the component,
so every module the app could import later (inside a function, behind a codec) must be
found now. `modulefinder` follows every import statement in the bytecode, lazy ones
included. Source the host python cannot compile (newer syntax than the host's) is
scanned for import statements instead. OUT gets `modules` (found) and `missing`
(imported but not found on the host: they may exist in the component's newer standard
library, so they are tried too).
"""

import json
import modulefinder
import os
import re
import sys

IMPORT = re.compile(r"^\s*import\s+([\w.,\s]+?)\s*(?:#.*)?$", re.M)
FROM_IMPORT = re.compile(r"^\s*from\s+(\.*)([\w.]*)\s+import\s+\(?([\w.,\s]+?)\)?\s*(?:#.*)?$", re.M)


class Finder(modulefinder.ModuleFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unparsed = []

    def load_module(self, fqname, fp, pathname, file_info):
        try:
            return super().load_module(fqname, fp, pathname, file_info)
        except (SyntaxError, ValueError, UnicodeDecodeError):
            self.unparsed.append(fqname)
            module = self.add_module(fqname)
            module.__file__ = pathname
            try:
                with open(pathname, encoding="utf-8", errors="replace") as handle:
                    source = handle.read()
            except OSError:
                return module
            self.scan_text(source, module)
            return module

    def scan_text(self, source, module):
        for match in IMPORT.finditer(source):
            for part in match.group(1).split(","):
                name = part.split(" as ")[0].strip()
                if name:
                    self._safe_import_hook(name, module, None, 0)
        for match in FROM_IMPORT.finditer(source):
            level = len(match.group(1))
            names = [n.split(" as ")[0].strip() for n in match.group(3).split(",")]
            self._safe_import_hook(match.group(2), module, [n for n in names if n], level)


def excluded(name, excludes):
    return any(name == e or name.startswith(e + ".") for e in excludes)


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    excludes = spec["excludes"]
    stdlib = [p for p in sys.path[1:] if p and "site-packages" not in p and "dist-packages" not in p]
    finder = Finder(path=spec["path"] + stdlib, excludes=excludes)
    if spec.get("script"):
        finder.run_script(spec["script"])
    for name in spec["modules"]:
        try:
            finder.import_hook(name)
        except ImportError:
            pass
    found = set(finder.modules)
    # A missing `package.name` under a module that was found is an attribute imported
    # with `from package import name`, not a module.
    missing = {
        n
        for n in finder.badmodules
        if n.replace(".", "").replace("_", "").isalnum() and n.rpartition(".")[0] not in found
    }
    keep = lambda n: not excluded(n, excludes) and n != "__main__" and not n.endswith(".__main__")
    out = {
        "modules": sorted(n for n in found if keep(n)),
        "missing": sorted(n for n in missing - found if keep(n)),
        "unparsed": sorted(finder.unparsed),
    }
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main()
