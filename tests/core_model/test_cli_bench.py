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
    env_interpret = os.environ.pop("TRITON_INTERPRET", None)  # no Triton rows: the interpreter is slow
    try:
        out = run_bench("--device", "cpu", "--tiny", "--threads", "1", "--context", "48", "--new-tokens", "2",
                        "--chunks", "2", "--repeats", "1", "--batches", "1", "3", "--variants", "basic",
                        "--greedy-steps", "6")
    finally:
        if env_interpret is not None:
            os.environ["TRITON_INTERPRET"] = env_interpret
    assert out.returncode == 0, out.stderr[-3000:]
    diff = float(re.search(r"logits max \|diff\| vs transformers (\S+)", out.stdout).group(1))
    assert diff < 0.1  # bf16 on both sides; the weight copy itself is exact (test_checkpoint_parity)
    rows = [line.split(" | ") for line in out.stdout.splitlines() if line.startswith("ROW | ")]
    names = [r[1] for r in rows]
    for b in (1, 3):
        assert f"b{b} eager, no graph (reference)" in names and f"b{b} transformers (eager)" in names
        step = rows[names.index(f"b{b} static step, eager kernels")]
        assert step[2].endswith("tok/s") and step[4].startswith(f"identical ({6 * b} tokens); routing flips 0/")
    # Batch 3 touches at least the routed experts batch 1 does (top-2 of 8 per token).
    sizes = [float(m) for m in re.findall(r"experts hit (\d+\.\d+) MB", out.stdout)]
    assert len(sizes) == 2 and sizes[1] >= sizes[0] > 0
