"""Step 2 of a deploy (``deployer.py``): every selected app prepared, nothing recorded yet.

Helm apps get their values merged and their chart rendered by the real ``helm template``
(a chart that fails to render is bad input: ``ConfigError``, exit 2); YAML apps get their
manifests loaded and sbkube's ownership labels. Objects get the namespace the cluster will
give them. ``deploy``, ``diff``/``--dry-run`` planning and ``template`` share it; it never
touches the state store (``template`` does not import it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sbkube.cluster.port import ChartRef, Cluster
from sbkube.engine.apply import AppWork, DesiredObject, with_ownership
from sbkube.errors import ClusterError, ConfigError
from sbkube.manifests import Scope

if TYPE_CHECKING:
    from sbkube.config import LoadedConfig


def place_objects(objects: Sequence[DesiredObject], namespace: str, cluster: Cluster) -> None:
    """Give each object the namespace the cluster will (``Scope.place``): whether its kind
    is namespaced comes from the CRDs among the objects, then the cluster's discovery."""
    scope = Scope.of([o.manifest for o in objects], cluster.namespaced)
    for obj in objects:
        scope.place(obj.manifest, namespace)


def prepare_apps(loaded: LoadedConfig, names: Sequence[str], cluster: Cluster) -> list[AppWork]:
    """Everything each app needs, computed (and validated) before anything is recorded.

    Whether a kind is namespaced is asked of ``cluster`` (its discovery); a cluster without
    discovery (``template``'s) leaves it to the app's CRDs and the offline list.
    """
    from sbkube.config import HelmApp, load_manifests_with_sources, resolve_values
    from sbkube.config.charts import chart_digest

    app_dir = str(loaded.app_dir)
    works = []
    for name in names:
        app = loaded.app(name)
        namespace = loaded.app_namespace(name)
        config = app.model_dump(mode="json")
        if isinstance(app, HelmApp):
            values = resolve_values(loaded, name)
            repo_name = app.chart.split("/", 1)[0]
            chart = ChartRef(
                ref=loaded.chart_ref(name),
                version=app.version,
                repo_url=(loaded.config.repos or {}).get(repo_name),
            )
            release = loaded.release_name(name)
            local = loaded.local_chart_path(name)
            try:
                rendered = cluster.render_chart(
                    chart, release_name=release, namespace=namespace, values=values
                )
            except ClusterError as err:
                raise ConfigError(
                    f"{loaded.shown_config}: apps.{name}.chart: chart {app.chart!r} "
                    f"failed to render: {err.message}"
                ) from err
            objects = [DesiredObject(m) for m in rendered]
            place_objects(objects, namespace, cluster)
            works.append(
                AppWork(
                    name=name,
                    type="helm",
                    namespace=namespace,
                    config=config,
                    depends_on=tuple(app.depends_on),
                    objects=objects,
                    chart=chart,
                    release_name=release,
                    values=values,
                    wait=app.wait,
                    timeout=app.timeout,
                    chart_digest=chart_digest(local) if local is not None else None,
                )
            )
        else:
            objects = [
                DesiredObject(
                    with_ownership(m, app=name, namespace=namespace, app_dir=app_dir),
                    source_file=source,
                )
                for source, m in load_manifests_with_sources(loaded, name, cluster.namespaced)
            ]
            works.append(
                AppWork(
                    name=name,
                    type="yaml",
                    namespace=namespace,
                    config=config,
                    depends_on=tuple(app.depends_on),
                    objects=objects,
                )
            )
    return works
