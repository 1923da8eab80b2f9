"""Image generation: the engine, its pipelines, schedulers and the image pack importer."""
