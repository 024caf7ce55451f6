"""Generators: the built-in one on the toy env, the OpenAI one against a real local HTTP server,
and the model one on a tiny random core_model checkpoint."""
from __future__ import annotations

import json
import math
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_env import ToyEnv  # noqa: E402

from prover.generators import (  # noqa: E402
    BuiltinGenerator,
    GeneratorError,
    ModelGenerator,
    OpenAIConfig,
    OpenAIGenerator,
    structural_tactics,
    tactic_prompt,
)
from prover.protocol import TacticState, Theorem  # noqa: E402
from prover.proof_search import SearchConfig, search  # noqa: E402

MATHLIB = "import Mathlib\nimport Aesop\n\nopen Real\n"


def toy(goal: str, header: str = "") -> Theorem:
    return Theorem("t", header, f"theorem t : {goal} :=")


def test_builtin_offers_mathlib_tactics_only_when_imported():
    gen = BuiltinGenerator()
    state = TacticState(0, "x : ℝ\n⊢ x ^ 2 ≥ 0")
    plain = [p.text for p in gen.propose_tactics(toy("x"), state, 30)]
    mathlib = [p.text for p in gen.propose_tactics(toy("x", MATHLIB), state, 30)]
    assert "norm_num" not in plain and "linarith" not in plain and "aesop" not in plain
    assert {"rfl", "simp", "omega", "decide"} <= set(plain)
    assert {"norm_num", "linarith", "nlinarith", "positivity", "aesop"} <= set(mathlib)
    assert "aesop" in [p.text for p in gen.propose_tactics(toy("x", "import Aesop\n"), state, 30)]
    logprobs = [p.logprob for p in gen.propose_tactics(toy("x"), state, 5)]
    assert len(logprobs) == 5 and logprobs == sorted(logprobs, reverse=True) and logprobs[0] < 0


def test_builtin_structural_steps_come_from_the_goal():
    pp = "x y : ℕ\nh₀ : 0 < y ∧ y < x\nh₁ : x = 1 ∨ x = 2\n⊢ ∀ n m : ℕ, n + m = m + n ∧ x = 26"
    assert structural_tactics(pp) == [
        "intro n m", "induction x", "obtain ⟨h₀_left, h₀_right⟩ := h₀", "rcases h₁ with h₁ | h₁"]
    assert structural_tactics("n : ℕ\n⊢ n + 0 = n") == ["induction n"]
    assert structural_tactics("m n : ℕ\nk : ℤ\n⊢ n + k = k + n") == ["induction n"]  # not m (absent), not k (ℤ)
    assert structural_tactics("p q : Prop\n⊢ p ∧ q → q ∧ p") == ["intro h"]
    assert structural_tactics("⊢ ¬False") == ["intro h"]


def test_builtin_generator_proves_with_search_on_toy_env():
    gen = BuiltinGenerator()
    for algorithm in ("best_first", "mcts"):
        result = search(toy("(2 + 2 = 4 ∧ True) ∧ 3 * 3 = 9"), ToyEnv(), gen, SearchConfig(algorithm=algorithm))
        assert result.status == "proved", (algorithm, result)
        assert result.tactics[:2] == ["constructor", "constructor"]
    sampled = search(toy("2 + 3 = 5"), ToyEnv(), gen, SearchConfig(algorithm="sample", max_samples=8))
    assert sampled.status == "proved" and sampled.proof == "by\n  simp"  # `rfl` failed first: sides differ


def test_builtin_whole_proofs_move_on_when_asked_again():
    gen = BuiltinGenerator()
    first = [p.text for p in gen.propose_proofs(toy("True"), "by\n", 3)]
    second = [p.text for p in gen.propose_proofs(toy("True"), "by\n", 3)]
    assert first == ["  rfl\n", "  simp\n", "  omega\n"] and not set(first) & set(second)


# ---- OpenAI-compatible server on 127.0.0.1 -------------------------------------------------

class _Server:
    """A tiny completions server: answers from `script` (a list of (status, body) per request)."""

    def __init__(self, answer):
        self.requests: list[dict] = []
        self.answer = answer
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                status, payload = owner.answer(body, len(owner.requests))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _choices(*texts_and_logprobs):
    return {"choices": [{"index": i, "text": t, "logprobs": {"token_logprobs": lps}}
                        for i, (t, lps) in enumerate(texts_and_logprobs)]}


