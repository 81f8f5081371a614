"""Step 2 of a deploy (``deployer.py``): every selected app prepared, nothing recorded yet.

Helm apps get their values merged and their chart rendered by the real ``helm template``
(once per app, ``concurrency`` charts at a time; a chart that fails to render is bad input:
``ConfigError``, exit 2); YAML apps get their manifests loaded and sbkube's ownership labels.
Objects get the namespace the cluster will give them. ``deploy``, ``diff``/``--dry-run``
planning and ``template`` share it; it never touches the state store (``template`` does not
import it).

:func:`learn_secrets` reads the apps a command does not prepare (the others of a partial
``--app`` deploy, every app of an uninstall) only to learn their secrets: whatever a full
deploy would find (a value under a plain key that a chart renders into a Secret) is then
hidden in this command's record too, its config snapshot included.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbkube.cluster.port import ChartRef, Cluster, Objects, TemplateRequest
from sbkube.engine.runner import DEFAULT_CONCURRENCY, check_concurrency
from sbkube.engine.work import (
    ActionStepWork,
    AppWork,
    DesiredObject,
    with_metadata,
    with_ownership,
)
from sbkube.errors import ClusterError, ConfigError, InterruptedDeployment
from sbkube.interrupts import Stop, working_under
from sbkube.manifests import Scope, object_key

if TYPE_CHECKING:
    from sbkube.config import LoadedConfig
    from sbkube.config.chart_build import BuiltChart
    from sbkube.config.schema import ActionApp


def place_objects(objects: Sequence[DesiredObject], namespace: str, cluster: Objects) -> None:
    """Give each object the namespace the cluster will (``Scope.place``): whether its kind
    is namespaced comes from the CRDs among the objects, then the cluster's discovery."""
    scope = Scope.of([o.manifest for o in objects], cluster.namespaced)
    for obj in objects:
        scope.place(obj.manifest, namespace)


