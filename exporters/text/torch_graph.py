"""torch.onnx export of a Hugging Face causal LM with an explicit KV-cache interface.

The graph takes ``input_ids, attention_mask, position_ids, past_key_values.{i}.key/value``
and returns ``logits, present.{i}.key/value`` - the layout optimum uses, so the same
plain-onnxruntime backend also runs folders exported by optimum.
"""

from __future__ import annotations

from pathlib import Path


def export_decoder(model, path: Path, layers: int, kv_heads: int, head_dim: int, opset: int = 17) -> None:
    import torch
    from transformers import DynamicCache

    class Flat(torch.nn.Module):
        """Flat tensors in and out: ONNX has no notion of a Cache object."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, position_ids, *past):
            cache = DynamicCache()
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, past_key_values=cache, use_cache=True, return_dict=True
            )
            flat = []
            for i in range(layers):
                layer = out.past_key_values.layers[i]
                flat += [layer.keys, layer.values]
            return (out.logits, *flat)

    model.config._attn_implementation = "eager"  # traceable attention; sdpa masks use vmap
    wrapper = Flat(model).eval()
    past_len, new_len = 3, 2
    past = []
    names_in = ["input_ids", "attention_mask", "position_ids"]
    names_out = ["logits"]
    dyn = {"input_ids": {1: "sequence_length"}, "attention_mask": {1: "total_sequence_length"}, "position_ids": {1: "sequence_length"}, "logits": {1: "sequence_length"}}
    for i in range(layers):
        for kind in ("key", "value"):
            past.append(torch.randn(1, kv_heads, past_len, head_dim))
            names_in.append(f"past_key_values.{i}.{kind}")
            names_out.append(f"present.{i}.{kind}")
            dyn[names_in[-1]] = {2: "past_sequence_length"}
            dyn[names_out[-1]] = {2: "total_sequence_length"}
    ids = torch.randint(0, model.config.vocab_size, (1, new_len))
    mask = torch.ones(1, past_len + new_len, dtype=torch.long)
    pos = torch.arange(past_len, past_len + new_len).unsqueeze(0)
    with torch.inference_mode():
        torch.onnx.export(
            wrapper,
            (ids, mask, pos, *past),
            str(path),
            input_names=names_in,
            output_names=names_out,
            dynamic_axes=dyn,
            opset_version=opset,
            dynamo=False,
        )
