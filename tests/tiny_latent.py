"""A tiny random class-conditioned latent generator exported to ONNX as a real pack
(architecture ``latent-generator``): z [B, 8] + class weights [B, 3] -> pixels [B, 1, 8, 8]."""

from __future__ import annotations

from pathlib import Path

CLASSES = ["circle", "square", "cross"]


def tiny_latent_pack(folder: Path) -> Path:
    import torch

    from desktop.engines.packs.pack import write_manifest

    torch.manual_seed(0)

    class Gen(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8 + len(CLASSES), 32), torch.nn.Tanh(), torch.nn.Linear(32, 64))

        def forward(self, z, class_weights):
            return torch.sigmoid(3 * self.net(torch.cat([z, class_weights], 1))).view(-1, 1, 8, 8)

    folder.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Gen().eval(), (torch.randn(1, 8), torch.eye(len(CLASSES))[:1]), str(folder / "generator.onnx"),
                      input_names=["z", "class_weights"], output_names=["pixels"], dynamic_axes={"z": {0: "b"}, "class_weights": {0: "b"}, "pixels": {0: "b"}},
                      opset_version=17, dynamo=False)
    write_manifest(folder, {
        "name": "tiny-latent", "modality": "image", "architecture": "latent-generator", "runtime": "onnxruntime", "precision": "fp32",
        "config": {"z_dim": 8, "classes": CLASSES, "image_size": [8, 8], "output_range": "0,1"},
        "license": {"id": "apache-2.0"}, "model_card": "A tiny random generator for tests.",
    }, {"generator.onnx": "generator"})
    return folder
