"""Chat templates from packs render within time and size limits, and the sandbox holds.

Rendering happens before the first token, where Stop cannot reach, so a hostile template
must end by itself: within ~2 s, without building gigabytes, with a typed error."""

from __future__ import annotations

import json
import resource
import shutil
import time
from pathlib import Path

import pytest

from desktop.engines.text.chat_template import ChatTemplate
from desktop.engines.errors import PackFormatError
from desktop.engines.text.template_limits import MAX_SECONDS
from tests.test_cli import cli, env_with
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
SLACK_S = 6.0  # a loaded CI machine: the limit is 2 s, the test allows it to take 3x longer

# name -> template; every one would hang or allocate gigabytes without the limits
HOSTILE = {
    "nested range loops": "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "nested loops printing": "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
    "recursive loop": "{% for x in range(99999) recursive %}{{ loop(range(99999)) }}{% endfor %}",
    "string times 10^10": "{{ 'x' * 10**10 }}",
    "string times a product": "{{ 'x' * 99999 * 99999 }}",
    "list times": "{{ (['x' * 99999] * 99999) | length }}",
    "power tower": "{{ 2 ** (10**10) }}",
    "repeated squaring": "{% set ns = namespace(x=10) %}{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x > 1 }}",
    "doubling with ~": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "doubling with +": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "printing 10 GB": "{% set s = 'x' * 99999 %}{% for i in range(99999) %}{{ s }}{% endfor %}",
    "filter block": "{% set s = 'x' * 99999 %}{% filter upper %}{% for i in range(99999) %}{{ s }}{% endfor %}{% endfilter %}",
    "set block": "{% set s = 'x' * 99999 %}{% set b %}{% for i in range(99999) %}{{ s }}{% endfor %}{% endset %}{{ b | length }}",
    "macro output": "{% macro m() %}{% for i in range(99999) %}{{ 'y' * 99999 }}{% endfor %}{% endmacro %}{{ m() | length }}",
    "ljust": "{{ 'x'.ljust(10**10) }}",
    "center method": "{{ 'x'.center(10**10) }}",
    "zfill": "{{ '1'.zfill(10**10) }}",
    "center filter": "{{ 'x' | center(10**10) }}",
    "indent filter": "{{ ('x\n' * 1000) | indent(10**9) }}",
    "printf width": "{{ '%0999999999d' % 1 }}",
    "printf star width": "{{ '%*d' % (10**10, 1) }}",
    "format method width": "{{ '{:>9999999999}'.format(1) }}",
    "format nested width": "{{ '{:>{}}'.format(1, 10**10) }}",
    "format filter width": "{{ '%0999999999d' | format(1) }}",
    "replace method": "{% set ns = namespace(s='x' * 1000) %}{% for i in range(9) %}{% set ns.s = ns.s.replace('x', ns.s) %}{% endfor %}",
    "replace filter": "{% set ns = namespace(s='x' * 1000) %}{% for i in range(9) %}{% set ns.s = ns.s | replace('x', ns.s) %}{% endfor %}",
    "expandtabs": "{{ ('\t' * 100000).expandtabs(100000) }}",
    "join filter of big parts": "{{ range(99999) | map('string') | map('center', 99999) | join }}",
    "join method": "{% set s = 'x' * 99999 %}{{ ''.join([s] * 20000) }}",
    "many replace results": "{% set s = 'y' * 3000000 %}{{ range(99999) | map('replace', '1', s) | list | length }}",
    "self-nested list printed": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "self-nested list as JSON": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l | tojson }}",
    "tojson indent": "{{ messages | tojson(indent=10**9) }}",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_template_stops_fast_with_a_typed_error(name):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    template = ChatTemplate(HOSTILE[name])
    start = time.monotonic()
    with pytest.raises(PackFormatError, match="chat template"):
        template.render(MESSAGES)
    assert time.monotonic() - start < MAX_SECONDS + SLACK_S
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 600, f"{name}: peak memory grew by {grown_mb:.0f} MB"


def test_constant_expressions_are_not_evaluated_while_compiling():
    # Jinja folds constant {{ ... }} at compile time, outside the render's checks.
    start = time.monotonic()
    template = ChatTemplate("{{ '%0999999999d' | format(1) }}{{ 'ab' | center(10**10) }}")
    assert time.monotonic() - start < 2
    with pytest.raises(PackFormatError):
        template.render(MESSAGES)


