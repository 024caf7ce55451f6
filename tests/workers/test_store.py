"""The SQLite job store and the config edge: exactly-once results, resume, cancellation, clear errors."""
import json

import pytest

from workers.config import load_config
from workers.jobs import JobStore


def test_results_are_written_once_and_survive_reopen(tmp_path):
    db = tmp_path / "jobs.sqlite"
    store = JobStore(db)
    job_id = store.create("grading", [{"task_id": f"t{i}", "completion": ""} for i in range(5)], {"problems": "x"})
    assert store.record_result(job_id, 3, {"status": "passed", "passed": True})
    assert not store.record_result(job_id, 3, {"status": "failed"})  # a re-run of item 3 cannot duplicate it
    store.record_result(job_id, 0, {"status": "failed", "passed": False})
    store.set_status(job_id, "running")
    store.close()

    store = JobStore(db)  # a restarted service sees the same job and only the missing items
    job = store.get(job_id)
    assert (job.status, job.total, job.done) == ("running", 5, 2)
    assert job.counts == {"passed": 1, "failed": 1}
    assert store.unfinished() == [job_id]
    assert [i for i, _ in store.pending(job_id)] == [1, 2, 4]
    rows = list(store.results(job_id))
    assert [(r["index"], r["task_id"], r["status"]) for r in rows] == [(0, "t0", "failed"), (3, "t3", "passed")]
    assert job.params == {"problems": "x"}


def test_cancel_keeps_finished_jobs_finished(tmp_path):
    store = JobStore(tmp_path / "j.sqlite")
    a = store.create("math", [{"pred": "1", "ref": "1"}])
    b = store.create("math", [{"pred": "1", "ref": "1"}])
    store.set_status(b, "completed")
    assert store.cancel(a).status == "cancelled"
    assert store.cancel(b).status == "completed"
    assert store.cancel("nope") is None
    assert store.unfinished() == []
    with pytest.raises(ValueError, match="job kind 'bogus'"):
        store.create("bogus", [])


def test_config_file_errors_name_the_field(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"pool": {"coder_workers": -1}}))
    with pytest.raises(ValueError, match="pool.coder_workers"):
        load_config(cfg)
    cfg.write_text(json.dumps({"pool": {"coder_worker": 2}}))
    with pytest.raises(ValueError, match="coder_worker"):
        load_config(cfg)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_config(tmp_path / "missing.json")
    cfg.write_text(json.dumps({"port": 9001, "pool": {"coder_workers": 3}}))
    c = load_config(cfg, db=str(tmp_path / "x.sqlite"), host=None)
    assert (c.port, c.pool.coder_workers, c.host, c.db) == (9001, 3, "127.0.0.1", str(tmp_path / "x.sqlite"))
