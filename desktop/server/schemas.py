"""Request bodies in OpenAI's shapes, so unmodified clients work.

Fields OpenAI defines that Atelier cannot honour are refused with a reason (400) rather
than ignored: a client asking for ``n=3`` or a frequency penalty must not silently get
something else. Unknown fields are ignored, as OpenAI's own server does with extras.
Atelier-specific knobs (``top_k``, ``repetition_penalty``, image ``steps``...) are extra
fields, which the openai package sends through ``extra_body``.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from desktop.engines.errors import RequestError


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Body):
    type: str
    text: str | None = None


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, list[ContentPart], None] = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.type != "text":
                raise RequestError(f"Message content of type '{part.type}' is not supported; send text.")
            parts.append(part.text or "")
        return "".join(parts)


class _Sampling(_Body):
    model: str
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    stop: Union[str, list[str], None] = None
    stream: bool = False
    n: int = 1
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: Any = None
    # Atelier extras (extra_body)
    top_k: int | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, ge=0.5, le=3)
    ignore_eos: bool = False  # benchmarks and tests: always produce max_tokens tokens (as in vLLM)

    def refuse_unsupported(self) -> None:
        if self.n != 1:
            raise RequestError("n must be 1: Atelier returns one choice per request.")
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise RequestError(
                    f"{name} is not supported; Atelier has a repetition_penalty (0.5-3, 1 = off) instead - "
                    "send it as an extra field."
                )
        if self.logprobs:
            raise RequestError("logprobs are not supported.")
        stops = self.stop_list()
        if len(stops) > 4 or any(len(s) > 200 for s in stops):
            raise RequestError("At most 4 stop strings of up to 200 characters each.")

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class StreamOptions(_Body):
    include_usage: bool = False


class ChatBody(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    response_format: dict[str, Any] | None = None
    stream_options: StreamOptions | None = None
    tools: Any = None

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.tools:
            raise RequestError("Tool calling is not supported; use response_format with a JSON schema.")


class CompletionBody(_Sampling):
    prompt: Union[str, list[str]]
    stream_options: StreamOptions | None = None
    echo: bool = False

    def prompt_text(self) -> str:
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1:
                raise RequestError("Send one prompt per request.")
            return self.prompt[0]
        return self.prompt


class ImageBody(_Body):
    model: str
    prompt: str = ""
    n: int = Field(default=1, ge=1, le=8)
    size: str | None = None
    response_format: Literal["b64_json"] | None = None
    # Atelier extras
    negative_prompt: str | None = None
    prompt_2: str | None = None  # SDXL's second text encoder (default: prompt)
    negative_prompt_2: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    scheduler: str | None = None


class SpeechBody(_Body):
    model: str
    input: str
    voice: str | None = None  # OpenAI voice names mean nothing here; a speaker name/number of the pack does
    response_format: Literal["wav", "flac"] = "wav"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    seed: int | None = None
