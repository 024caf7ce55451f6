"""pandas answers rebuilt natively by the trusted replay (dtype, index, column labels, values), so a
DataFrame or Series gets a replay verdict in both modes; an object column only of plain data, so a
candidate's always-equal object hidden in one fails. Verdicts must equal a plain python run's."""
from __future__ import annotations

import pytest
from fidelity import LIMITS, fidelity_suite

from coder.sandbox import run_tests

P = "import pandas as pd\nimport numpy as np\n\ndef frame(n):\n    \"\"\"A DataFrame.\"\"\"\n"
MIXED = ("    return pd.DataFrame({'s': ['a', None, 'c'][:n], 'o': [1, 'b', (2, 3)][:n], 'f': [1.5, np.nan, 2.0][:n],"
         " 'd': pd.to_datetime(['2020-01-01', '2021-02-03', None][:n])}, index=['p', 'q', 'r'][:n])\n")
CASES = [
    ("frame_equals", P, "    return pd.DataFrame({'x': range(n), 'y': [i * i for i in range(n)]})\n",
     "    return pd.DataFrame({'x': range(n), 'y': [i * 2 for i in range(n)]})\n",
     "import pandas as pd\ndef check(candidate):\n    got = candidate(4)\n    assert isinstance(got, pd.DataFrame)\n"
     "    assert got.equals(pd.DataFrame({'x': range(4), 'y': [0, 1, 4, 9]}))\n"
     "    pd.testing.assert_frame_equal(candidate(2), pd.DataFrame({'x': range(2), 'y': [0, 1]}))\n"),
    ("frame_mixed_dtypes", P, MIXED, MIXED.replace("2021-02-03", "2021-02-04"),
     "import pandas as pd\nimport numpy as np\ndef check(candidate):\n"
     "    exp = pd.DataFrame({'s': ['a', None, 'c'], 'o': [1, 'b', (2, 3)], 'f': [1.5, np.nan, 2.0],"
     " 'd': pd.to_datetime(['2020-01-01', '2021-02-03', None])}, index=['p', 'q', 'r'])\n"
     "    pd.testing.assert_frame_equal(candidate(3), exp)\n    assert candidate(2).index.tolist() == ['p', 'q']\n"),
    ("series_named_float32", P, "    return pd.Series([1, 2, 3][:n], name='v', index=pd.Index(['a', 'b', 'c'][:n], name='k')).astype('float32')\n",
     "    return pd.Series([1, 2, 3][:n], name='v', index=pd.Index(['a', 'b', 'c'][:n], name='k')).astype('float64')\n",
     "import pandas as pd\ndef check(candidate):\n    pd.testing.assert_series_equal(candidate(3), pd.Series([1., 2., 3.], name='v',"
     " index=pd.Index(['a', 'b', 'c'], name='k'), dtype='float32'))\n"),
]

results, test_verdict_matches_plain_python = fidelity_suite(CASES)


@pytest.mark.parametrize("mode", ["strict", "compatible"])
def test_always_equal_objects_in_an_object_column_fail(mode):
    program = P + ("    class AE:\n        def __eq__(self, o):\n            return True\n        __hash__ = object.__hash__\n"
                   "    return pd.DataFrame({'x': [AE() for _ in range(n)]})\n")
    tests = ("import pandas as pd\ndef check(candidate):\n"
             "    pd.testing.assert_frame_equal(candidate(2), pd.DataFrame({'x': [5, 6]}, dtype=object))\n"
             "    assert candidate(2).equals(pd.DataFrame({'x': [5, 6]}, dtype=object))\n")
    verdict = run_tests(program, tests, LIMITS, entry_point="frame", verdicts=mode)
    assert verdict.status == "failed" and "not plain data" in verdict.detail, verdict
