"""The "Offline" status in Settings: one registry of named checks, one result type.

A check is registered with ``@offline_check("what is checked")`` and returns
``(ok, detail)``, where ``detail`` tells a person what was looked at. Checks must be quick
and never touch the network themselves. The Settings page runs them in a worker and lists
every :class:`CheckResult`.

Checks live with what they verify: the app's own in :mod:`desktop.offline.app_checks`, the
Hugging Face one in ``exporters.hub_offline`` (the export side knows how it switches the hub
off). The registry imports each provider by module name and skips one that is not
installed (the app bundle ships without exporters), so desktop/ never imports exporters.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Iterator

CHECK_PROVIDERS: tuple[str, ...] = ("desktop.offline.app_checks", "exporters.hub_offline")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


_CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {}


def offline_check(name: str):
    def deco(func: Callable[[], tuple[bool, str]]):
        _CHECKS[name] = func
        return func

    return deco


def load_providers(modules: tuple[str, ...] = CHECK_PROVIDERS) -> list[str]:
    """Import each provider (it registers its checks); the ones not installed are skipped.
    A provider that is installed but broken still raises: that is a bug, not an absence."""
    loaded = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not (module == exc.name or module.startswith(exc.name + ".")):
                raise
            continue
        loaded.append(module)
    return loaded


def run_checks() -> Iterator[CheckResult]:
    """Run every registered check; a check that crashes is a failed check, not a crash."""
    load_providers()
    for name, check in list(_CHECKS.items()):
        try:
            ok, detail = check()
        except Exception as exc:  # noqa: BLE001 - report, never break the Settings page
            ok, detail = False, f"the check itself failed: {exc}"
        yield CheckResult(name, bool(ok), detail)

