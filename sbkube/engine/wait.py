"""``wait: true`` for a YAML app: done once its objects are healthy, as ``helm --wait`` is for
a chart.

After the apply, :func:`wait_healthy` polls the app's objects through the cluster port (one
LIST per kind and namespace, ``Objects.list_many``) and judges each with
``health.object_health`` (Argo CD's rules), until

* every object is Healthy (or Suspended: a paused rollout never becomes Healthy by waiting):
  it returns the seconds it took, which the deployer records with the app
  (``healthy_seconds``, and ``healthy_at`` in UTC);
* an object is Degraded (a failed Job, a Deployment past its progress deadline): that will
  not heal by waiting, so the app fails at once, naming it;
* ``timeout`` passes: the app fails with every object that is not Healthy named, with its
  health and Argo CD's message, in one line.

:func:`wait_and_record` is what deploy and rollback call for such an app. The app's
dependents start only after its step ends (``runner``), so ``depends_on`` waits
for health when the dependency has ``wait: true``. The clock and the sleep are arguments,
so tests run the loop without waiting on the wall clock; the default sleep ends early when
the run is asked to stop (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sbkube.cluster.port import Objects
from sbkube.engine.health import Health, HealthStatus, object_health
from sbkube.errors import SbkubeError
from sbkube.interrupts import current_stop
from sbkube.manifests import ObjectKey, format_key
from sbkube.model import utcnow

if TYPE_CHECKING:
    from sbkube.state import AppHandle

log = logging.getLogger(__name__)

#: How long a ``wait: true`` app waits without ``timeout``: helm's default for ``--wait``.
DEFAULT_TIMEOUT_SECONDS = 300.0
#: Seconds between two reads of the objects.
POLL_SECONDS = 1.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]

_DONE = frozenset({Health.HEALTHY, Health.SUSPENDED})


class NotHealthy(SbkubeError):
    """A ``wait: true`` app whose objects did not become healthy (exit 1)."""


def stoppable_sleep(seconds: float) -> None:
    """Sleep, in short slices, ending at once when the run is asked to stop."""
    stop = current_stop()
    deadline = time.monotonic() + seconds
    while True:
        if stop is not None:
            stop.check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def _named(health: dict[ObjectKey, HealthStatus], wanted: frozenset[Health] | None) -> str:
    """``Kind/ns/name Health (message)`` of the objects whose health is in ``wanted`` (None:
    every one that is not Healthy), joined in one line."""
    out = []
    for key, status in health.items():
        if status.status == Health.HEALTHY or (wanted is not None and status.status not in wanted):
            continue
        why = f" ({status.message})" if status.message else ""
        out.append(f"{format_key(key)} {status.status}{why}")
    return "; ".join(out)


def wait_healthy(
    cluster: Objects,
    keys: Sequence[ObjectKey],
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    *,
    what: str = "",
    clock: Clock = time.monotonic,
    sleep: Sleep = stoppable_sleep,
    interval: float = POLL_SECONDS,
) -> float:
    """Wait until every object of ``keys`` is healthy; the seconds it took (by ``clock``).
    Raises :class:`NotHealthy` at the first Degraded object, or after ``timeout`` seconds;
    see the module docstring. ``what`` (the app) prefixes the log lines."""
    started = clock()
    while True:
        live = cluster.list_many(keys)
        health = {key: object_health(live.get(key)) for key in keys}
        elapsed = clock() - started
        if all(h.status in _DONE for h in health.values()):
            return elapsed
        degraded = _named(health, frozenset({Health.DEGRADED}))
        if degraded:
            raise NotHealthy(f"degraded after {elapsed:.0f}s: {degraded}")
        if elapsed >= timeout:
            raise NotHealthy(f"not healthy within {timeout:g}s: {_named(health, None)}")
        log.info("%swaiting for health: %s", f"{what}: " if what else "", _named(health, None))
        sleep(min(interval, max(timeout - elapsed, 0.0)))


def wait_and_record(
    cluster: Objects, keys: Sequence[ObjectKey], timeout: str | None, handle: AppHandle
) -> None:
    """Wait for the app's objects (``timeout``: its Go duration, default 5m) and record on
    ``handle`` how long it took (``healthy_seconds``) and when (``healthy_at``, UTC)."""
    from sbkube.config.schema import duration_seconds

    limit = duration_seconds(timeout) if timeout else DEFAULT_TIMEOUT_SECONDS
    seconds = wait_healthy(cluster, keys, limit, what=handle.name)
    handle.set_metadata(healthy_seconds=round(seconds, 3), healthy_at=utcnow().isoformat())
