"""response_format json_schema / json_object: every reply parses and validates, even from
a tiny random model whose unconstrained text is garbage (the grammar does the work)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.server.schemas_set import SCHEMAS

TEXT = "tiny-llama-fp32"


@pytest.mark.parametrize("max_tokens", [40, 160])
def test_json_schema_replies_always_parse_and_validate(client, max_tokens):
    """Even when the budget runs out mid-reply the reply closes as valid JSON; a schema
    whose shortest reply cannot fit in max_tokens is refused up front (400), never cut."""
    import openai

    assert len(SCHEMAS) >= 20
    failures, refused = [], []
    for i, schema in enumerate(SCHEMAS):
        jsonschema.Draft202012Validator.check_schema(schema)
        try:
            reply = client.chat.completions.create(
                model=TEXT,
                messages=[{"role": "user", "content": f"Fill in record {i}."}],
                response_format={"type": "json_schema", "json_schema": {"name": f"s{i}", "schema": schema, "strict": True}},
                max_tokens=max_tokens,
                temperature=1.0,
                seed=i,
            )
        except openai.BadRequestError as exc:
            assert "shortest reply" in str(exc)
            refused.append(i)
            continue
        text = reply.choices[0].message.content
        try:
            jsonschema.validate(json.loads(text), schema)
        except (ValueError, jsonschema.ValidationError) as exc:
            failures.append((i, text, str(exc)[:200]))
    assert not failures, failures
    assert len(refused) <= (2 if max_tokens < 100 else 0), refused


def test_json_object_mode_gives_an_object(client):
    for seed in range(5):
        reply = client.chat.completions.create(
            model=TEXT, messages=[{"role": "user", "content": "JSON please"}], response_format={"type": "json_object"}, max_tokens=60, seed=seed
        )
        assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_streamed_json_schema_reply_validates(client):
    schema = SCHEMAS[8]
    stream = client.chat.completions.create(
        model=TEXT, messages=[{"role": "user", "content": "nested"}], stream=True, max_tokens=80, seed=3,
        response_format={"type": "json_schema", "json_schema": {"name": "nested", "schema": schema}},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    jsonschema.validate(json.loads(text), schema)


def test_unusable_schema_is_a_clear_400(client):
    import openai

    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "x"}], response_format={"type": "yaml"})
