"""Find `lake`, the user's Lean project and the REPL binary; say exactly what is missing if not."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .protocol import EnvError

INSTALL_ELAN = ("install the Lean toolchain manager elan: "
                "`curl https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -sSf | sh` "
                "(then open a new shell or `source ~/.elan/env`)")
INSTALL_REPL = ("add the REPL to the project: in lakefile.lean "
                "`require REPL from git \"https://github.com/leanprover-community/repl\"` "
                "(lakefile.toml: [[require]] name = \"REPL\", git = \"https://github.com/leanprover-community/repl\"), "
                "then `lake update REPL && lake build repl`; or clone https://github.com/leanprover-community/repl, "
                "`lake build` it and pass its `.lake/build/bin/repl` as repl_command")
LAKEFILES = ("lakefile.lean", "lakefile.toml")


def find_lake() -> str | None:
    """`lake` from PATH or elan's default install location, else None."""
    found = shutil.which("lake")
    if found:
        return found
    elan = Path(os.environ.get("ELAN_HOME", Path.home() / ".elan")) / "bin" / "lake"
    return str(elan) if elan.is_file() and os.access(elan, os.X_OK) else None


def require_lake() -> str:
    """The `lake` executable, or an EnvError telling how to install it."""
    lake = find_lake()
    if lake is None:
        raise EnvError(f"no Lean toolchain: `lake` is not on PATH or in ~/.elan/bin; {INSTALL_ELAN}")
    return lake


def check_project(project: str | Path) -> Path:
    """The project directory, resolved; EnvError if it is not a Lake project."""
    path = Path(project).expanduser().resolve()
    if not path.is_dir():
        raise EnvError(f"Lean project {str(project)!r} does not exist; pass --project DIR pointing at a "
                       f"Lake project (a folder with {' or '.join(LAKEFILES)})")
    if not any((path / name).is_file() for name in LAKEFILES):
        raise EnvError(f"{str(path)!r} is not a Lake project: no {' or '.join(LAKEFILES)} there; "
                       f"create one with `lake new NAME math` or point --project at an existing one")
    return path


def _manifest_has_repl(project: Path) -> bool:
    try:
        manifest = json.loads((project / "lake-manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return any(str(p.get("name", "")).lower() == "repl" for p in manifest.get("packages", []))


def _built_repl(project: Path) -> Path | None:
    candidates = [project / ".lake" / "build" / "bin" / "repl"]
    packages = project / ".lake" / "packages"
    if packages.is_dir():
        candidates += [p / ".lake" / "build" / "bin" / "repl" for p in packages.iterdir() if p.name.lower() == "repl"]
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def repl_command(project: str | Path) -> list[str]:
    """The default way to run the REPL in `project`: `lake env <built repl>` or `lake exe repl`."""
    path = check_project(project)
    lake = require_lake()
    built = _built_repl(path)
    if built is not None:
        # `lake env` puts the project's (e.g. Mathlib's) .olean paths on LEAN_PATH for the REPL.
        return [lake, "env", str(built)]
    if _manifest_has_repl(path):
        return [lake, "exe", "repl"]  # builds the REPL on first use, then runs it
    raise EnvError(f"no REPL in Lean project {str(path)!r} (no .lake/build/bin/repl, and lake-manifest.json "
                   f"does not require it); {INSTALL_REPL}")