def prepare_apps(
    loaded: LoadedConfig,
    names: Sequence[str],
    cluster: Cluster,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    skip_render: Callable[[AppWork], bool] | None = None,
) -> list[AppWork]:
    """Everything each app needs, computed (and validated) before anything is recorded.

    ``skip_render``: a Helm app for which it is true is not rendered (its ``objects`` stay
    empty): deploy's unchanged inputs (``snapshot.unchanged_inputs``), a dry run's charts
    (``helm upgrade --dry-run=server`` renders them once).

    Helm charts are rendered (``helm template``, once per app) up to ``concurrency`` at a
    time while the YAML apps are read; the works come back in ``names``' order, and of
    several errors the first app's is raised. Whether a kind is namespaced is asked of
    ``cluster`` (its discovery); a cluster without discovery (``template``'s) leaves it to
    the app's CRDs and the offline list.
    """
    from sbkube.config import HelmApp, load_manifests_with_sources, resolve_values
    from sbkube.config.charts import chart_digest
    from sbkube.config.schema import (
        ActionApp,
        ExecApp,
        GitApp,
        HookApp,
        HttpApp,
        KustomizeApp,
        NoopApp,
    )
    from sbkube.engine.tasks import check_against_app, prepare_hooks

    check_concurrency(concurrency)
    app_dir = str(loaded.app_dir)
    stop = Stop()
    pool = ThreadPoolExecutor(max_workers=concurrency)

    def render(chart: ChartRef, release: str, namespace: str, values: Any) -> list[dict[str, Any]]:
        with working_under(stop):
            return cluster.render_chart(
                TemplateRequest(chart, release_name=release, namespace=namespace, values=values)
            )

    # Per app, in order: its AppWork, or (Helm) the fields of one and its render's future;
    # the first error stops the scan, and is raised when its app's turn comes.
    planned: list[AppWork | tuple[dict[str, Any], Future[list[dict[str, Any]]]]] = []
    error: BaseException | None = None
    try:
        for name in names:
            try:
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
                    digest = chart_digest(local) if local is not None else None
                    if app.overrides or app.removes:
                        built = _built_chart(loaded, name, chart, local, cluster)
                        chart, digest = ChartRef(str(built.path)), built.digest
                    fields: dict[str, Any] = {
                        "name": name,
                        "type": "helm",
                        "namespace": namespace,
                        "config": config,
                        "depends_on": tuple(app.depends_on),
                        "chart": chart,
                        "release_name": release,
                        "values": values,
                        "wait": app.wait,
                        "timeout": app.timeout,
                        "chart_digest": digest,
                        "app_dir": app_dir,  # where its hooks run
                    }
                    if skip_render is not None and skip_render(AppWork(**fields)):
                        planned.append(AppWork(**fields))
                        continue
                    rendering = pool.submit(render, chart, release, namespace, values)
                    planned.append((fields, rendering))
                elif isinstance(app, ExecApp):
                    planned.append(
                        AppWork(
                            name=name,
                            type="exec",
                            namespace=namespace,
                            config=config,
                            depends_on=tuple(app.depends_on),
                            app_dir=app_dir,
                            commands=app.commands,
                        )
                    )
                elif isinstance(app, NoopApp | GitApp | HttpApp | HookApp):
                    # A git or http app's fetch happened before (engine.fetch): its step
                    # records what was fetched, and applies nothing.
                    planned.append(
                        AppWork(
                            name=name,
                            type=app.type,
                            namespace=namespace,
                            config=config,
                            depends_on=tuple(app.depends_on),
                            app_dir=app_dir,  # where its hooks and tasks run
                        )
                    )
                else:
                    actions: tuple[ActionStepWork, ...] = ()
                    if isinstance(app, KustomizeApp):
                        found = _kustomized(loaded, name, app.path, cluster)
                    elif isinstance(app, ActionApp):
                        found, actions = _action_objects(loaded, name, app, cluster)
                    else:
                        found = load_manifests_with_sources(loaded, name, cluster.namespaced)
                    objects = [
                        DesiredObject(
                            with_ownership(
                                with_metadata(m, app.labels, app.annotations),
                                app=name,
                                namespace=namespace,
                                app_dir=app_dir,
                            ),
                            source_file=source,
                        )
                        for source, m in found
                    ]
                    planned.append(
                        AppWork(
                            name=name,
                            type=app.type,
                            namespace=namespace,
                            config=config,
                            depends_on=tuple(app.depends_on),
                            objects=objects,
                            wait=app.wait,
                            timeout=app.timeout,
                            app_dir=app_dir,
                            adopt=app.adopt,
                            actions=actions,
                        )
                    )
            except Exception as exc:
                error = exc
                break
        works = []
        for item in planned:
            if isinstance(item, AppWork):
                works.append(item)
                continue
            fields, rendering = item
            try:
                manifests = rendering.result()
            except ClusterError as err:
                raise _render_error(loaded, fields["name"], err) from err
            objects = [DesiredObject(m) for m in manifests]
            place_objects(objects, fields["namespace"], cluster)
            works.append(AppWork(objects=objects, **fields))
        if error is not None:
            raise error
        for work in works:
            hooks = loaded.app(work.name).hooks
            if hooks is not None:
                work.hooks = {
                    "pre_deploy": hooks.pre_deploy,
                    "post_deploy": hooks.post_deploy,
                    "on_deploy_failure": hooks.on_deploy_failure,
                }
            work.hook_plan = prepare_hooks(loaded, work.name, cluster)
            if work.hook_plan is not None:
                check_against_app(loaded, work, work.hook_plan)
        return works
    except BaseException as exc:
        stop.request(exc)  # renders still running are of no use now
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _built_chart(
    loaded: LoadedConfig, name: str, chart: ChartRef, local: Path | None, cluster: Cluster
) -> BuiltChart:
    """A Helm app's chart built with its ``overrides`` and ``removes``
    (:mod:`sbkube.config.chart_build`): a local chart as it is, a repository or OCI chart
    pulled first (``helm pull``, into a scratch dir of sbkube's cache)."""
    from sbkube.config.chart_build import build_chart, builds_home, override_files
    from sbkube.config.schema import HelmApp

    app = loaded.app(name)
    assert isinstance(app, HelmApp)
    where = f"{loaded.shown_config}: apps.{name}"
    files = override_files(loaded.app_dir, name, app.overrides, where)
    if local is not None:
        return build_chart(local, files, app.removes, where)
    home = builds_home()
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home, prefix=".pull-") as scratch:
        cluster.pull_chart(chart, scratch)
        tops = [p for p in Path(scratch).iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise ConfigError(f"{where}.chart: helm pull {chart.ref} gave no one chart directory")
        return build_chart(tops[0], files, app.removes, where)


def _action_objects(
    loaded: LoadedConfig, name: str, app: ActionApp, cluster: Cluster
) -> tuple[list[tuple[str, dict[str, Any]]], tuple[ActionStepWork, ...]]:
    """An action app's objects to apply (those of its apply steps, with the file each came
    from) and its steps, each with the keys of its objects."""
    from sbkube.config.values import load_action_steps

    found: list[tuple[str, dict[str, Any]]] = []
    steps: list[ActionStepWork] = []
    for step, placed in zip(
        app.actions, load_action_steps(loaded, name, cluster.namespaced), strict=True
    ):
        if step.type == "apply":
            found += placed
        keys = tuple(object_key(m) for _source, m in placed)
        steps.append(ActionStepWork(step.type, step.path, step.namespace, keys))
    return found, tuple(steps)


def _kustomized(
    loaded: LoadedConfig, name: str, path: str, cluster: Cluster
) -> list[tuple[str, dict[str, Any]]]:
    """A kustomize app's objects: rendered by ``kubectl kustomize``, then checked and placed
    as a YAML app's manifests are. A kustomization that fails to render is bad input."""
    from sbkube.config.values import rendered_objects

    where = f"{loaded.shown_config}: apps.{name}.path"
    try:
        documents = cluster.render_kustomization(str(loaded.resolve_path(path)))
    except ClusterError as err:
        raise ConfigError(
            f"{where}: kustomization {path!r} failed to render: {err.message}"
        ) from err
    return rendered_objects(loaded, name, documents, path, cluster.namespaced)


def _render_error(loaded: LoadedConfig, name: str, err: ClusterError) -> ConfigError:
    """A chart that fails to render is bad input (exit 2), named by its app's field."""
    chart = getattr(loaded.app(name), "chart", "")
    return ConfigError(
        f"{loaded.shown_config}: apps.{name}.chart: chart {chart!r} failed to render: {err.message}"
    )


def learn_secrets(
    loaded: LoadedConfig,
    names: Sequence[str],
    cluster: Cluster,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> None:
    """Learn (:func:`sbkube.redaction.remember`) the secrets of apps this command does not
    prepare, as preparing them would: Helm values merged and the chart rendered (``helm
    template``, ``concurrency`` at a time), YAML manifests read. Nothing is applied or
    recorded, and nothing here fails the command: an app that cannot be read or rendered
    now teaches nothing (a full deploy would refuse it)."""
    from sbkube.config import HelmApp, load_manifests_with_sources, resolve_values

    def render(name: str) -> None:
        app = loaded.app(name)
        assert isinstance(app, HelmApp)
        values = resolve_values(loaded, name)  # learns the values under secret keys
        repo_name = app.chart.split("/", 1)[0]
        chart = ChartRef(
            ref=loaded.chart_ref(name),
            version=app.version,
            repo_url=(loaded.config.repos or {}).get(repo_name),
        )
        request = TemplateRequest(
            chart,
            release_name=loaded.release_name(name),
            namespace=loaded.app_namespace(name),
            values=values,
        )
        cluster.render_chart(request)  # learns what the chart renders into a Secret

    def read(name: str) -> None:
        from sbkube.config.schema import ActionApp, KustomizeApp, YamlApp
        from sbkube.config.values import load_action_steps

        app = loaded.app(name)
        if isinstance(app, KustomizeApp):
            _kustomized(loaded, name, app.path, cluster)  # learns as it places the objects
        elif isinstance(app, ActionApp):
            load_action_steps(loaded, name, cluster.namespaced)  # learns as it reads
        elif isinstance(app, YamlApp):
            load_manifests_with_sources(loaded, name, cluster.namespaced)  # learns as it reads

    if not names:
        return
    check_concurrency(concurrency)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [
            pool.submit(render if isinstance(loaded.app(n), HelmApp) else read, n) for n in names
        ]
        for future in futures:
            try:
                future.result()
            except InterruptedDeployment:
                raise  # SIGTERM while waiting: the command stops, it did not fail to learn
            except Exception:
                continue
