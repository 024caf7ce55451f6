"""load_theorems on the real miniF2F/ProofNet jsonl, on .lean files, and on broken input."""
from __future__ import annotations

import json

import pytest

from prover.inputs import load_theorems, normalize_statement

LEAN_FILE = '''import Mathlib
import Aesop

set_option maxHeartbeats 400000

open Nat Real

/-- The sum of two even numbers is even. -/
theorem even_add (a b : ℕ) (ha : Even a) (hb : Even b) :
    Even (a + b) := by
  sorry

theorem done_already : 1 + 1 = 2 := by norm_num

lemma two_le (n : ℕ) (h : 2 ≤ n) : 1 ≤ n := sorry

/-- Docstring of the next one. -/
theorem with_by_on_next_line (x : ℝ) : x ^ 2 ≥ 0 := by sorry
'''


def test_minif2f_fixture(shared_fixtures):
    theorems = load_theorems(shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl")
    assert len(theorems) == 488
    first = theorems[0]
    assert first.name == "amc12a_2019_p21"
    assert first.header.startswith("import Mathlib\nimport Aesop")
    assert first.informal_prefix.startswith("/-- Let $z=")
    assert all(t.statement.endswith(":=") and not t.statement.endswith("by :=") for t in theorems)
    assert all(t.statement.startswith("theorem " + t.name) for t in theorems)


def test_proofnet_fixture_keeps_repeated_names(shared_fixtures):
    theorems = load_theorems(shared_fixtures / "lean" / "minif2f" / "proofnet.jsonl")
    assert len(theorems) == 371
    assert theorems[0].statement.endswith("f a = f b :=")
    names = [t.name for t in theorems]
    assert len(set(names)) < len(names)  # ProofNet repeats exercise names across books


def test_lean_file_theorems_ending_in_sorry(tmp_path):
    path = tmp_path / "todo.lean"
    path.write_text(LEAN_FILE)
    theorems = load_theorems(path)
    assert [t.name for t in theorems] == ["even_add", "two_le", "with_by_on_next_line"]
    header = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen Nat Real\n\n"
    assert theorems[0].header == header
    proved = "theorem done_already : 1 + 1 = 2 := by norm_num\n\n"
    assert theorems[1].header == theorems[2].header == header + proved  # later theorems may use it
    assert theorems[0].statement == "theorem even_add (a b : ℕ) (ha : Even a) (hb : Even b) :\n    Even (a + b) :="
    assert theorems[0].informal_prefix == "/-- The sum of two even numbers is even. -/\n"
    assert theorems[1].statement == "lemma two_le (n : ℕ) (h : 2 ≤ n) : 1 ≤ n :="
    assert theorems[1].informal_prefix == ""
    assert theorems[2].informal_prefix == "/-- Docstring of the next one. -/\n"


def test_bad_jsonl_lines_are_named(tmp_path):
    good = {"name": "a", "header": "", "formal_statement": "theorem a : True := by sorry"}
    cases = {
        "{not json": ":2: not valid JSON",
        json.dumps({"name": "b"}): ":2: missing or non-string field(s) formal_statement",
        json.dumps({"name": "b", "formal_statement": "theorem b : True"}): ":2: b: formal_statement must end with ':='",
        "[1, 2]": ":2: expected a JSON object",
    }
    for bad, message in cases.items():
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_theorems(path)


def test_missing_unknown_and_empty_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl: no such input file"):
        load_theorems(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unknown input type '.txt'"):
        load_theorems(tmp_path / "x.txt")
    (tmp_path / "proved.lean").write_text("theorem t : True := trivial\n")
    with pytest.raises(ValueError, match="no theorem ends in `sorry`"):
        load_theorems(tmp_path / "proved.lean")


def test_normalize_statement():
    assert normalize_statement("theorem t : True := by\n") == "theorem t : True :="
    assert normalize_statement("theorem t : True := by sorry") == "theorem t : True :="
    assert normalize_statement("theorem t : True :=\n  sorry") == "theorem t : True :="
    assert normalize_statement("theorem t : True :=") == "theorem t : True :="
    assert normalize_statement("theorem nearby : True :=") == "theorem nearby : True :="
    with pytest.raises(ValueError, match="must end with ':='"):
        normalize_statement("theorem t : standby")  # a word ending in `by` is not the `by` keyword


def test_normalize_statement_is_public():
    import prover

    assert prover.normalize_statement is normalize_statement  # the one normalizer other packages call


def test_lean_file_declarations_end_before_the_next_command(tmp_path):
    path = tmp_path / "ns.lean"
    path.write_text("import Mathlib\nnamespace Foo\n\ntheorem a : 1 = 1 := by\n  sorry\n\ndef f := 3\n\n"
                    "theorem b : f = 3 := by sorry\n-- trailing comment\nend Foo\n")
    theorems = load_theorems(path)
    assert [t.name for t in theorems] == ["a", "b"]
    assert theorems[0].header == "import Mathlib\nnamespace Foo\n\n"
    assert theorems[1].header == "import Mathlib\nnamespace Foo\n\ndef f := 3\n\n"  # b uses f
    assert theorems[1].statement == "theorem b : f = 3 :="
