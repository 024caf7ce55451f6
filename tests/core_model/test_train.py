"""Training loop: loss goes down, checkpoints load, resume is exact, SFT trains only the completion."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from core_model import TrainConfig, load_pretrained, load_tokenizer, train
from core_model.training import lr_lambda

torch.set_num_threads(1)

MICRO_MODEL = {
    "model_type": "deepseek_v2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "moe_intermediate_size": 16, "n_routed_experts": 4, "n_shared_experts": 1,
    "num_experts_per_tok": 2, "first_k_dense_replace": 1, "kv_lora_rank": 16, "q_lora_rank": None,
    "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8, "aux_loss_alpha": 0.01,
}


def micro_job(tmp_path, data, **kw) -> TrainConfig:
    fields = dict(output_dir=str(tmp_path / "run"), data=str(data), model=MICRO_MODEL, tokenizer_vocab_size=320,
                  seq_len=32, batch_size=4, max_steps=12, lr=1e-2, warmup_steps=2, log_every=4,
                  progress=False, num_threads=1)
    fields.update(kw)
    return TrainConfig(**fields)


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "text.jsonl"
    lines = [{"text": f"def f{i}(x):\n    return x * {i} + {i % 3}\n"} for i in range(200)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_lambda(s, warmup_steps=4, max_steps=20, min_lr_ratio=0.1) for s in range(21)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))  # non-increasing after warmup
    assert math.isclose(lrs[20], 0.1) and math.isclose(lrs[12], 0.55)
    # A warmup longer than the run (e.g. a preset cut short with --max-steps) just never reaches the peak.
    assert lr_lambda(4, warmup_steps=20, max_steps=5, min_lr_ratio=0.1) == 0.25


def test_config_errors_say_what_to_fix(tmp_path, text_data):
    with pytest.raises(ValueError, match="exactly one of 'model'"):
        TrainConfig(data=str(text_data))
    with pytest.raises(ValueError, match="exactly one of 'model'"):
        TrainConfig(model=MICRO_MODEL, init_from=str(tmp_path))
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(model=MICRO_MODEL, max_steps=0)


def test_pretraining_lowers_loss_and_saves_a_loadable_checkpoint(tmp_path, text_data):
    metrics = train(micro_job(tmp_path, text_data, max_steps=30))
    out = tmp_path / "run"
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [4, 8, 12, 16, 20, 24, 28, 30]
    assert log[-1]["loss"] < log[0]["loss"] - 1.0  # the repetitive corpus is easy to learn
    assert metrics["step"] == 30 and metrics["tokens"] == 30 * 4 * 32 and metrics["tokens_per_s"] > 0
    tok, model = load_tokenizer(out), load_pretrained(out)
    assert model.config.vocab_size == tok.vocab_size <= 320  # the BPE stops early on a small corpus
    ids = torch.tensor([tok.encode("def f7(x):\n    return x * 7", add_bos=False)])
    with torch.no_grad():
        logits = model.eval()(ids)
    # Loaded weights reproduce the trained model's loss level on training text (not a fresh init's ~ln 320).
    ce = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]).item()
    assert ce < math.log(tok.vocab_size) - 1.5


def test_resume_continues_exactly_where_it_stopped(tmp_path, text_data):
    # A flat schedule, so stopping at step 4 (max_steps=4) and going on to 8 is the same job as 8 straight.
    flat = dict(warmup_steps=0, min_lr_ratio=1.0)
    straight = micro_job(tmp_path / "a", text_data, max_steps=8, **flat)
    train(straight)
    first = micro_job(tmp_path / "b", text_data, max_steps=4, save_every=2, **flat)
    train(first)
    second = first.model_copy(update={"max_steps": 8, "resume": True})
    metrics = train(second)
    assert metrics["step"] == 8 and metrics["tokens"] == 8 * 4 * 32
    log = [json.loads(line) for line in (tmp_path / "b" / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [4, 8]  # the resumed run appends to the log it continues
    a = load_file(tmp_path / "a" / "run" / "model.safetensors")
    b = load_file(tmp_path / "b" / "run" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_sft_learns_completions_not_prompts(tmp_path, text_data):
    base = micro_job(tmp_path, text_data, max_steps=4)
    train(base)
    sft_data = tmp_path / "sft.jsonl"
    pairs = [{"prompt": f"Q{i}: colour?", "completion": " blue" if i % 2 else " red"} for i in range(40)]
    sft_data.write_text("".join(json.dumps(r) + "\n" for r in pairs))
    sft = TrainConfig(output_dir=str(tmp_path / "sft"), data=str(sft_data), init_from=str(tmp_path / "run"),
                      seq_len=32, batch_size=8, max_steps=25, lr=1e-2, warmup_steps=0, progress=False,
                      num_threads=1, log_every=5)
    metrics = train(sft)
    # Only completion tokens + EOS are targets: never a prompt token.
    tok = load_tokenizer(tmp_path / "run")
    per_example = sorted(len(tok.encode(c)) + 1 for c in (" red", " blue"))
    assert 25 * 8 * per_example[0] <= metrics["tokens"] <= 25 * 8 * per_example[1]
    log = [json.loads(line) for line in (tmp_path / "sft" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 1.0 < log[0]["loss"]  # 2-way choice + EOS: ~ln 2 / 2 when learnt


def test_v3_routing_bias_moves_during_training(tmp_path, text_data):
    v3 = {**MICRO_MODEL, "model_type": "deepseek_v3", "n_group": 1, "topk_group": 1, "norm_topk_prob": True,
          "num_nextn_predict_layers": 0, "aux_loss_alpha": 0.0}
    train(micro_job(tmp_path, text_data, model=v3, max_steps=3, routing_bias_rate=0.01))
    weights = load_file(tmp_path / "run" / "model.safetensors")
    biases = [t for name, t in weights.items() if name.endswith("e_score_correction_bias")]
    assert biases and all(b.abs().max() > 0 for b in biases)
    assert all(b.abs().max() <= 3 * 0.01 + 1e-6 for b in biases)  # 3 steps of sign updates at rate 0.01


def test_bf16_autocast_trains_with_fp32_weights_and_fp32_routing(tmp_path, text_data):
    """Mixed precision: the loss falls as in fp32, the checkpoint stays fp32, and the router still decides in fp32
    (under autocast its matmul would otherwise run in bf16)."""
    metrics = train(micro_job(tmp_path, text_data, max_steps=30, autocast="bfloat16"))
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"] - 1.0 and math.isfinite(metrics["loss"])
    weights = load_file(tmp_path / "run" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    gate = load_pretrained(tmp_path / "run").model.layers[1].mlp.gate
    x = torch.randn(64, MICRO_MODEL["hidden_size"]) * 3
    with torch.no_grad():
        want = gate(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = gate(x)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(ValueError, match="autocast"):
        TrainConfig(model=MICRO_MODEL, autocast="float16")
