"""Fault hooks for tests and benchmarks: failing, blocking and slow writes.

* ``fail_on`` (``SBKUBE_MEMORY_FAIL_ON=a,b``): a write (create, update, patch, apply; never a
  delete or a dry run) of an object whose ``metadata.name`` is in the set, or whose
  ``meta.helm.sh/release-name`` annotation is (every object of that Helm release), answers
  500 InternalError. Helm's own release Secrets (label ``owner=helm``) are never failed, so
  helm records the failed revision as it would on a real cluster.
* ``block_on`` (``SBKUBE_MEMORY_BLOCK_ON=name``): the first such write flushes the state file,
  prints ``BLOCKED name`` to stderr and never answers (the test kills the client, or the
  process); later writes of that name go through.
* ``latency_ms`` (``SBKUBE_MEMORY_LATENCY_MS``): every request first sleeps that long, as a
  remote cluster's round trip would take.
* ``hang_on`` (``SBKUBE_MEMORY_HANG_ON=REGEX``): every request whose ``METHOD /path?query``
  the regular expression matches (``re.search``) is read and never answered, for as long as
  the server runs, as an API server that lost a request would behave (a client without a
  timeout waits for ever). ``HUNG METHOD /path`` is printed to stderr first, each time, so a
  test waits on the event. Unlike ``block_on`` it holds any request, reads included, and
  holds it every time; the state is not flushed first (nothing was written).

The readiness controller's holds (controller.py) are set the same way:

* ``unready`` (``SBKUBE_MEMORY_UNREADY=name,...``): objects observed but never ready;
* ``progressing`` (``SBKUBE_MEMORY_PROGRESSING=web:3,api``): Progressing for 3 controller
  ticks after their first write (``web``), or until released (``api``);
* ``degraded`` (``SBKUBE_MEMORY_DEGRADED=name,...``): a Deployment past its progress
  deadline, a failed Job or Pod, a lost PVC;
* ``tick_seconds`` (``SBKUBE_MEMORY_TICK_SECONDS``, default 1): how often the controller
  ticks (0: only when a test calls ``ApiServer.tick()``).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

FAIL_ON_ENV_VAR = "SBKUBE_MEMORY_FAIL_ON"
BLOCK_ON_ENV_VAR = "SBKUBE_MEMORY_BLOCK_ON"
UNREADY_ENV_VAR = "SBKUBE_MEMORY_UNREADY"
LATENCY_ENV_VAR = "SBKUBE_MEMORY_LATENCY_MS"
HANG_ENV_VAR = "SBKUBE_MEMORY_HANG_ON"
PROGRESSING_ENV_VAR = "SBKUBE_MEMORY_PROGRESSING"
DEGRADED_ENV_VAR = "SBKUBE_MEMORY_DEGRADED"
TICK_ENV_VAR = "SBKUBE_MEMORY_TICK_SECONDS"
DEFAULT_TICK_SECONDS = 1.0
RELEASE_ANNOTATION = "meta.helm.sh/release-name"


def names_from_env(var: str) -> set[str]:
    return {part.strip() for part in os.environ.get(var, "").split(",") if part.strip()}


def names(given: Iterable[str] | None, env_var: str) -> set[str]:
    """The given names, or (when None) the ones the environment variable lists."""
    return set(given) if given is not None else names_from_env(env_var)


def progressing_from_env(given: Mapping[str, int | None] | None) -> dict[str, int | None]:
    """The given holds, or (when None) ``SBKUBE_MEMORY_PROGRESSING``'s ``name[:ticks]``."""
    if given is not None:
        return dict(given)
    holds: dict[str, int | None] = {}
    for part in names_from_env(PROGRESSING_ENV_VAR):
        name, _, ticks = part.partition(":")
        try:
            holds[name.strip()] = int(ticks) if ticks.strip() else None
        except ValueError:
            raise ValueError(f"{PROGRESSING_ENV_VAR}: {part!r} is not name or name:ticks") from None
    return holds


def tick_seconds_from_env(given: float | None) -> float:
    if given is not None:
        return float(given)
    raw = os.environ.get(TICK_ENV_VAR, "").strip()
    try:
        return float(raw) if raw else DEFAULT_TICK_SECONDS
    except ValueError:
        return DEFAULT_TICK_SECONDS


def latency_from_env(given: float | None) -> float:
    if given is not None:
        return float(given)
    raw = os.environ.get(LATENCY_ENV_VAR, "").strip()
    try:
        return float(raw) if raw else 0.0
    except ValueError:
        return 0.0


def hang_from_env(given: str | None) -> re.Pattern[str] | None:
    """The given pattern, or (when None) ``SBKUBE_MEMORY_HANG_ON``'s; None when empty."""
    text = given if given is not None else os.environ.get(HANG_ENV_VAR, "")
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise ValueError(f"{HANG_ENV_VAR}: {text!r} is not a regular expression: {exc}") from None


class Faults:
    """The fault hooks of one server. The sets are mutable, so a test can change them live."""

    def __init__(
        self,
        fail_on: Iterable[str] | None = None,
        block_on: Iterable[str] | None = None,
        latency_ms: float | None = None,
        hang_on: str | None = None,
    ) -> None:
        self.fail_on = names(fail_on, FAIL_ON_ENV_VAR)
        self.block_on = names(block_on, BLOCK_ON_ENV_VAR)
        self.latency_ms = latency_from_env(latency_ms)
        self.hang_on = hang_from_env(hang_on)

    def hang(self, request: str) -> None:
        """Never return when ``hang_on`` matches ``request`` (``METHOD /path?query``)."""
        if self.hang_on is None or not self.hang_on.search(request):
            return
        sys.stderr.write(f"HUNG {request}\n")
        sys.stderr.flush()
        threading.Event().wait()

    @staticmethod
    def _hit(names_set: set[str], obj: Mapping[str, Any]) -> str | None:
        if not names_set:
            return None
        metadata = obj.get("metadata") or {}
        if (metadata.get("labels") or {}).get("owner") == "helm":
            return None
        name = metadata.get("name")
        if name in names_set:
            return str(name)
        release = (metadata.get("annotations") or {}).get(RELEASE_ANNOTATION)
        return str(release) if release in names_set else None

    def verdict(self, obj: Mapping[str, Any]) -> tuple[str, str] | None:
        """("block", name), ("fail", message) or None for a write of ``obj``."""
        blocked = self._hit(self.block_on, obj)
        if blocked is not None:
            # One write is held, not every later one: a served cluster outlives the client
            # it holds, and the next client (recovering what the first left) must get through.
            self.block_on.discard(blocked)
            return "block", blocked
        failed = self._hit(self.fail_on, obj)
        if failed is not None:
            return "fail", f"sbkube memory cluster: injected failure for {failed}"
        return None

    @staticmethod
    def hold(name: str, flush: Callable[[], None]) -> None:
        """Saves the state, says BLOCKED, and never returns (the test kills the process)."""
        flush()
        sys.stderr.write(f"BLOCKED {name}\n")
        sys.stderr.flush()
        threading.Event().wait()
