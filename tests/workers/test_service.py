"""The job service over real HTTP on 127.0.0.1 with a real local Ray pool and the real sandbox."""
import json
import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import ServerThread, canonical_samples, client, wait_for  # noqa: E402

from workers.config import PoolConfig, ServiceConfig  # noqa: E402
from workers.jobs import JobStore  # noqa: E402
from workers.service import create_app  # noqa: E402

pytestmark = pytest.mark.ray
TOKEN = "s3cret"


def config(tmp_path, **pool) -> ServiceConfig:
    return ServiceConfig(db=str(tmp_path / "jobs.sqlite"), token=TOKEN, max_body_bytes=64 * 1024,
                         pool=PoolConfig(coder_workers=pool.pop("coder_workers", 2), prover_workers=1,
                                         model={"enabled": False}, **pool))


@pytest.fixture(scope="module")
def service(ray_cluster, tmp_path_factory):
    with ServerThread(create_app(config(tmp_path_factory.mktemp("svc")))) as srv:
        yield srv


def test_humaneval_canonical_over_http_survives_a_sigkilled_worker(service):
    http = client(service.url, TOKEN)
    samples = canonical_samples()
    job = http.post("/v1/gradings", json={"samples": samples}).json()
    assert job["total"] == 164 and job["status"] in ("queued", "running")
    pool = service.app.state.proofcode["pool"]
    victim = pool.worker_pids("grading")[0]
    wait_for(lambda: http.get(f"/v1/gradings/{job['id']}").json()["done"] >= 10)
    os.kill(victim, signal.SIGKILL)  # mid-job: its in-flight items must be re-run elsewhere/after restart
    done = wait_for(lambda: (j := http.get(f"/v1/gradings/{job['id']}").json())["status"] != "running" and j)
    assert done["status"] == "completed", done
    assert victim not in pool.worker_pids("grading")  # Ray restarted the worker
    rows = [json.loads(line) for line in http.get(f"/v1/gradings/{job['id']}/results").text.splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(164))  # every item exactly once
    assert [r["task_id"] for r in rows] == [s["task_id"] for s in samples]
    failed = [(r["task_id"], r["status"], r.get("detail")) for r in rows if not r["passed"]]
    assert failed == []
    assert done["counts"] == {"passed": 164}


