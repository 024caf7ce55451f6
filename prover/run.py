"""Prove many theorems: one search per theorem, N at a time, results appended to jsonl as they finish."""
from __future__ import annotations

import json
import shlex
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal

from pydantic import BaseModel, Field, model_validator

from .verification import CheckPolicy
from .generators import BuiltinGenerator, GeneratorConfig, ModelGenerator, OpenAIConfig, OpenAIGenerator
from .protocol import EnvError, Generator, ProofEnv, Theorem
from .proof_search import SearchConfig, search


class ProveConfig(BaseModel):
    """One `prove` job: where Lean runs, how to search, which generator, where results go."""

    backend: Literal["repl", "dojo"] = "repl"
    project: str | None = Field(None, description="repl: the Lake project (must require the REPL, and Mathlib if used)")
    repl_command: str | None = Field(None, description="repl: command line that starts the REPL, overriding the default")
    dojo_repo: str | None = Field(None, description="dojo: git URL or local clone traced by LeanDojo")
    dojo_commit: str | None = None
    dojo_file: str | None = Field(None, description="dojo: the .lean file, relative to the repo root")
    search: SearchConfig = Field(default_factory=SearchConfig)
    generator: Literal["builtin", "model", "openai"] = "builtin"
    model: str | None = Field(None, description="model: checkpoint directory (config.json, weights, tokenizer.json)")
    openai_url: str | None = Field(None, description="openai: server base URL, e.g. http://127.0.0.1:8000")
    openai_model: str = "default"
    openai_api_key: str | None = None
    sampling: GeneratorConfig = Field(default_factory=GeneratorConfig)
    policy: CheckPolicy = Field(default_factory=CheckPolicy)
    workers: int = Field(1, ge=1, description="theorems searched at once (threads sharing the environment)")
    output: str | None = Field(None, description="jsonl results file; None: stdout")
    resume: bool = Field(True, description="skip theorems already recorded in `output`")
    progress: bool = Field(True, description="progress bar on stderr")

    remote: bool = Field(False, description="the searches run on a service: its Lean and its model worker")

    @model_validator(mode="after")
    def _needs(self) -> "ProveConfig":
        if self.generator == "model" and not self.model and not self.remote:
            raise ValueError("--generator model needs --model DIR (a checkpoint directory with tokenizer.json)")
        if self.generator == "openai" and not self.openai_url:
            raise ValueError("--generator openai needs --openai-url URL (an OpenAI-compatible completions server)")
        if self.backend == "dojo" and not (self.dojo_repo and self.dojo_commit and self.dojo_file):
            raise ValueError("--backend dojo needs --repo, --commit and --file (the traced repository)")
        return self


def make_env(config: ProveConfig) -> ProofEnv:
    """The configured Lean backend; EnvError (with the fix) when Lean or the project is missing."""
    if config.backend == "dojo":
        from .dojo import DojoConfig, DojoEnv

        return DojoEnv(DojoConfig(repo=config.dojo_repo, commit=config.dojo_commit, file=config.dojo_file))
    from .repl import ReplConfig, ReplEnv

    command = shlex.split(config.repl_command) if config.repl_command else None
    # A tactic or a whole-proof check may take as long as the search allows it, no longer.
    timeout = max(config.search.tactic_timeout, config.search.check_timeout)
    return ReplEnv(ReplConfig(project=config.project, repl_command=command, pool_size=config.workers,
                              command_timeout=timeout))


def make_generator(config: ProveConfig) -> Generator:
    """The configured tactic/proof generator."""
    if config.generator == "model":
        return ModelGenerator.from_pretrained(config.model, config.sampling)
    if config.generator == "openai":
        return OpenAIGenerator(OpenAIConfig(base_url=config.openai_url, model=config.openai_model,
                                            api_key=config.openai_api_key, **config.sampling.model_dump()))
    return BuiltinGenerator()


def job_names(theorems: list[Theorem]) -> list[str]:
    """Unique record names: the theorem name, with `#2`, `#3`... for repeats (ProofNet repeats names)."""
    seen: dict[str, int] = {}
    names = []
    for theorem in theorems:
        seen[theorem.name] = seen.get(theorem.name, 0) + 1
        names.append(theorem.name if seen[theorem.name] == 1 else f"{theorem.name}#{seen[theorem.name]}")
    return names


