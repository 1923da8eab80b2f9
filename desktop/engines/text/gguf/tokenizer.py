"""A Hugging Face ``tokenizers`` tokenizer rebuilt from a GGUF's ``tokenizer.ggml.*`` metadata.

A GGUF carries no tokenizer.json: it stores the vocabulary, merges, token types and
special ids under llama.cpp's keys. We rebuild the same tokenizer transformers builds
from them (``transformers.integrations.gguf``), so ids agree token for token:

* ``gpt2`` - byte-level BPE: vocabulary spelled in the byte alphabet, the file's merges,
  a split regex chosen by ``tokenizer.ggml.pre`` (else GPT-2's), ByteLevel decoding;
* ``llama`` - SentencePiece BPE: ``▁`` for spaces (prefixed once), byte fallback, merges
  from the file or, when absent, derived from the vocabulary and its scores.

Tokens typed CONTROL become special tokens (skipped when decoding) and USER_DEFINED ones
plain added tokens, so ``<|im_end|>`` or ``<think>`` are matched whole in text.
"""

from __future__ import annotations

from desktop.engines.text.gguf.reader import GGUFFile, GGUFFormatError

CONTROL, USER_DEFINED = 3, 4

_LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPLITS = {
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "smaug-bpe", "dbrx", "pixtral"), _LLAMA3_SPLIT),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen"), _QWEN2_SPLIT),
}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def build_tokenizer(gf: GGUFFile):
    """-> (tokenizers.Tokenizer, tokenizer_config dict for the pack)."""
    kind = gf.get("tokenizer.ggml.model")
    tokens = gf.array("tokenizer.ggml.tokens")
    if not tokens:
        raise GGUFFormatError(f"'{gf.path.name}' has no tokenizer vocabulary (tokenizer.ggml.tokens); it cannot be chatted with.")
    types = gf.array("tokenizer.ggml.token_type") or []
    if kind == "gpt2":
        tok = _byte_level(gf, tokens)
    elif kind == "llama":
        tok = _sentencepiece(gf, tokens)
    else:
        raise GGUFFormatError(f"'{gf.path.name}' uses a '{kind}' tokenizer; Atelier can rebuild 'gpt2' (byte-level BPE) and 'llama' (SentencePiece BPE) ones.")
    _add_special_tokens(tok, tokens, types, byte_level=kind == "gpt2")
    return tok, _tokenizer_config(gf, tokens, kind)


def _byte_level(gf: GGUFFile, tokens: list[str]):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    spelling = bytes_to_unicode()
    alphabet = set(spelling.values())
    vocab = {}
    for index, token in enumerate(tokens):
        spelled = token if set(token) <= alphabet else "".join(spelling[b] for b in token.encode("utf-8"))
        vocab.setdefault(spelled, index)
    merges = [tuple(m.split(" ", 1)) for m in (gf.array("tokenizer.ggml.merges") or [])]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, continuing_subword_prefix="", end_of_word_suffix=""))
    split = SPLITS.get(gf.get("tokenizer.ggml.pre"))
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    return tok


def _sentencepiece(gf: GGUFFile, tokens: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {}
    for index, token in enumerate(tokens):
        vocab.setdefault(token, index)
    merges = gf.array("tokenizer.ggml.merges")
    if merges:
        merges = [tuple(m.split(" ", 1)) for m in merges]
    else:
        scores = gf.array("tokenizer.ggml.scores") or [0.0] * len(tokens)
        merges = _merges_from_scores(vocab, dict(zip(tokens, scores)))
    unk = gf.get("tokenizer.ggml.unknown_token_id")
    unk_token = tokens[unk] if isinstance(unk, int) and 0 <= unk < len(tokens) else None
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk_token, fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(content=" ", left=1)])
    return tok


def _merges_from_scores(vocab: dict[str, int], scores: dict[str, float]) -> list[tuple[str, str]]:
    """Every split of a token into two vocabulary pieces, best-scored token first (as
    transformers derives them for files without merges)."""
    merges = []
    for token, score in scores.items():
        local = [(token[:i], token[i:], score) for i in range(1, len(token)) if token[:i] in vocab and token[i:] in vocab]
        merges.extend(sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]])))
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(a, b) for a, b, _ in merges]


def _add_special_tokens(tok, tokens: list[str], types: list[int], byte_level: bool) -> None:
    from tokenizers import AddedToken

    spelled = set(bytes_to_unicode().values()) if byte_level else None
    control = [
        AddedToken(t, normalized=False, special=True)
        for t, kind in zip(tokens, types)
        if kind == CONTROL and (spelled is None or set(t) <= spelled)  # a byte-level control token outside the alphabet is mislabelled
    ]
    if control:
        tok.add_special_tokens(control)
    user = [AddedToken(t, normalized=False, special=False) for t, kind in zip(tokens, types) if kind == USER_DEFINED and tok.token_to_id(t) is not None]
    if user:
        tok.add_tokens(user)


def _tokenizer_config(gf: GGUFFile, tokens: list[str], kind: str) -> dict:
    def token(key: str):
        i = gf.get(f"tokenizer.ggml.{key}")
        return tokens[i] if isinstance(i, int) and 0 <= i < len(tokens) else None

    add_bos = gf.get("tokenizer.ggml.add_bos_token")
    config = {
        "bos_token": token("bos_token_id"),
        "eos_token": token("eos_token_id"),
        "unk_token": token("unknown_token_id"),
        "pad_token": token("padding_token_id"),
        # llama.cpp adds BOS to SentencePiece vocabularies that do not say otherwise
        "add_bos_token": bool(add_bos) if add_bos is not None else kind == "llama",
        "add_eos_token": bool(gf.get("tokenizer.ggml.add_eos_token", False)),
        "model_max_length": None,
    }
    template = gf.get("tokenizer.chat_template")
    if isinstance(template, str) and template.strip():
        config["chat_template"] = template
    return {k: v for k, v in config.items() if v is not None}
