"""Text decoders: source loading (``source``), graph building (``configs`` through
onnxruntime-genai's builder, ``torch_graph`` through torch.onnx) and validation
(``validate``). Importing the package registers its configs."""

from . import configs  # noqa: F401 - registers the text configs
from .source import detect_architecture

__all__ = ["detect_architecture"]
