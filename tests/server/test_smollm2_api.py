"""Slow: the real SmolLM2 pack served over the API and asked by the openai client."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import openai
import pytest

from tests.engines.test_smollm2_real import smollm2_pack  # noqa: F401 - the shared fixture
from tests.server.conftest import start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol_pack(request):
    """The default pack setup installed (read only), else the shared export (slow when cold)."""
    from platformdirs import user_data_dir

    from desktop.engines.packs.pack import load_pack

    installed = Path(user_data_dir("Atelier", appauthor=False)) / "models" / "smollm2-135m-instruct"
    if (installed / "manifest.json").is_file():
        return load_pack(installed)
    return request.getfixturevalue("smollm2_pack")


@pytest.fixture(scope="module")
def smol_server(smol_pack, tmp_path_factory):
    library = tmp_path_factory.mktemp("smol-library")
    (library / "smollm2").symlink_to(smol_pack.root, target_is_directory=True)
    srv = start_server(library)
    yield srv, smol_pack.name
    srv.stop()


def test_capital_of_france_over_the_api(smol_server):
    srv, name = smol_server
    with openai.OpenAI(base_url=srv.url, api_key="local", max_retries=0, timeout=300) as client:
        reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "What is the capital of France?"}], temperature=0, max_tokens=40)
        assert "Paris" in reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
        schema = {"type": "object", "properties": {"country": {"type": "string"}, "capital": {"type": "string"}}, "required": ["country", "capital"]}
        structured = client.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "Give the capital of France as JSON."}], temperature=0, max_tokens=60,
            response_format={"type": "json_schema", "json_schema": {"name": "capital", "schema": schema}},
        )
        answer = json.loads(structured.choices[0].message.content)
        jsonschema.validate(answer, schema)
        assert answer["capital"] == "Paris"
