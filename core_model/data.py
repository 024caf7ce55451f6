"""Training data: jsonl text or prompt/completion records -> token batches with next-token labels.

Pretraining text is packed into fixed blocks (documents joined by EOS); SFT records are one example
each, with the loss on the completion only (prompt targets are IGNORE_INDEX).
"""
from __future__ import annotations

import sysconfig
from pathlib import Path
from typing import Iterator, Literal

import torch
from proofcode_common import iter_jsonl

IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index
STDLIB = "stdlib"  # the data source every Python install has: its own standard library sources


def read_jsonl(path: str | Path) -> list[dict]:
    """All records of a jsonl file; a bad line is reported with its line number."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"training data {path} does not exist (expected a .jsonl file or 'stdlib')")
    records = []
    for lineno, record in iter_jsonl(path):
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
        records.append(record)
    if not records:
        raise ValueError(f"training data {path} has no records")
    return records


def stdlib_texts(max_bytes: int = 3_000_000) -> list[str]:
    """Python standard library `.py` sources (sorted, so the corpus is the same on every run), up to `max_bytes`."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts, total = [], 0
    for file in sorted(root.rglob("*.py")):
        # site-packages lives under stdlib on some installs; it is not the standard library.
        if "site-packages" in file.parts or "dist-packages" in file.parts:
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text.encode("utf-8"))
        if total >= max_bytes:
            break
    if not texts:
        raise FileNotFoundError(f"no .py sources under the standard library directory {root}")
    return texts


def load_records(data: str, max_bytes: int | None = None) -> list[dict]:
    """Records from a jsonl path, or `{"text": source}` records from the standard library for `data="stdlib"`."""
    if data == STDLIB:
        return [{"text": t} for t in stdlib_texts(max_bytes or 3_000_000)]
    records = read_jsonl(data)
    if max_bytes:
        kept, total = [], 0
        for r in records:
            kept.append(r)
            total += sum(len(str(v)) for v in r.values())
            if total >= max_bytes:
                break
        records = kept
    return records


def detect_format(records: list[dict], source: str = "data") -> Literal["text", "sft"]:
    """`sft` if the records have prompt/completion, `text` if they have text; anything else is an error."""
    first = records[0]
    if "prompt" in first and "completion" in first:
        fmt, keys = "sft", ("prompt", "completion")
    elif "text" in first:
        fmt, keys = "text", ("text",)
    else:
        raise ValueError(
            f"{source}: records need a 'text' field (pretraining) or 'prompt' and 'completion' (SFT); "
            f"the first has {sorted(first)}"
        )
    for i, r in enumerate(records):
        missing = [k for k in keys if not isinstance(r.get(k), str)]
        if missing:
            raise ValueError(f"{source}: record {i} lacks string field(s) {missing} (format {fmt!r})")
    return fmt


def pack_text(tokenizer, texts: list[str], seq_len: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Concatenate documents (BOS doc EOS, as `generate` prompts start with BOS) and cut into blocks of
    seq_len inputs + shifted labels."""
    ids: list[int] = []
    eos = [tokenizer.eos_id] if tokenizer.eos_id is not None else []
    for doc in tokenizer.encode_batch(texts, add_bos=tokenizer.bos_id is not None):
        ids.extend(doc)
        ids.extend(eos)
    n_blocks = (len(ids) - 1) // seq_len
    if n_blocks == 0:
        raise ValueError(f"the training text has {len(ids)} tokens, fewer than one block of seq_len={seq_len}+1")
    flat = torch.tensor(ids[: n_blocks * seq_len + 1], dtype=torch.long)
    # Block k reads tokens [k*s, (k+1)*s) and predicts [k*s+1, (k+1)*s+1): no token is wasted at the seams.
    inputs = flat[:-1].view(n_blocks, seq_len)
    labels = flat[1:].view(n_blocks, seq_len)
    return list(zip(inputs, labels))


def sft_examples(tokenizer, records: list[dict], seq_len: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One example per record: BOS + prompt + completion + EOS, truncated to seq_len+1; loss on the completion only."""
    prompts = tokenizer.encode_batch([r["prompt"] for r in records], add_bos=True)
    completions = tokenizer.encode_batch([r["completion"] for r in records])
    eos = [tokenizer.eos_id] if tokenizer.eos_id is not None else []
    examples = []
    for p, c in zip(prompts, completions):
        ids = (p + c + eos)[: seq_len + 1]
        if len(ids) <= len(p):
            continue  # the prompt alone fills the window: nothing left to learn from
        inputs = torch.tensor(ids[:-1], dtype=torch.long)
        labels = torch.tensor(ids[1:], dtype=torch.long)
        labels[: len(p) - 1] = IGNORE_INDEX  # targets that are still prompt tokens
        examples.append((inputs, labels))
    if not examples:
        raise ValueError(f"no SFT example has completion tokens within seq_len={seq_len}; raise seq_len")
    return examples


def build_examples(tokenizer, records: list[dict], seq_len: int, fmt: str = "auto", source: str = "data"):
    """Examples for `fmt` ('text', 'sft' or 'auto' to detect it from the records)."""
    detected = detect_format(records, source)
    if fmt != "auto" and fmt != detected:
        raise ValueError(f"{source}: data_format={fmt!r} but the records look like {detected!r}")
    if detected == "sft":
        return sft_examples(tokenizer, records, seq_len)
    return pack_text(tokenizer, [r["text"] for r in records], seq_len)


class Batches:
    """Endless shuffled batches over examples; (epoch, position) is the whole state, so a resumed run
    sees exactly the batches the uninterrupted run would have."""

    def __init__(self, examples, batch_size: int, pad_id: int, seed: int = 0):
        if not examples:
            raise ValueError("no training examples")
        self.examples = examples
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.examples), generator=g).tolist()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
        self._order = self._permutation()

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids[b, s], labels[b, s]); short examples are right-padded with pad_id / IGNORE_INDEX."""
        picked = []
        while len(picked) < self.batch_size:
            if self.position >= len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation()
            picked.append(self.examples[self._order[self.position]])
            self.position += 1
        width = max(len(x) for x, _ in picked)
        inputs = torch.full((len(picked), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(picked), width), IGNORE_INDEX, dtype=torch.long)
        for row, (x, y) in enumerate(picked):
            inputs[row, : len(x)] = x
            labels[row, : len(y)] = y
        return inputs, labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next()
