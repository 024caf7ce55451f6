"""The GPU benchmark's code paths (weights built by transformers, copied into core_model in memory,
decode timing, roofline bytes) run on CPU with --tiny, so they cannot rot on a machine without a GPU."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_model_gpu.py"


def run_bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300, env=env)


def test_gpu_benchmark_refuses_clearly_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the default run is the real benchmark, too long for a test")
    out = run_bench()
    assert out.returncode == 2
    assert "no CUDA device" in out.stderr and "--device cpu --tiny" in out.stderr


def test_gpu_benchmark_tiny_on_cpu_reports_every_row():
    out = run_bench("--device", "cpu", "--tiny", "--threads", "1", "--context", "48", "--new-tokens", "2",
                    "--chunks", "2", "--repeats", "1", "--batches", "1", "3")
    assert out.returncode == 0, out.stderr[-3000:]
    diff = float(re.search(r"logits max \|diff\| = (\S+)", out.stderr).group(1))
    assert diff < 1e-4  # the in-memory weight copy (fused experts -> per expert) is exact
    table = out.stdout
    assert re.search(r"KV cache bytes/token\s+768\s+768 .*exact", table)  # (32 + 16) x 4 layers x 4 bytes
    for row in ("decode tok/s (batch 1, ctx 48)", "decode tok/s (batch 3, ctx 48)",
                "HBM roofline (batch 1)", "HBM roofline (batch 3)"):
        assert row in table
    # Batch 3 touches at least the routed experts batch 1 does (top-2 of 8 per token).
    sizes = [float(m) for m in re.findall(r"experts (\d+\.\d+) MB", table)]
    assert len(sizes) == 2 and sizes[1] >= sizes[0] > 0
