"""Packs: the manifest, the library, imports and the checks a pack passes before it loads."""
