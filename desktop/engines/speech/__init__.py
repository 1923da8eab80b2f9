"""Speech: the engine, the voices, phonemes, sentences and the voice pack importer."""