def test_sandbox_still_refuses_python_internals():
    for source in (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ raise_exception.__globals__['os'] }}",
        "{% set x = messages.append({'role': 'user', 'content': 'x'}) %}",
    ):
        try:
            rendered = ChatTemplate(source).render(MESSAGES)
        except PackFormatError:
            continue
        # unsafe attributes read as undefined (empty): nothing of Python leaks out
        assert not any(word in rendered for word in ("class", "module", "function", "built-in")), (source, rendered[:200])
        assert len(MESSAGES) == 2


def test_ordinary_templates_render_as_before():
    """The limits change nothing for real templates (ChatML, Llama-3 style with
    namespace/tojson/format), even with a long conversation."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from desktop.engines.text.chat_template import CHATML

    llama3ish = (
        "{{ bos_token }}{% set ns = namespace(sys='') %}{% for m in messages %}{% if m['role'] == 'system' %}{% set ns.sys = m['content'] %}"
        "{% endif %}{% endfor %}{{ ns.sys | tojson }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
        " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
        "{% endif %}{{ '%s-%d' | format('a', 3) }}{{ 'x'.ljust(5) }}{{ ', '.join(['a', 'b']) }}{{ messages | length }}{{ 'ab' * 3 }}"
    )
    long_chat = [{"role": "system", "content": "be nice"}] + [{"role": ["user", "assistant"][i % 2], "content": "hello world " * 300} for i in range(41)]
    for source in (CHATML, llama3ish):
        plain = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(source)
        expected = plain.render(messages=long_chat, add_generation_prompt=True, bos_token="<s>")
        assert ChatTemplate(source, {"bos_token": "<s>"}).render(long_chat) == expected


def test_limits_are_per_render_and_leave_no_trace_behind():
    import sys

    bad = ChatTemplate(HOSTILE["nested range loops"])
    before = sys.gettrace()
    with pytest.raises(PackFormatError):
        bad.render(MESSAGES)
    assert sys.gettrace() is before
    # the next render starts with a fresh budget and deadline
    assert ChatTemplate(None).render(MESSAGES).endswith("<|im_start|>assistant\n")


def _pack_with_template(base: Path, dest: Path, source: str) -> Path:
    from tests.fuzz_cases import _rehash

    shutil.copytree(base, dest)
    (dest / "chat_template.jinja").write_text(source, encoding="utf-8")
    _rehash(dest)
    return dest


def test_real_engine_refuses_a_hanging_template(tiny_text_pack, tmp_path):  # noqa: F811
    from desktop.engines.base import open_engine
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest

    pack = _pack_with_template(tiny_text_pack, tmp_path / "p", HOSTILE["nested range loops"])
    engine = open_engine(load_pack(pack))
    try:
        start = time.monotonic()
        with pytest.raises(PackFormatError, match="did not finish within"):
            list(engine.generate(ChatRequest([{"role": "user", "content": "hi"}], max_tokens=2, sampling=SamplingSettings(seed=0))))
        assert time.monotonic() - start < MAX_SECONDS + SLACK_S
    finally:
        engine.close()


@pytest.mark.parametrize("name", ["nested range loops", "string times 10^10", "doubling with ~"])
def test_cli_text_with_hostile_template_is_one_line_exit_2(name, tiny_text_pack, tmp_path, atelier_home):  # noqa: F811
    pack = _pack_with_template(tiny_text_pack, tmp_path / "p", HOSTILE[name])
    start = time.monotonic()
    r = cli("text", "--model", str(pack), "--prompt", "hi", "--max-tokens", "2", env=env_with(atelier_home))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: The pack's chat template was stopped") and r.stderr.count("\n") == 1, r.stderr
    assert time.monotonic() - start < 60
    assert json.loads((pack / "manifest.json").read_text())["modality"] == "text"


def test_format_fields_repeating_a_big_argument_are_refused_before_formatting():
    # '{0}' a million times over a 1 MB argument: each check alone passes, the product is 1 TB
    template = ChatTemplate("{% set b = 'x' * 1000000 %}{{ ('{0}' * 1000000).format(b) }}")
    with pytest.raises(PackFormatError, match="formatted string"):
        template.render(MESSAGES)
