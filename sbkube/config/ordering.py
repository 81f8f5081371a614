"""The deploy order of a config's apps, from their ``depends_on``, with ``graphlib``.

The order is the topological order that, at each step, takes the ready app that comes
first in the file, so that an unchanged config always deploys in the same order and apps
without dependencies deploy in file order. Disabled apps are not deployed, so an edge to
one does not hold anything back; a cycle is an error even through a disabled app.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter

from sbkube.errors import ConfigError
from sbkube.messages import suggest

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False

if TYPE_CHECKING:  # the models are built by the loader; sbkube.config.quick orders without
    from sbkube.config.schema import SbkubeConfig


def deploy_order(config: SbkubeConfig, shown: str) -> tuple[str, ...]:
    """Enabled app names in deploy order; ConfigError for unknown targets and cycles."""
    apps = config.apps
    names = list(apps)
    for name, app in apps.items():
        for index, dep in enumerate(app.depends_on):
            if dep not in apps:
                raise ConfigError(
                    f"{shown}: apps.{name}.depends_on[{index}]: unknown app {dep!r}"
                    f"{suggest(dep, names)}"
                )
    check_cycles(config, shown)
    position = {name: index for index, name in enumerate(names)}
    enabled = [name for name in names if apps[name].enabled]
    graph = {name: [dep for dep in apps[name].depends_on if apps[dep].enabled] for name in enabled}
    return tuple(file_order(graph, position))


def file_order(graph: Mapping[str, Iterable[str]], position: Mapping[str, int]) -> list[str]:
    """The names of ``graph`` (name -> the names it depends on) in topological order, taking
    at each step the ready name with the lowest ``position`` (its place in the file);
    ``graphlib.CycleError`` on a cycle."""
    sorter: TopologicalSorter[str] = TopologicalSorter(graph)
    sorter.prepare()
    # graphlib hands out every ready app at once; the heap picks the earliest in the file.
    ready = [(position[name], name) for name in sorter.get_ready()]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        sorter.done(name)
        for follower in sorter.get_ready():
            heapq.heappush(ready, (position[follower], follower))
    return order


def check_cycles(config: SbkubeConfig, shown: str) -> None:
    """ConfigError naming one dependency cycle, if there is any (disabled apps included).

    The cycle reads in ``depends_on`` direction (``a -> b``: a depends on b) and is blamed on
    the ``depends_on`` of the app that closes it.
    """
    refuse_cycles({name: app.depends_on for name, app in config.apps.items()}, f"{shown}: apps")


def refuse_cycles(graph: Mapping[str, Iterable[str]], where: str) -> None:
    """ConfigError ``WHERE.NAME.depends_on: dependency cycle a -> b -> a`` for the first
    cycle of ``graph`` (name -> the names it depends on, in file order), if it has one.

    graphlib looks for a cycle by walking from each node (in insertion order) to its
    successors (in the order the edges were added). Registering every name first, in file
    order, and each dependency as a successor of its dependent makes that walk follow
    depends_on in file order, so the cycle named is the first one a reader of the file
    meets.
    """
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for name in graph:
        sorter.add(name)
    for name, deps in graph.items():
        for dep in deps:
            sorter.add(dep, name)
    try:
        sorter.prepare()
    except CycleError as err:
        cycle: list[str] = err.args[1]
        raise ConfigError(
            f"{where}.{cycle[-2]}.depends_on: dependency cycle {' -> '.join(cycle)}"
        ) from None
