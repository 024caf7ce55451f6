"""A worker pool without Ray: the handlers run in this process (tests, one-machine use, `create_app(pool=...)`)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from .config import PoolConfig
from .handlers import CoderHandler, ProverHandler
from .registry import kind_of, run_item


class LocalPool:
    """`WorkerPool.run` semantics (each item's result once, in any order) with `threads` items at a time here."""

    def __init__(self, config: PoolConfig | None = None, threads: int = 2):
        self.config = config or PoolConfig(model={"enabled": False})
        c = self.config
        self.threads = threads
        self.handlers = {"coder": CoderHandler(),
                         "prover": ProverHandler(c.lean_project, None, c.repl_pool_size, c.repl_command, c.max_projects)}

    def run(self, kind: str, items: Iterable[tuple[int, dict]], params: dict,
            on_result: Callable[[int, dict], None], should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Run (index, item) pairs; False if `should_stop()` turned true first."""
        group = kind_of(kind).group
        handler = self.handlers[group]
        with ThreadPoolExecutor(self.threads) as pool:
            for idx, result in pool.map(lambda entry: (entry[0], run_item(handler, group, kind, entry[1], params)),
                                        items):
                on_result(idx, result)
                if should_stop():
                    pool.shutdown(wait=False, cancel_futures=True)
                    return False
        return True

    def shutdown(self) -> None:
        self.handlers["prover"].close()
