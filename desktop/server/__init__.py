"""A local, OpenAI-compatible HTTP API over the library's packs (``python main.py serve``).

``app`` builds the FastAPI routes, ``pool`` keeps engines resident under a memory budget
with one fair queue each, ``jobs`` runs them on worker threads, ``structured`` enforces
JSON output with llguidance, ``run`` binds the socket and runs uvicorn.
"""
