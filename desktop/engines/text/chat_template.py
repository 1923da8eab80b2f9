"""Chat templates from a tokenizer's own config, rendered in a sandbox.

Templates ship inside packs, which may come from anywhere, so they run in Jinja's
immutable sandbox: they can format strings, never reach Python objects or files; and
within time and size limits (template_limits.py), so they cannot hang or fill memory.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from desktop.engines.errors import PackFormatError

# Used when a pack carries no template: the ChatML layout most small instruct models use.
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def find_template(folder: Path) -> str | None:
    jinja_file = folder / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8")
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            data = json.loads(cfg.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise PackFormatError(f"{cfg} is not valid JSON.") from None
        tpl = data.get("chat_template")
        if isinstance(tpl, list):  # named templates: take the default one
            tpl = next((t.get("template") for t in tpl if t.get("name") == "default"), None)
        if isinstance(tpl, str):
            return tpl
    return None


class ChatTemplate:
    def __init__(self, source: str | None, special_tokens: dict[str, str] | None = None):
        from jinja2 import TemplateError

        from desktop.engines.text.template_limits import BoundedSandboxEnvironment, TemplateLimitExceeded, compile_bounded

        self.source = source or CHATML
        env = BoundedSandboxEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            self._template = compile_bounded(env, self.source)
        except TemplateLimitExceeded as exc:
            raise PackFormatError(f"The pack's chat template was stopped while compiling: {exc}.") from None
        except (TemplateError, RecursionError, MemoryError) as exc:
            raise PackFormatError(f"The pack's chat template does not parse: {exc}") from None
        self._specials = special_tokens or {}

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        from jinja2 import TemplateError

        from desktop.engines.text.template_limits import TemplateLimitExceeded, render_bounded

        try:
            return render_bounded(self._template, messages=messages, add_generation_prompt=add_generation_prompt, **self._specials)
        except TemplateLimitExceeded as exc:
            # Rendering happens before the first token, where Stop cannot reach: the limits
            # are the only thing between a hostile template and a hung or swapping machine.
            raise PackFormatError(f"The pack's chat template was stopped: {exc}. Use another model or fix its chat template.") from None
        except MemoryError:
            raise PackFormatError("The pack's chat template ran out of memory while rendering. Use another model or fix its chat template.") from None
        except TemplateError as exc:
            raise PackFormatError(f"The pack's chat template failed on this conversation: {exc}") from None
        except (ArithmeticError, RecursionError, TypeError, ValueError, LookupError, AttributeError) as exc:
            # A template from a pack can also trip the sandbox's range limit or plain Python
            # errors; it is still the pack's template failing, so the user hears about the pack.
            raise PackFormatError(f"The pack's chat template failed on this conversation: {exc}") from None


def _raise(message: str):
    from jinja2 import TemplateError

    raise TemplateError(message)