def test_bad_requests_get_clear_status_codes(service):
    anon, http = client(service.url), client(service.url, TOKEN)
    assert anon.get("/healthz").status_code == 200
    r = anon.post("/v1/gradings", json={"samples": canonical_samples(1)})
    assert r.status_code == 401 and "missing bearer token" in r.json()["detail"]
    r = client(service.url, "wrong").get("/v1/gradings/abc")
    assert r.status_code == 401 and "wrong bearer token" in r.json()["detail"]
    r = http.post("/v1/gradings", json={"samples": [{"completion": "pass"}]})
    assert r.status_code == 422 and "samples.0.task_id: Field required" in r.json()["detail"]
    r = http.post("/v1/gradings", json={"samples": [{"task_id": "HumanEval/0"}]})
    assert r.status_code == 422 and "samples.0" in r.json()["detail"] and "completion or solution" in r.json()["detail"]
    r = http.post("/v1/gradings", json={"samples": canonical_samples(1), "limits": {"timeout": 3}})
    assert r.status_code == 422 and "limits" in r.json()["detail"] and "timeout" in r.json()["detail"]
    r = http.post("/v1/gradings", json={"samples": [{"task_id": "HumanEval/999", "completion": "pass"}]})
    assert r.status_code == 422 and "samples.0.task_id" in r.json()["detail"] and "HumanEval/999" in r.json()["detail"]
    r = http.post("/v1/proofs", json={"theorems": [{"name": "t"}]})
    assert r.status_code == 422 and "theorems.0.statement" in r.json()["detail"]
    r = http.post("/v1/gradings", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = http.post("/v1/gradings", json={"samples": [{"task_id": "HumanEval/0", "completion": "x" * 100_000}]})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"]
    for path in ("/v1/gradings/nope", "/v1/proofs/nope/results", "/v1/math/checks/nope"):
        r = http.get(path)
        assert r.status_code == 404 and "'nope'" in r.json()["detail"]
    assert http.delete("/v1/gradings/nope").status_code == 404
    assert "/v1/gradings" in http.get("/openapi.json").json()["paths"]
    assert anon.get("/v1/jobs").status_code == 401
    assert all(j["kind"] in ("grading", "proof", "math") for j in http.get("/v1/jobs?limit=5").json())


def test_proof_job_without_lean_reports_each_item(service):
    http = client(service.url, TOKEN)
    theorems = [{"name": f"t{i}", "header": "import Mathlib", "statement": f"theorem t{i} : {i} = {i} :="}
                for i in range(3)]
    job = http.post("/v1/proofs", json={"theorems": theorems}).json()
    done = wait_for(lambda: (j := http.get(f"/v1/proofs/{job['id']}").json())["status"] != "running" and j)
    assert done["status"] == "completed" and done["done"] == 3
    rows = [json.loads(x) for x in http.get(f"/v1/proofs/{job['id']}/results").text.splitlines()]
    assert [r["name"] for r in rows] == ["t0", "t1", "t2"]
    assert all(r["status"] == "error" and "Lean" in r["detail"] for r in rows), rows[0]


def test_cancel_stops_a_job(service):
    http = client(service.url, TOKEN)
    job = http.post("/v1/gradings", json={"samples": canonical_samples(50) * 2}).json()
    r = http.post(f"/v1/gradings/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    final = wait_for(lambda: job["id"] not in http.get("/healthz").json()["active_jobs"] and
                     http.get(f"/v1/gradings/{job['id']}").json())
    assert final["status"] == "cancelled" and final["done"] < final["total"]


def test_restarted_service_resumes_the_job(ray_cluster, tmp_path):
    cfg = config(tmp_path, coder_workers=1)
    # Each program sleeps 50 ms once loaded, so the job lasts ~3 s on one worker and the stop lands mid-job however fast
    # the grading is.
    samples = [dict(s, completion=s["completion"] + "\n__import__('time').sleep(0.05)\n")
               for s in canonical_samples(60)]
    with ServerThread(create_app(cfg)) as first:
        http = client(first.url, TOKEN)
        job = http.post("/v1/gradings", json={"samples": samples}).json()
        wait_for(lambda: http.get(f"/v1/gradings/{job['id']}").json()["done"] >= 5)
        first.stop()  # mid-job
    store = JobStore(cfg.db)
    stopped = store.get(job["id"])
    store.close()
    assert stopped.status == "running" and 5 <= stopped.done < 60, stopped
    with ServerThread(create_app(cfg)) as second:
        http = client(second.url, TOKEN)
        done = wait_for(lambda: (j := http.get(f"/v1/gradings/{job['id']}").json())["status"] != "running" and j)
        rows = [json.loads(x) for x in http.get(f"/v1/gradings/{job['id']}/results").text.splitlines()]
    assert done["status"] == "completed" and done["done"] == 60
    assert sorted(r["index"] for r in rows) == list(range(60))
    assert all(r["passed"] for r in rows)


def test_math_check_comes_back_inline(service):
    http = client(service.url, TOKEN)
    items = [{"pred": "\\frac{1}{2}", "ref": "0.5"}, {"pred": "x^2+2x+1", "ref": "(x+1)^2"},
             {"predicted": "3", "reference": "4"}, {"pred": "\\frac{", "ref": "1"}]  # both spellings
    r = http.post("/v1/math/check", json={"items": items, "wait_s": 120})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed" and body["kind"] == "math"
    assert [x["status"] for x in body["results"]] == ["equivalent", "equivalent", "different", "unparseable"]
    assert http.get(f"/v1/math/checks/{body['id']}").json()["done"] == 4
    r = http.post("/v1/math/check", json={"items": [{"pred": "1"}]})
    assert r.status_code == 422 and "items.0.ref" in r.json()["detail"]


def test_python_client(service):
    from workers.client import ServiceClient, ServiceError

    c = ServiceClient(service.url, token=TOKEN)
    assert c.health()["status"] == "ok"
    checked = c.check_math([{"pred": "2/4", "ref": "\\frac12"}], wait_s=120)
    assert checked["results"][0]["status"] == "equivalent"
    job = c.submit_grading(canonical_samples(2))
    assert c.wait("grading", job["id"], poll_s=0.1, timeout=120, progress=False)["counts"] == {"passed": 2}
    assert [r["task_id"] for r in c.results("grading", job["id"])] == ["HumanEval/0", "HumanEval/1"]
    assert c.cancel("grading", job["id"])["status"] == "completed"  # finished jobs stay finished
    with pytest.raises(ServiceError, match="404: no proof job with id 'x'") as err:
        c.job("proof", "x")
    assert err.value.status == 404
    with pytest.raises(ServiceError, match="401"):
        ServiceClient(service.url).job("grading", job["id"])
