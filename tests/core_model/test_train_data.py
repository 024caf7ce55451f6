"""Training data: packing, SFT loss masks, resumable batch order, clear errors on bad input."""
import json

import pytest
import torch

from core_model import train_bpe
from core_model.data import IGNORE_INDEX, Batches, build_examples, load_records, read_jsonl, stdlib_texts


@pytest.fixture(scope="module")
def tok():
    return train_bpe(stdlib_texts(max_bytes=200_000), vocab_size=400)


def test_stdlib_corpus_is_python_source_and_stable():
    texts = stdlib_texts(max_bytes=50_000)
    assert sum(len(t.encode()) for t in texts) >= 50_000
    assert any("def " in t for t in texts)
    assert stdlib_texts(max_bytes=50_000) == texts


def test_packed_blocks_are_next_token_shifts(tok):
    texts = ["alpha beta gamma " * 20, "def f(x):\n    return x\n" * 10]
    examples = build_examples(tok, [{"text": t} for t in texts], seq_len=16)
    stream = [i for t in texts for i in (*tok.encode(t, add_bos=True), tok.eos_id)]
    assert len(examples) == (len(stream) - 1) // 16
    for k, (x, y) in enumerate(examples):
        assert x.tolist() == stream[k * 16:(k + 1) * 16]
        assert y.tolist() == stream[k * 16 + 1:(k + 1) * 16 + 1]


def test_sft_loss_only_on_completion(tok):
    rec = {"prompt": "Q: 2+2=", "completion": " 4"}
    [(x, y)] = build_examples(tok, [rec], seq_len=64)
    prompt = tok.encode(rec["prompt"], add_bos=True)
    completion = tok.encode(rec["completion"]) + [tok.eos_id]
    assert x.tolist() == (prompt + completion)[:-1]
    kept = [t for t in y.tolist() if t != IGNORE_INDEX]
    assert kept == completion  # every completion token and EOS is a target, no prompt token is
    assert (y[: len(prompt) - 1] == IGNORE_INDEX).all()


def test_sft_drops_examples_whose_prompt_fills_the_window(tok):
    long = {"prompt": "word " * 100, "completion": " yes"}
    short = {"prompt": "hi", "completion": " there"}
    assert len(build_examples(tok, [long, short], seq_len=16)) == 1
    with pytest.raises(ValueError, match="raise seq_len"):
        build_examples(tok, [long], seq_len=16)


def test_batches_pad_right_and_resume_in_the_same_order(tok):
    # Example i is all (100 + i), so a row's first token says which example it is.
    examples = [(torch.full((n,), 100 + i), torch.full((n,), 100 + i)) for i, n in enumerate((3, 5, 2, 4, 6))]
    a = Batches(examples, batch_size=2, pad_id=tok.pad_id, seed=7)
    x, y = a.next()
    width = max(len(e[0]) for e in examples)
    assert x.shape[0] == 2 and x.shape[1] <= width
    short = int((x != tok.pad_id).sum(1).argmin())
    n = int((y[short] != IGNORE_INDEX).sum())
    assert (y[short, n:] == IGNORE_INDEX).all() and (x[short, n:] == tok.pad_id).all()
    run = [a.next() for _ in range(6)]  # crosses epoch boundaries
    b = Batches(examples, batch_size=2, pad_id=tok.pad_id, seed=7)
    b.next()
    b.next()
    c = Batches(examples, batch_size=2, pad_id=tok.pad_id, seed=7)
    c.load_state_dict(b.state_dict())
    for (x1, y1), (x2, y2) in zip(run[1:], [c.next() for _ in range(5)]):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    one_epoch, _ = Batches(examples, batch_size=5, pad_id=0, seed=1).next()
    assert sorted(one_epoch[:, 0].tolist()) == [100, 101, 102, 103, 104]  # an epoch visits each example once


def test_bad_data_errors_name_the_file_and_line(tmp_path, tok):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(bad)
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_records(str(tmp_path / "nope.jsonl"))
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(ValueError, match="'text' field"):
        build_examples(tok, read_jsonl(odd), seq_len=8, source=str(odd))
    mixed = [{"prompt": "a", "completion": "b"}, {"prompt": "c"}]
    with pytest.raises(ValueError, match="record 1 lacks"):
        build_examples(tok, mixed, seq_len=8)
    with pytest.raises(ValueError, match="data_format='text'"):
        build_examples(tok, mixed[:1], seq_len=8, fmt="text")
