"""Byte-level BPE tokenizers in Hugging Face `tokenizer.json` format: load one, or train one on a corpus."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

# DeepSeek's own special-token spellings, so a tokenizer trained here reads like a DeepSeek one.
BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"
PAD_TOKEN = "<｜▁pad▁｜>"
DEFAULT_SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)

# Spellings tried, in order, when a tokenizer.json arrives without a tokenizer_config.json.
_BOS_GUESSES = (BOS_TOKEN, "<s>", "<|begin_of_text|>", "<|startoftext|>", "<|bos|>")
_EOS_GUESSES = (EOS_TOKEN, "</s>", "<|end_of_text|>", "<|endoftext|>", "<|eos|>", "<|im_end|>")
_PAD_GUESSES = (PAD_TOKEN, "<pad>", "<|pad|>", "<|padding|>")


class Tokenizer:
    """A `tokenizers.Tokenizer` plus the ids of its BOS/EOS/PAD tokens; what the model code expects."""

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        bos_token: str | None = None,
        eos_token: str | None = None,
        pad_token: str | None = None,
        model_max_length: int | None = None,
    ):
        self.backend = backend
        self.bos_token = bos_token if bos_token is not None else _first_present(backend, _BOS_GUESSES)
        self.eos_token = eos_token if eos_token is not None else _first_present(backend, _EOS_GUESSES)
        # No pad token: pad with EOS, as DeepSeek's own config does; padding is always masked anyway.
        self.pad_token = pad_token if pad_token is not None else (_first_present(backend, _PAD_GUESSES) or self.eos_token)
        self.model_max_length = model_max_length
        for role, token in (("bos", self.bos_token), ("eos", self.eos_token), ("pad", self.pad_token)):
            if token is not None and backend.token_to_id(token) is None:
                raise ValueError(f"{role} token {token!r} is not in the tokenizer's vocabulary")

    @property
    def bos_id(self) -> int | None:
        return None if self.bos_token is None else self.backend.token_to_id(self.bos_token)

    @property
    def eos_id(self) -> int | None:
        return None if self.eos_token is None else self.backend.token_to_id(self.eos_token)

    @property
    def pad_id(self) -> int | None:
        return None if self.pad_token is None else self.backend.token_to_id(self.pad_token)

    @property
    def vocab_size(self) -> int:
        """Number of ids including added special tokens (the embedding table needs at least this many rows)."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        """Token ids of `text`; special tokens written in the text are recognised, none are added unless `add_bos`."""
        ids = self.backend.encode(text, add_special_tokens=False).ids
        if add_bos:
            if self.bos_id is None:
                raise ValueError("add_bos=True but this tokenizer has no BOS token")
            ids = [self.bos_id, *ids]
        return ids

    def encode_batch(self, texts: Sequence[str], add_bos: bool = False) -> list[list[int]]:
        """`encode` for many texts at once (the Rust backend runs them in parallel)."""
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=False)
        prefix = [self.bos_id] if add_bos and self.bos_id is not None else []
        return [prefix + e.ids for e in encodings]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids`; special tokens (BOS/EOS/PAD, ...) are dropped unless `skip_special_tokens=False`."""
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def save(self, directory: str | Path) -> Path:
        """Write `tokenizer.json` and `tokenizer_config.json` (loadable by `transformers.AutoTokenizer`)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(directory / "tokenizer.json"))
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "pad_token": self.pad_token,
            "unk_token": None,
            "add_bos_token": False,
            "add_eos_token": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": self.model_max_length or 1_048_576,
        }
        (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return directory

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, bos_id={self.bos_id}, eos_id={self.eos_id}, pad_id={self.pad_id})"


def _first_present(backend: tokenizers.Tokenizer, candidates: Sequence[str]) -> str | None:
    return next((t for t in candidates if backend.token_to_id(t) is not None), None)


def _token_content(value) -> str | None:
    # tokenizer_config.json writes special tokens either as a string or as an AddedToken dict.
    if isinstance(value, dict):
        return value.get("content")
    return value


def load_tokenizer(path_or_dir: str | Path) -> Tokenizer:
    """Load `tokenizer.json` (a file, or a directory holding one, e.g. a model checkpoint) and its config."""
    path = Path(path_or_dir).expanduser()
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        where = f"directory {path} has no tokenizer.json" if path.is_dir() else f"{path} does not exist"
        raise FileNotFoundError(f"cannot load tokenizer: {where}; pass a tokenizer.json or a directory holding one")
    try:
        backend = tokenizers.Tokenizer.from_file(str(file))
    except Exception as exc:
        raise ValueError(f"cannot load tokenizer {file}: not a Hugging Face tokenizer.json ({exc})") from exc
    config_file = file.parent / "tokenizer_config.json"
    config = {}
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"cannot load tokenizer: {config_file} is not valid JSON ({exc})") from exc
    max_length = config.get("model_max_length")
    return Tokenizer(
        backend,
        bos_token=_token_content(config.get("bos_token")),
        eos_token=_token_content(config.get("eos_token")),
        pad_token=_token_content(config.get("pad_token")),
        model_max_length=int(max_length) if isinstance(max_length, (int, float)) and max_length < 1e18 else None,
    )


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    min_frequency: int = 2,
    show_progress: bool = False,
) -> Tokenizer:
    """Train a byte-level BPE (GPT-2 style: any byte string round-trips) on `texts`.

    `special_tokens` take the first ids, in order; the first three are BOS, EOS and PAD.
    """
    special_tokens = list(special_tokens)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(special_tokens):
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least "
            f"{len(alphabet) + len(special_tokens)} ids (256 bytes + {len(special_tokens)} special tokens)"
        )
    backend = tokenizers.Tokenizer(models.BPE())
    # The split regex keeps words, numbers and punctuation apart so merges stay meaningful.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=alphabet,
        show_progress=show_progress,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    roles = (special_tokens + [None, None, None])[:3]
    return Tokenizer(backend, bos_token=roles[0], eos_token=roles[1], pad_token=roles[2] or roles[1])
