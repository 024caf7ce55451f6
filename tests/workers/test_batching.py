"""The model worker's batcher: concurrent callers share backend calls and each gets its own answers."""
import threading

import pytest

from workers.backends import SamplingParams
from workers.batching import Batcher


class EchoBackend:
    """Answers each prompt with its reverse; records the batch sizes it was called with."""

    def __init__(self):
        self.calls = []

    def complete(self, prompts, params):
        self.calls.append(len(prompts))
        return [{"text": p[::-1] + "|" + str(params.max_tokens), "finish_reason": "stop"} for p in prompts]


def test_concurrent_requests_are_batched_and_answered_in_order():
    backend = EchoBackend()
    batcher = Batcher(backend, max_batch_size=8, window_s=0.2)
    params = SamplingParams(max_tokens=5)
    answers = {}

    def call(i):
        answers[i] = batcher.submit([f"p{i}a", f"p{i}b"], params, timeout=30)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for i in range(4):
        assert [a["text"] for a in answers[i]] == [f"a{i}p|5", f"b{i}p|5"]
    assert sum(backend.calls) == 8
    assert len(backend.calls) < 4  # at least two callers shared a backend call
    assert all(n <= 8 for n in backend.calls)


def test_different_sampling_params_never_share_a_batch():
    backend = EchoBackend()
    batcher = Batcher(backend, max_batch_size=16, window_s=0.2)
    out = {}
    threads = [threading.Thread(target=lambda k=k: out.setdefault(k, batcher.submit(["x"], SamplingParams(max_tokens=k))))
               for k in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert out[3][0]["text"] == "x|3" and out[4][0]["text"] == "x|4"


def test_backend_errors_reach_every_caller_of_that_batch():
    class Broken:
        def complete(self, prompts, params):
            raise RuntimeError("model exploded")

    batcher = Batcher(Broken(), max_batch_size=4, window_s=0.0)
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher.submit(["a"], SamplingParams(), timeout=10)
    batcher.close()
