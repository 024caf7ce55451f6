"""POST /v1/completions from the core model worker, and the OpenAI backend talking to it over HTTP."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import ServerThread, client  # noqa: E402

from workers.backends import OpenAIBackend, SamplingParams  # noqa: E402
from workers.config import PoolConfig, ServiceConfig  # noqa: E402
from workers.demo import random_tiny_checkpoint  # noqa: E402
from workers.service import create_app  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def model_service(ray_cluster, tmp_path_factory):
    ckpt = random_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")
    cfg = ServiceConfig(db=str(tmp_path_factory.mktemp("db") / "jobs.sqlite"),
                        pool=PoolConfig(coder_workers=0, prover_workers=0,
                                        model={"backend": {"checkpoint": str(ckpt)}, "max_batch_size": 4,
                                               "batch_window_s": 1.0}))
    with ServerThread(create_app(cfg)) as srv:
        yield srv


def test_openai_shaped_completions(model_service):
    http = client(model_service.url)
    body = {"model": "tiny", "prompt": ["def add(a, b):\n", "x = "], "max_tokens": 6, "temperature": 0, "n": 2}
    r = http.post("/v1/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "text_completion" and out["model"] == "tiny"
    assert [c["index"] for c in out["choices"]] == [0, 1, 2, 3]
    texts = [c["text"] for c in out["choices"]]
    assert texts[0] == texts[1] and texts[2] == texts[3]  # greedy: the n copies agree
    assert all(c["finish_reason"] in ("length", "stop", "eos") for c in out["choices"])
    assert 0 < out["usage"]["completion_tokens"] <= 4 * 6
    r = http.post("/v1/completions", json={"prompt": "x", "max_tokens": 0})
    assert r.status_code == 422 and "max_tokens" in r.json()["detail"]
    r = http.post("/v1/proofs", json={"theorems": [{"name": "t", "statement": "theorem t : True :="}]})
    assert r.status_code == 404 and "--prover-workers" in r.json()["detail"]  # this service has none


def test_openai_backend_against_the_service(model_service):
    backend = OpenAIBackend(model_service.url + "/v1", model="tiny")
    outs = backend.complete(["a", "b", "c"], SamplingParams(max_tokens=4, temperature=0.0, seed=1))
    assert len(outs) == 3 and all(isinstance(o["text"], str) for o in outs)
    direct = client(model_service.url).post(
        "/v1/completions", json={"prompt": ["a", "b", "c"], "max_tokens": 4, "temperature": 0}).json()
    assert [o["text"] for o in outs] == [c["text"] for c in direct["choices"]]


def test_a_missing_checkpoint_is_a_clear_503(ray_cluster, tmp_path):
    cfg = ServiceConfig(db=str(tmp_path / "j.sqlite"),
                        pool=PoolConfig(coder_workers=0, prover_workers=0,
                                        model={"backend": {"checkpoint": str(tmp_path / "nothing")}}))
    with ServerThread(create_app(cfg)) as srv:
        r = client(srv.url).post("/v1/completions", json={"prompt": "x"})
    assert r.status_code == 503 and "nothing" in r.json()["detail"] and "config.json" in r.json()["detail"]


def test_a_pool_can_generate_through_an_openai_endpoint(ray_cluster, model_service, tmp_path):
    # The second service's model worker is an OpenAI client of the first: vLLM/SGLang would sit there.
    cfg = ServiceConfig(db=str(tmp_path / "j.sqlite"),
                        pool=PoolConfig(coder_workers=0, prover_workers=0,
                                        model={"backend": {"kind": "openai", "url": model_service.url + "/v1",
                                                           "model": "upstream"}}))
    body = {"prompt": ["def f():", "x ="], "max_tokens": 5, "temperature": 0}
    with ServerThread(create_app(cfg)) as front:
        via = client(front.url).post("/v1/completions", json=body)
    direct = client(model_service.url).post("/v1/completions", json=body)
    assert via.status_code == 200, via.text
    assert [c["text"] for c in via.json()["choices"]] == [c["text"] for c in direct.json()["choices"]]


def test_concurrent_http_callers_share_model_batches(model_service):
    import threading

    pool = model_service.app.state.proofcode["pool"]
    before = pool.model_info()["stats"]
    answers = []
    body = {"prompt": "def g(x):", "max_tokens": 4, "temperature": 0}
    threads = [threading.Thread(target=lambda: answers.append(client(model_service.url).post("/v1/completions", json=body)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    after = pool.model_info()["stats"]
    assert [a.status_code for a in answers] == [200] * 6
    assert len({a.json()["choices"][0]["text"] for a in answers}) == 1  # greedy: every caller got its own same answer
    requests, batches = after["requests"] - before["requests"], after["batches"] - before["batches"]
    assert requests == 6 and batches < requests  # some callers shared a forward pass
