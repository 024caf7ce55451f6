"""`proofcode serve`, `grade/prove --server` and `proofcode demo` as users run them (real subprocesses)."""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import canonical_samples, wait_for  # noqa: E402

pytestmark = pytest.mark.ray


def cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(ray_cluster, db: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`proofcode serve` joined to the test session's Ray, with a token; returns once /healthz answers.

    Its stderr goes to DB.stderr (a file: Ray can write more than a pipe holds).
    """
    address = ray_cluster.get_runtime_context().gcs_address
    with open(f"{db}.stderr", "a") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "serve", "--port", str(port), "--db", str(db),
             "--address", address, "--coder-workers", "1", "--token", "tok"],
            stdout=subprocess.DEVNULL, stderr=err, text=True)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            assert proc.poll() is None, Path(f"{db}.stderr").read_text()[-3000:]
            return False

    wait_for(up, timeout=120, poll=0.3)
    return proc, url


@pytest.fixture(scope="module")
def served(ray_cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    proc, url = start_serve(ray_cluster, tmp / "jobs.sqlite", free_port())
    yield url, tmp
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert "proofcode service stopped; 0 unfinished job(s)" in (tmp / "jobs.sqlite.stderr").read_text()


def test_a_sigkilled_service_resumes_its_job_on_restart(ray_cluster, tmp_path):
    from workers.client import ServiceClient

    db, port = tmp_path / "jobs.sqlite", free_port()
    proc, url = start_serve(ray_cluster, db, port)
    client = ServiceClient(url, token="tok")
    job = client.submit_grading(canonical_samples(60))
    wait_for(lambda: client.job("grading", job["id"])["done"] >= 5)
    proc.kill()  # no graceful shutdown: the database is all that survives
    proc.wait(timeout=30)
    proc, url = start_serve(ray_cluster, db, port)
    try:
        client = ServiceClient(url, token="tok")
        done = client.wait("grading", job["id"], poll_s=0.2, timeout=240, progress=False)
        rows = client.results("grading", job["id"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert done["status"] == "completed" and done["counts"] == {"passed": 60}
    assert [r["index"] for r in rows] == list(range(60))


def test_grade_with_server_writes_what_the_local_command_writes(served):
    url, tmp = served
    samples = tmp / "samples.jsonl"
    rows = canonical_samples(4) + [{"task_id": "HumanEval/0", "completion": "    return True\n"}]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = cli("grade", str(samples), "--server", url, "--k", "1", env={"PROOFCODE_TOKEN": "tok"})
    assert out.returncode == 0, out.stderr
    assert "pass@1: 0.8750" in out.stdout  # HumanEval/0 has 1 of 2 samples right, the other 3 tasks 1 of 1
    results = [json.loads(x) for x in (tmp / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in results] == [True] * 4 + [False]
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5] and results[4]["verdict"] == "failed"
    assert "verdicts: failed=1, passed=4" in out.stdout

    again = cli("grade", str(samples), "--server", url, "--k", "1", env={"PROOFCODE_TOKEN": "tok"})
    assert again.returncode == 0 and "submitted" not in again.stderr and "pass@1: 0.8750" in again.stdout  # resumed

    with samples.open("a") as f:  # one new sample: only it goes to the server
        f.write(json.dumps(canonical_samples(5)[4]) + "\n")
    bad = cli("grade", str(samples), "--server", url)  # no token
    assert bad.returncode == 2 and "401" in bad.stderr and "bearer token" in bad.stderr and "Traceback" not in bad.stderr
    more = cli("grade", str(samples), "--server", url, "--k", "1", env={"PROOFCODE_TOKEN": "tok"})
    assert more.returncode == 0 and "(1 samples)" in more.stderr and "samples: 6" in more.stdout
    lines = [json.loads(x)["line"] for x in (tmp / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert lines == [1, 2, 3, 4, 5, 6]


def test_prove_with_server_reports_missing_lean_per_theorem(served, shared_fixtures):
    url, tmp = served
    out_path = tmp / "proofs.jsonl"
    out = cli("prove", str(shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl"), "--limit", "2",
              "--server", url, "--generator", "builtin", "-o", str(out_path), env={"PROOFCODE_TOKEN": "tok"})
    assert out.returncode == 0, out.stderr
    records = [json.loads(x) for x in out_path.read_text().splitlines()]
    assert len(records) == 2 and all(r["status"] == "error" for r in records)
    assert all("Lean" in r["error"] or "Lean" in r.get("detail", "") for r in records), records[0]
    assert "proved 0/2 (error 2)" in out.stderr
    again = cli("prove", str(shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl"), "--limit", "3",
                "--server", url, "--generator", "builtin", "-o", str(out_path), env={"PROOFCODE_TOKEN": "tok"})
    assert again.returncode == 0 and "proved 0/1 (error 1); 2 already done" in again.stderr  # resumes like local
    assert len(out_path.read_text().splitlines()) == 3


def test_demo_runs_end_to_end(ray_cluster, tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    out = cli("demo", "--limit", "3", "--workers", "1", "--max-new-tokens", "8", "--address", address,
              "--out", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    assert "pass@1 = " in out.stdout and "(3 problems" in out.stdout.replace("HumanEval (", "(")
    assert "sanity: the sandbox graded 3/3 canonical solutions as passed" in out.stdout
    results = [json.loads(x) for x in (tmp_path / "demo" / "results.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in results] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert all(r["verdict"] in ("passed", "failed", "runtime_error", "timeout", "memory_exceeded", "output_limit")
               for r in results)


def test_grade_with_server_says_how_many_samples_were_not_graded(ray_cluster, tmp_path):
    """A sample whose worker dies every time it runs it: the row says so, and so do the summary and exit code."""
    import threading
    import time

    from svc_helpers import ServerThread

    from workers.config import PoolConfig, ServiceConfig
    from workers.service import create_app

    cfg = ServiceConfig(db=str(tmp_path / "jobs.sqlite"),
                        pool=PoolConfig(coder_workers=1, max_item_attempts=1, model={"enabled": False}))
    samples = tmp_path / "samples.jsonl"
    rows = [{"task_id": "HumanEval/0", "completion": "    import time\n    time.sleep(20)\n"}] + canonical_samples(2)
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with ServerThread(create_app(cfg)) as srv:
        pool = srv.app.state.proofcode["pool"]
        out = {}
        t = threading.Thread(target=lambda: out.update(r=cli("grade", str(samples), "--server", srv.url, "--k", "1")))
        t.start()
        pid = pool.worker_pids()[0]
        wait_for(lambda: srv.app.state.proofcode["store"].list(1), timeout=60)
        time.sleep(2.5)  # the worker is inside the sleepy sample (first in line, 10 s limit)
        os.kill(pid, signal.SIGKILL)
        t.join(timeout=240)
    res = out["r"]
    assert res.returncode == 3, res.stderr
    assert "1 of 3 sample(s) were NOT graded" in res.stderr and "samples: 3" in res.stdout
    results = [json.loads(x) for x in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert results[0]["ungraded"] and "worker died 1 time(s)" in results[0]["detail"]
    assert [r["passed"] for r in results] == [False, True, True] and "ungraded" not in results[1]


def test_a_rerun_reattaches_and_the_client_rides_out_a_service_restart(ray_cluster, tmp_path):
    from workers.client import ServiceClient

    db, port = tmp_path / "jobs.sqlite", free_port()
    proc, url = start_serve(ray_cluster, db, port)
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in canonical_samples(40)))
    cmd = [sys.executable, "-m", "workers.cli", "grade", str(samples), "--server", url, "--k", "1", "--no-progress"]
    env = {**os.environ, "PROOFCODE_TOKEN": "tok"}
    api = ServiceClient(url, token="tok")
    try:
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        job = wait_for(lambda: (jobs := api._request("GET", "/v1/jobs").json()) and jobs[0], timeout=120)
        first.kill()  # the client dies; the job goes on
        first.wait(timeout=30)
        with open(tmp_path / "rerun.stderr", "w") as err:
            rerun = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
            wait_for(lambda: "re-attached" in (tmp_path / "rerun.stderr").read_text() or rerun.poll() is not None,
                     timeout=120)
            wait_for(lambda: api.job("grading", job["id"])["done"] >= 8, timeout=120)
            proc.kill()  # the service dies mid-job and comes back
            proc.wait(timeout=30)
            proc, _ = start_serve(ray_cluster, db, port)
            stdout, _ = rerun.communicate(timeout=240)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    stderr = (tmp_path / "rerun.stderr").read_text()
    assert rerun.returncode == 0, stderr
    assert f"re-attached to grading job {job['id']} (40 samples" in stderr and "submitted grading job" not in stderr
    assert "lost the proofcode service" in stderr and "the service is back" in stderr
    assert "pass@1: 1.0000" in stdout
    results = [json.loads(x) for x in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [r["line"] for r in results] == list(range(1, 41)) and all(r["passed"] for r in results)
    from workers.jobs import JobStore
    assert [j.id for j in JobStore(db).list()] == [job["id"]]  # one job: the rerun did not submit another


def test_a_failed_start_is_one_line_with_cause_and_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = cli("serve", "--port", str(free_port()), "--db", str(blocker / "jobs.sqlite"), timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "cannot open the job database" in lines[0] and "writable --db" in lines[0] and "Traceback" not in out.stderr
