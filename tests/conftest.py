"""Session-wide test settings: a quiet local Ray started once, and paths to ../shared fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before anything imports ray or lean_dojo.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("DISABLE_REMOTE_CACHE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """../shared/fixtures beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"{SHARED_FIXTURES} not found: the shared fixtures live beside the checkout")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session (ray.init costs ~8 s here)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # our own, even where another Ray cluster runs on this machine
            num_cpus=8,  # logical slots; the machine has 2 cores, actors mostly wait
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    yield ray
    ray.shutdown()
