"""Each package's public names stay what they say, even after every submodule has been imported.

(A submodule named like an export - e.g. a module `generate` beside a function `generate` - would
replace the function on the package once imported.)
"""
import importlib
import pkgutil
import types

import pytest

PACKAGES = ["core_model", "coder", "prover", "workers"]
SKIP = (".assets", ".server", "_worker")  # data, and process entry points that expect their own argv


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_are_not_shadowed_by_submodules(name):
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if not any(part in info.name for part in SKIP):
            importlib.import_module(info.name)
    shadowed = [export for export in package._EXPORTS if isinstance(getattr(package, export), types.ModuleType)]
    assert shadowed == []