def done_names(output: Path) -> set[str]:
    """Names already recorded in `output` (a cut-off last line from a killed run is ignored)."""
    if not output.is_file():
        return set()
    names = set()
    for line in output.read_text(encoding="utf-8").splitlines():
        try:
            names.add(json.loads(line)["name"])
        except (ValueError, KeyError, TypeError):
            continue
    return names


class _Writer:
    """Appends one JSON line per finished theorem and flushes, so a kill loses nothing finished."""

    def __init__(self, output: Path | None):
        self.lock = threading.Lock()
        if output is None:
            self.stream, self.owned = sys.stdout, False
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.is_file() and output.stat().st_size and not output.read_bytes().endswith(b"\n"):
            output.open("a").write("\n")  # end the cut-off line so the next record starts clean
        self.stream, self.owned = output.open("a", encoding="utf-8"), True

    def write(self, record: dict) -> None:
        with self.lock:
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.owned:
            self.stream.close()


# An executor searches (record name, theorem) pairs and yields one record per theorem as each finishes;
# the default runs the searches in this process, `workers` provides a Ray pool and a service (`--server`).
Prover = Callable[[list[tuple[str, Theorem]]], Iterator[dict]]


def prove_all(theorems: list[Theorem], config: ProveConfig | None = None, env: ProofEnv | None = None,
              generator: Generator | None = None, prover: Prover | None = None) -> list[dict]:
    """Search each theorem (skipping ones already in the output), here or by `prover`; return the new records.

    An `EnvError` (Lean missing or broken) stops the run and propagates; records written
    so far stay, and a rerun with the same output resumes after them.
    """
    config = config or ProveConfig()
    output = Path(config.output) if config.output else None
    skip = done_names(output) if (output and config.resume) else set()
    jobs = [(name, t) for name, t in zip(job_names(theorems), theorems) if name not in skip]
    if prover is not None:
        return _write_records(prover(jobs) if jobs else iter(()), len(theorems), len(jobs), config, _Writer(output))
    own_env, own_gen = env is None, generator is None
    env = env or make_env(config)
    try:
        generator = generator or make_generator(config)
        return _write_records(in_process_prover(config, env, generator)(jobs), len(theorems), len(jobs), config,
                              _Writer(output))
    finally:
        if own_env:
            env.close()
        if own_gen and hasattr(generator, "close"):
            generator.close()


def in_process_prover(config: ProveConfig, env: ProofEnv, generator: Generator) -> Prover:
    """The default executor: `config.workers` threads sharing `env`; the first EnvError stops the rest."""

    def run(jobs: list[tuple[str, Theorem]]) -> Iterator[dict]:
        stop = threading.Event()  # set by the first EnvError: theorems not yet started are skipped

        def one(name: str, theorem: Theorem) -> dict | None:
            if stop.is_set():
                return None
            try:
                result = search(theorem, env, generator, config.search, policy=config.policy)
            except EnvError:
                stop.set()
                raise
            return {"name": name, **result.to_dict(), "algorithm": config.search.algorithm,
                    "generator": config.generator}

        pool = ThreadPoolExecutor(max_workers=config.workers)
        try:
            futures = [pool.submit(one, name, theorem) for name, theorem in jobs]
            error = None
            for future in as_completed(futures):  # after an error, searches under way still report
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    error = error or future.exception()
                    for f in futures:
                        f.cancel()
                elif future.result() is not None:
                    yield future.result()
            if error is not None:
                raise error
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    return run


def _write_records(records: Iterable[dict], total: int, todo: int, config: ProveConfig, writer: _Writer) -> list[dict]:
    """Append each record as it comes, with a progress bar; the records."""
    from tqdm import tqdm

    written: list[dict] = []
    bar = tqdm(total=total, initial=total - todo, desc="prove", unit="thm", file=sys.stderr,
               disable=not config.progress)
    try:
        for record in records:
            writer.write(record)
            written.append(record)
            bar.update(1)
            bar.set_postfix(proved=sum(r["status"] == "proved" for r in written))
    finally:
        bar.close()
        writer.close()
    return written


def summary(records: list[dict], skipped: int = 0) -> str:
    """`proved 3/10 (failed 5, timeout 1, error 1)`."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    rest = ", ".join(f"{s} {counts[s]}" for s in ("failed", "timeout", "error") if counts.get(s))
    text = f"proved {counts.get('proved', 0)}/{len(records)}" + (f" ({rest})" if rest else "")
    return text + (f"; {skipped} already done" if skipped else "")


__all__ = ["ProveConfig", "prove_all", "in_process_prover", "Prover", "make_env", "make_generator", "job_names", "done_names", "summary",
           "EnvError"]
