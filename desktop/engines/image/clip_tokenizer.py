"""CLIP text tokenizer over HF ``tokenizers`` (no transformers at run time).

A Stable Diffusion ``tokenizer/`` folder holds either ``tokenizer.json`` (fast tokenizer,
used as is) or the original ``vocab.json`` + ``merges.txt``, from which we build the same
pipeline transformers' CLIP converter builds: NFC + whitespace folding + lowercase, a
regex split, byte-level BPE whose word-final pieces end in ``</w>``, and
``<|startoftext|> ... <|endoftext|>`` around the ids. Prompts are padded or cut to the
encoder's fixed length (77), and the caller learns when a prompt was cut.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from desktop.engines.errors import PackFormatError
from desktop.engines.text.tokenizer_errors import tokenizer_failure

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@dataclass
class Encoded:
    ids: list[int]  # exactly max_length ids
    truncated_words: str  # the part of the prompt the encoder will not see ("" if none)


class ClipTokenizer:
    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        folder = Path(folder)
        config = _read_json(folder / "tokenizer_config.json")
        specials = _read_json(folder / "special_tokens_map.json")
        if (folder / "tokenizer.json").is_file():
            try:
                self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException (tokenizer_errors.py)
                raise tokenizer_failure(exc, f"The tokenizer in '{folder.name}' cannot be read") from None
        elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            self.tok = _build_from_vocab(folder)
        else:
            raise PackFormatError(f"'{folder}' has neither tokenizer.json nor vocab.json + merges.txt.")
        self.tok.no_padding()
        self.tok.no_truncation()
        self.max_length = int(config.get("model_max_length") or 77)
        if self.max_length > 1024:  # transformers writes a huge sentinel when unknown
            self.max_length = 77
        self.bos_id = self._id(BOS)
        self.eos_id = self._id(EOS)
        pad = _token_text(config.get("pad_token") or specials.get("pad_token") or EOS)
        pad_id = self.tok.token_to_id(pad)
        self.pad_id = pad_id if pad_id is not None else self.eos_id

    def _id(self, token: str) -> int:
        found = self.tok.token_to_id(token)
        if found is None:
            raise PackFormatError(f"The CLIP tokenizer lacks the special token {token}.")
        return found

    def encode_weighted(self, chunks) -> tuple[Encoded, list[float]]:
        """Ids and one weight per id for a prompt parsed into weighted chunks (prompt_weights.py);
        each chunk is tokenized on its own, as A1111 does, so a weight covers exactly its words."""
        room, ids, weights, cut = self.max_length - 2, [], [], ""
        for k, chunk in enumerate(chunks):
            try:
                enc = self.tok.encode(chunk.text, add_special_tokens=False)
            except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException (tokenizer_errors.py)
                raise tokenizer_failure(exc, "The image model's tokenizer failed on this prompt") from None
            if len(ids) + len(enc.ids) > room:
                n = room - len(ids)
                start = enc.offsets[n][0]
                while start > 0 and not chunk.text[start - 1].isspace():
                    start -= 1
                cut = (chunk.text[start:] + "".join(c.text for c in chunks[k + 1 :])).strip()
                ids += enc.ids[:n]
                weights += [chunk.weight] * n
                break
            ids += enc.ids
            weights += [chunk.weight] * len(enc.ids)
        full = [self.bos_id, *ids, self.eos_id]
        pad = self.max_length - len(full)
        return Encoded(full + [self.pad_id] * pad, cut), [1.0, *weights, 1.0] + [1.0] * pad

    def encode(self, text: str) -> Encoded:
        try:
            enc = self.tok.encode(text, add_special_tokens=False)
        except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException (tokenizer_errors.py)
            raise tokenizer_failure(exc, "The image model's tokenizer failed on this prompt") from None
        body = enc.ids
        room = self.max_length - 2
        cut = ""
        if len(body) > room:
            start = enc.offsets[room][0]
            while start > 0 and not text[start - 1].isspace():  # report whole words
                start -= 1
            cut = text[start:].strip()
            body = body[:room]
        ids = [self.bos_id, *body, self.eos_id]
        ids += [self.pad_id] * (self.max_length - len(ids))
        return Encoded(ids, cut)


def _build_from_vocab(folder: Path):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab = _read_json(folder / "vocab.json")
    if not vocab:
        raise PackFormatError(f"'{folder / 'vocab.json'}' is empty or not valid JSON.")
    merges = []
    for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#version") or not line.strip():
            continue
        parts = line.split()
        if len(parts) == 2:
            merges.append((parts[0], parts[1]))
    model = models.BPE(vocab=vocab, merges=merges, unk_token=EOS, continuing_subword_prefix="", end_of_word_suffix="</w>", fuse_unk=False)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(_SPLIT), behavior="removed", invert=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    for special in (BOS, EOS):
        if special in vocab:
            from tokenizers import AddedToken

            tok.add_special_tokens([AddedToken(special, normalized=False)])
    return tok


def _token_text(value) -> str:
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return str(value)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PackFormatError(f"'{path.name}' in the tokenizer folder is not valid JSON.") from None
    return data if isinstance(data, dict) else {}
