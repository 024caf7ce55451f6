"""Whether this CPU computes bf16 natively, and a one-time warning where it would be emulated.

CPUs with AVX512-BF16 (Intel Cooper Lake and Sapphire Rapids on, AMD Zen 4 on) or AMX-BF16 (Intel Sapphire
Rapids on) run bf16 matmuls in hardware; elsewhere oneDNN emulates them, measured ~25x slower than fp32 for
a bf16-autocast train step on such a CPU.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_warned: set[str] = set()


@functools.cache
def cpu_has_native_bf16() -> bool | None:
    """True/False from the CPU flags in /proc/cpuinfo (Linux); None where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    if not flags:
        return None
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def native_bf16_line() -> str:
    """One line for benchmark headers."""
    native = cpu_has_native_bf16()
    if native is None:
        return "CPU native bf16: unknown (no /proc/cpuinfo flags)"
    return f"CPU native bf16: {'yes' if native else 'no (bf16 is emulated: use fp32 on this CPU)'}"


def warn_if_emulated_bf16(device: torch.device | str, what: str) -> bool:
    """Warn once per `what` when bf16 work on a CPU device would be emulated; True when it warned."""
    if torch.device(device).type != "cpu" or cpu_has_native_bf16() is not False or what in _warned:
        return False
    _warned.add(what)
    log.warning("%s in bfloat16 on a CPU without AVX512-BF16 or AMX: bf16 is emulated here (measured ~25x "
                "slower than fp32); use fp32 on this CPU (%s)", what,
                "autocast: none" if "autocast" in what else "dtype float32")
    return True
