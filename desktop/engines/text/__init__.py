"""Text generation: the engine, its ONNX Runtime backends, sampling, chat templates and GGUF import."""
