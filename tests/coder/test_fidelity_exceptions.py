"""Exceptions keep their class, hierarchy, args and attributes (stdlib, the prompt's, the candidate's own)."""
from __future__ import annotations

from fidelity import fidelity_suite

CASES = [
    ("json_error_is_value_error", "import json\n\ndef parse(s):\n    \"\"\"json.loads, errors propagate.\"\"\"\n",
     "    return json.loads(s)\n", "    try:\n        return json.loads(s)\n    except ValueError:\n        return None\n",
     "def check(candidate):\n    assert candidate('[1]') == [1]\n    try:\n        candidate('{')\n    except ValueError as e:\n"
     "        assert e.pos == 1 and 'Expecting' in str(e)\n    else:\n        assert False\n"),
    ("json_error_exact_class", "import json\n\ndef parse(s):\n    \"\"\"json.loads.\"\"\"\n",
     "    return json.loads(s)\n", "    if s == '{':\n        raise ValueError('bad')\n    return json.loads(s)\n",
     "import json\ndef check(candidate):\n    try:\n        candidate('{')\n    except json.JSONDecodeError:\n        pass\n    else:\n        assert False\n"),
    ("prompt_exception_class", "class InvalidInput(ValueError):\n    pass\n\ndef positive(x):\n    \"\"\"x, or InvalidInput when x <= 0.\"\"\"\n",
     "    if x <= 0:\n        raise InvalidInput(x)\n    return x\n", "    if x < 0:\n        raise InvalidInput(x)\n    return x\n",
     "def check(candidate):\n    for bad in (0, -1):\n        try:\n            candidate(bad)\n        except InvalidInput as e:\n            assert e.args == (bad,)\n"
     "        else:\n            assert False\n    assert candidate(3) == 3\n"),
    ("candidate_exception_subclass", "def lookup(d, k):\n    \"\"\"d[k]; a missing key raises a KeyError subclass.\"\"\"\n",
     "    class Missing(KeyError):\n        pass\n    if k not in d:\n        raise Missing(k)\n    return d[k]\n",
     "    class Missing(Exception):\n        pass\n    if k not in d:\n        raise Missing(k)\n    return d[k]\n",
     "def check(candidate):\n    try:\n        candidate({}, 'a')\n    except LookupError as e:\n        assert e.args[0] == 'a' and type(e).__name__ == 'Missing'\n    else:\n        assert False\n"),
    ("exception_args_checked", "def div(a, b):\n    \"\"\"a / b; ZeroDivisionError('b is zero') when b == 0.\"\"\"\n",
     "    if b == 0:\n        raise ZeroDivisionError('b is zero')\n    return a / b\n", "    return a / b\n",
     "def check(candidate):\n    try:\n        candidate(1, 0)\n    except ZeroDivisionError as e:\n        assert e.args == ('b is zero',)\n    else:\n        assert False\n"),
    ("unicode_decode_error", "def decode(b):\n    \"\"\"b decoded as strict UTF-8.\"\"\"\n",
     "    return b.decode('utf-8')\n", "    return b.decode('utf-8', 'replace')\n",
     "def check(candidate):\n    assert candidate(b'ok') == 'ok'\n    try:\n        candidate(b'\\xff')\n    except UnicodeDecodeError as e:\n"
     "        assert e.start == 0 and e.reason == 'invalid start byte'\n    else:\n        assert False\n"),
    ("exception_attributes", "class ParseError(Exception):\n    def __init__(self, msg, line):\n        super().__init__(msg)\n        self.line = line\n\ndef parse_line(s, n):\n    \"\"\"int(s); ParseError(msg, n) otherwise.\"\"\"\n",
     "    try:\n        return int(s)\n    except ValueError:\n        raise ParseError('not a number', n)\n",
     "    try:\n        return int(s)\n    except ValueError:\n        raise ParseError('not a number', n + 1)\n",
     "def check(candidate):\n    try:\n        candidate('x', 7)\n    except ParseError as e:\n        assert e.line == 7 and str(e) == 'not a number'\n    else:\n        assert False\n"),
    ("os_error_subclass", "def open_missing(path):\n    \"\"\"Open path for reading (errors propagate).\"\"\"\n",
     "    return open(path).read()\n", "    try:\n        return open(path).read()\n    except OSError:\n        return ''\n",
     "def check(candidate):\n    try:\n        candidate('/nonexistent/x')\n    except FileNotFoundError as e:\n        assert e.errno == 2\n    else:\n        assert False\n"),
    ("stop_iteration_from_next", "def first(it):\n    \"\"\"next(it); StopIteration when empty.\"\"\"\n",
     "    return next(it)\n", "    return next(it, None)\n",
     "def check(candidate):\n    assert candidate(iter([5])) == 5\n    try:\n        candidate(iter([]))\n    except StopIteration:\n        pass\n    else:\n        assert False\n"),
    ("wrong_exception_type", "def get(xs, i):\n    \"\"\"xs[i]; IndexError when out of range.\"\"\"\n",
     "    return xs[i]\n", "    if i >= len(xs):\n        raise KeyError(i)\n    return xs[i]\n",
     "def check(candidate):\n    try:\n        candidate([1], 3)\n    except IndexError:\n        pass\n    else:\n        assert False\n"),
]


results, test_verdict_matches_plain_python = fidelity_suite(CASES)
