"""bf16 on a CPU without native bf16 (simulated): one warning naming fp32, and none where bf16 is native."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from core_model import GenerationConfig, ModelConfig, TrainConfig, Transformer, generate_ids, precision, train

torch.set_num_threads(1)


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Set the detector's answer; warnings start fresh."""
    monkeypatch.setattr(precision, "_warned", set())

    def set_native(native: bool | None) -> None:
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)

    return set_native


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "core_model.precision"]


@pytest.mark.parametrize("native", [False, True, None])
def test_bf16_generation_on_cpu_warns_once_only_without_native_bf16(native, cpu_bf16, caplog):
    cpu_bf16(native)
    torch.manual_seed(0)
    model = Transformer(ModelConfig()).eval().to(torch.bfloat16)
    with caplog.at_level(logging.WARNING, "core_model.precision"):
        for _ in range(2):
            generate_ids(model, [[1, 2, 3]], GenerationConfig(max_new_tokens=2, temperature=0))
        generate_ids(model.float(), [[1, 2, 3]], GenerationConfig(max_new_tokens=2, temperature=0))
    got = _warnings(caplog)
    if native is False:
        assert len(got) == 1 and "generation in bfloat16" in got[0] and "dtype float32" in got[0]
    else:
        assert got == []


@pytest.mark.parametrize("native", [False, True])
def test_bf16_autocast_training_on_cpu_warns_without_native_bf16(native, cpu_bf16, caplog, tmp_path):
    cpu_bf16(native)
    data = tmp_path / "text.jsonl"
    data.write_text("".join(json.dumps({"text": f"def f{i}(x): return {i}\n"}) + "\n" for i in range(40)))
    config = TrainConfig(output_dir=str(tmp_path / "run"), data=str(data), model={"model_type": "deepseek_v2", "num_hidden_layers": 2},
                         tokenizer_vocab_size=300, seq_len=16, batch_size=2, max_steps=1, warmup_steps=0,
                         progress=False, num_threads=1, autocast="bfloat16")
    with caplog.at_level(logging.WARNING, "core_model.precision"):
        train(config)
    got = _warnings(caplog)
    assert (len(got) == 1 and "autocast: none" in got[0]) if not native else got == []


def test_the_detector_reads_the_cpu_flags():
    native = precision.cpu_has_native_bf16()
    assert native in (True, False, None)
    assert "CPU native bf16: " + ("yes" if native else "no" if native is False else "unknown") in \
        precision.native_bf16_line()
