"""Lets the test files import their shared helpers (fidelity.py) under --import-mode=importlib."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
