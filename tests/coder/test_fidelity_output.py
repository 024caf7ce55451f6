"""Output the tests look at (redirect_stdout, captured warnings) and output they ignore."""
from __future__ import annotations

from fidelity import fidelity_suite

CASES = [
    ("redirect_stdout", "def greet(name):\n    \"\"\"Print 'Hello, NAME!'.\"\"\"\n",
     "    print(f'Hello, {name}!')\n", "    print(f'Hello {name}!')\n",
     "import io, contextlib\ndef check(candidate):\n    buf = io.StringIO()\n    with contextlib.redirect_stdout(buf):\n        candidate('Ann')\n"
     "    assert buf.getvalue() == 'Hello, Ann!\\n'\n"),
    ("stdout_and_return", "def loud_sum(xs):\n    \"\"\"Print each element, return the sum.\"\"\"\n",
     "    for x in xs:\n        print(x)\n    return sum(xs)\n", "    print(*xs)\n    return sum(xs)\n",
     "import io, sys\ndef check(candidate):\n    old, sys.stdout = sys.stdout, io.StringIO()\n    try:\n        total = candidate([1, 2])\n"
     "        out = sys.stdout.getvalue()\n    finally:\n        sys.stdout = old\n    assert total == 3 and out == '1\\n2\\n'\n"),
    ("warning_captured", "import warnings\n\ndef old_api(x):\n    \"\"\"x * 2, with a DeprecationWarning.\"\"\"\n",
     "    warnings.warn('old_api is deprecated', DeprecationWarning)\n    return x * 2\n", "    return x * 2\n",
     "import warnings\ndef check(candidate):\n    with warnings.catch_warnings(record=True) as w:\n        warnings.simplefilter('always')\n"
     "        assert candidate(2) == 4\n    assert len(w) == 1 and issubclass(w[0].category, DeprecationWarning)\n"
     "    assert 'deprecated' in str(w[0].message)\n"),
    ("warning_category_checked", "import warnings\n\ndef risky(x):\n    \"\"\"x, warning with RuntimeWarning when negative.\"\"\"\n",
     "    if x < 0:\n        warnings.warn('negative', RuntimeWarning)\n    return x\n",
     "    if x < 0:\n        warnings.warn('negative')\n    return x\n",
     "import warnings\ndef check(candidate):\n    with warnings.catch_warnings(record=True) as w:\n        warnings.simplefilter('always')\n"
     "        candidate(-1)\n        candidate(1)\n    assert [x.category for x in w] == [RuntimeWarning]\n"),
    ("lots_of_ignored_output", "def noisy(n):\n    \"\"\"Return n * 2 (prints debugging output).\"\"\"\n",
     "    for i in range(60000):\n        print('debug line', i, 'x' * 40)\n    return n * 2\n",
     "    for i in range(60000):\n        print('debug line', i, 'x' * 40)\n    return n * 3\n",
     "def check(candidate):\n    assert candidate(2) == 4\n"),
    ("stderr_ignored", "import sys\n\ndef quiet(x):\n    \"\"\"x + 1 (logs to stderr).\"\"\"\n",
     "    print('log', x, file=sys.stderr)\n    return x + 1\n", "    print('log', x, file=sys.stderr)\n    return x\n",
     "def check(candidate):\n    assert candidate(1) == 2\n"),
]


results, test_verdict_matches_plain_python = fidelity_suite(CASES)
