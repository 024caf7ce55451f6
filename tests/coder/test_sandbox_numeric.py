"""Third-party numeric libraries inside the sandbox (BigCodeBench-style solutions): numpy and pandas
import from site-packages under Landlock, compute, and run single-threaded."""
from __future__ import annotations

import pytest

from coder.sandbox import Limits, run_program

pytest.importorskip("pandas")

PROGRAM = """
import ctypes, glob, os
import numpy as np
import pandas as pd

df = pd.DataFrame({"city": ["a", "b", "a", "c", "b"], "sales": np.array([1.5, 2.0, 3.5, 4.0, 6.0])})
print(df.groupby("city")["sales"].sum().to_dict())
print(np.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([9.0, 8.0])).round(6).tolist())
print(pd.Series(pd.date_range("2024-01-01", periods=3, freq="D")).dt.day_name().tolist())
blas = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
threads = [getattr(ctypes.CDLL(p), "scipy_openblas_get_num_threads64_", lambda: 1)() for p in blas]
print(os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS"), set(threads) <= {1})
"""

EXPECTED = """{'a': 5.0, 'b': 8.0, 'c': 4.0}
[2.0, 3.0]
['Monday', 'Tuesday', 'Wednesday']
1 1 True"""


def test_numpy_and_pandas_compute_in_the_sandbox():
    v = run_program(PROGRAM, "", Limits(timeout_s=60))
    assert v.status == "passed", (v.detail, v.stderr[-2000:])
    assert v.stdout.strip() == EXPECTED, v.stdout
    assert {"landlock", "seccomp"} <= set(v.protections)


def test_numpy_still_cannot_write_outside():
    program = "import numpy as np\nnp.save('/tmp/proofcode-numeric-escape.npy', np.arange(3))\n"
    v = run_program(program, "", Limits(timeout_s=60))
    assert v.status == "runtime_error" and "PermissionError" in v.detail, v.detail
