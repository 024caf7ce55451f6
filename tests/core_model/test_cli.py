"""`proofcode train` / `proofcode generate`: config files, overrides, the end-to-end path, clear errors."""
import json
import subprocess
import sys

import pytest

from workers.cli import main

MICRO = {
    "model": {"model_type": "deepseek_v2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "moe_intermediate_size": 16, "n_routed_experts": 4, "n_shared_experts": 1,
              "num_experts_per_tok": 2, "kv_lora_rank": 16, "q_lora_rank": None, "qk_nope_head_dim": 8,
              "qk_rope_head_dim": 8, "v_head_dim": 8},
    "data": "stdlib", "max_data_bytes": 60000, "tokenizer_vocab_size": 400, "seq_len": 32, "batch_size": 4,
    "max_steps": 6, "warmup_steps": 1, "num_threads": 1,
}


def proofcode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True, timeout=300)


def test_train_then_generate_end_to_end(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**MICRO, "output_dir": str(tmp_path / "out")}))
    out = proofcode("train", "--config", str(cfg), "--set", "lr=0.005", "--no-progress")
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)
    assert metrics["step"] == 6 and metrics["output_dir"] == str(tmp_path / "out")
    assert (tmp_path / "out" / "trainer_state.pt").is_file()
    assert json.loads((tmp_path / "out" / "config.json").read_text())["hidden_size"] == 32
    gen = proofcode("generate", "--model", str(tmp_path / "out"), "--prompt", "def ", "--prompt", "import",
                    "--max-new-tokens", "5", "--temperature", "0.8", "--seed", "3", "--json")
    assert gen.returncode == 0, gen.stderr
    rows = [json.loads(line) for line in gen.stdout.splitlines()]
    assert [r["prompt"] for r in rows] == ["def ", "import"]
    for r in rows:
        assert 1 <= len(r["token_ids"]) <= 5 and r["finish_reason"] in ("length", "eos", "stop")


def test_yaml_config_and_overrides_reach_the_job(tmp_path, capsys):
    pytest.importorskip("yaml")
    import yaml

    from core_model.cli import build_train_config
    from workers.cli import build_parser

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**MICRO, "output_dir": "x"}))
    args = build_parser().parse_args(["train", "--config", str(cfg), "--output-dir", str(tmp_path / "y"),
                                      "--set", "model.hidden_size=48", "--set", "betas=[0.8, 0.9]", "--resume"])
    config = build_train_config(args)
    assert config.output_dir == str(tmp_path / "y") and config.resume
    assert config.model["hidden_size"] == 48 and config.betas == (0.8, 0.9)
    preset = build_train_config(build_parser().parse_args(["train", "--preset", "tiny", "--max-steps", "7"]))
    assert preset.max_steps == 7 and preset.data == "stdlib" and preset.model["n_routed_experts"] == 8


@pytest.mark.parametrize("argv, message", [
    (["train"], "give --config FILE or --preset NAME"),
    (["train", "--config", "/nonexistent/cfg.json"], "config file /nonexistent/cfg.json does not exist"),
    (["train", "--preset", "tiny", "--set", "lr"], "expected KEY=VALUE"),
    (["train", "--preset", "tiny", "--set", "no_such_field=1"], "no_such_field: Extra inputs are not permitted"),
    (["train", "--preset", "tiny", "--data", "/nonexistent/d.jsonl", "--no-progress"], "/nonexistent/d.jsonl does not exist"),
    (["generate", "--model", "/nonexistent/m", "--prompt", "x"], "--model /nonexistent/m is not a directory"),
])
def test_errors_are_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the preset's runs/ dir must not land in the checkout
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"proofcode {argv[0]}: error:" in err and message in err
    assert "Traceback" not in err


def test_decode_choices_name_their_kernels():
    from core_model.cli import DECODE_CHOICES, decode_kernels
    from core_model.cuda_graph import EAGER, DecodeKernels

    assert decode_kernels("eager") == EAGER and decode_kernels("auto") == DecodeKernels()
    assert decode_kernels("compile-fp8") == DecodeKernels(compile="regional", experts="fp8")
    assert decode_kernels("fp8").experts == "fp8" and set(DECODE_CHOICES) >= {"auto", "eager", "compile", "fp8"}
    from workers.cli import build_parser

    argv = ["generate", "--model", "m", "--prompt", "x", "--decode", "compile-fp8"]
    assert build_parser(argv).parse_args(argv).decode == "compile-fp8"