@pytest.fixture
def server():
    servers = []

    def start(answer):
        servers.append(_Server(answer))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_openai_generator_request_and_parsing(server):
    srv = server(lambda body, k: (200, _choices(("simp\n", [-0.5, -0.25]), ("rfl", [-0.1]), ("simp", [-1.0, None]),
                                                ("", [-0.2]))))
    gen = OpenAIGenerator(OpenAIConfig(base_url=srv.url + "/v1/", model="prover-7b", api_key="k",
                                       temperature=0.7, max_tactic_tokens=32))
    state = TacticState(0, "n : ℕ\n⊢ n + 0 = n")
    proposals = gen.propose_tactics(toy("x"), state, 4)
    assert [(p.text, p.logprob) for p in proposals] == [("rfl", -0.1), ("simp", -0.75)]
    request = srv.requests[0]
    assert request["path"] == "/v1/completions" and request["auth"] == "Bearer k"
    assert request["model"] == "prover-7b" and request["n"] == 4 and request["max_tokens"] == 32
    assert request["temperature"] == 0.7 and request["logprobs"] == 1 and request["stop"] == ["\n"]
    assert request["prompt"] == tactic_prompt(toy("x"), state) and "  ⊢ n + 0 = n" in request["prompt"]
    proofs = gen.propose_proofs(Theorem("t", "import Mathlib\n", "theorem t : True :=", "/-- doc -/\n"), "by\n", 2)
    assert srv.requests[1]["prompt"].endswith("import Mathlib\n/-- doc -/\ntheorem t : True := by\n")
    assert srv.requests[1]["stop"] == ["```"] and len(proofs) == 3
    gen.close()


def test_openai_generator_retries_then_reports(server):
    flaky = server(lambda body, k: (503, {"error": "loading"}) if k < 3 else (200, _choices(("trivial", [-0.3]))))
    gen = OpenAIGenerator(OpenAIConfig(base_url=flaky.url, retries=2, backoff=0.0))
    assert [p.text for p in gen.propose_tactics(toy("x"), TacticState(0, "⊢ True"), 1)] == ["trivial"]
    assert len(flaky.requests) == 3

    bad = server(lambda body, k: (400, {"error": "n must be <= 2"}))
    gen = OpenAIGenerator(OpenAIConfig(base_url=bad.url, retries=5, backoff=0.0))
    with pytest.raises(GeneratorError, match="HTTP 400.*n must be <= 2"):
        gen.propose_tactics(toy("x"), TacticState(0, "⊢ True"), 8)
    assert len(bad.requests) == 1  # a client error is not retried

    garbled = server(lambda body, k: (200, {"result": "?"}))
    with pytest.raises(GeneratorError, match="without a `choices` list"):
        OpenAIGenerator(OpenAIConfig(base_url=garbled.url)).propose_tactics(toy("x"), TacticState(0, "⊢ True"), 1)

    down = _Server(lambda body, k: (200, {}))
    down.close()  # nothing listens on this port any more
    gen = OpenAIGenerator(OpenAIConfig(base_url=down.url, retries=1, backoff=0.0, timeout=5))
    with pytest.raises(GeneratorError, match="no answer after 2 attempt.*ConnectError"):
        gen.propose_tactics(toy("x"), TacticState(0, "⊢ True"), 1)


def test_openai_generator_drives_search(server):
    srv = server(lambda body, k: (200, _choices(("constructor", [-0.2]), ("trivial", [-0.4]), ("decide", [-0.9]))))
    gen = OpenAIGenerator(OpenAIConfig(base_url=srv.url))
    result = search(toy("True ∧ 2 + 2 = 4"), ToyEnv(), gen, SearchConfig(num_candidates=3))
    assert result.status == "proved" and result.tactics == ["constructor", "trivial", "decide"]
    assert result.expansions == len(srv.requests) == 3


# ---- the core model -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from core_model import ModelConfig, Transformer, train_bpe

    torch.set_num_threads(1)
    torch.manual_seed(0)
    texts = ["theorem t : True := by\n  trivial\n", "intro n\n  induction n\n  simp\n  omega\n  rfl\n"] * 20
    tokenizer = train_bpe(texts, vocab_size=300)
    model = Transformer(ModelConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                    num_hidden_layers=1, num_attention_heads=2))
    path = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(path)
    tokenizer.save(path)
    return path


def test_model_generator_on_tiny_random_checkpoint(tiny_checkpoint):
    from prover.generators import GeneratorConfig

    config = GeneratorConfig(seed=7, max_tactic_tokens=8, max_proof_tokens=12)
    gen = ModelGenerator.from_pretrained(tiny_checkpoint, config)
    state = TacticState(0, "⊢ True")
    tactics = gen.propose_tactics(toy("True"), state, 4)
    assert 1 <= len(tactics) <= 4 and len({p.text for p in tactics}) == len(tactics)
    assert all("\n" not in p.text and p.text == p.text.strip() for p in tactics)
    assert all(math.isfinite(p.logprob) and p.logprob < 0 for p in tactics)
    again = ModelGenerator.from_pretrained(tiny_checkpoint, config).propose_tactics(toy("True"), state, 4)
    assert [p.text for p in again] == [p.text for p in tactics]  # same seed, same samples
    proofs = gen.propose_proofs(toy("True"), "by\n", 2)
    assert len(proofs) <= 2 and all(p.text.endswith("\n") and "```" not in p.text for p in proofs)
    result = search(toy("True"), ToyEnv(), gen, SearchConfig(max_expansions=2, num_candidates=2))
    assert result.status in ("proved", "failed") and result.expansions >= 1 and result.error is None
