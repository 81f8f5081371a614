"""``sbkube deploy`` and ``sbkube template``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sbkube.cli.options import (
    READ_PHASES,
    app_dir_options,
    cluster_options,
    command_line_values,
    concurrency_option,
    make_cluster_for,
    namespace_option,
    output_option,
    phase_option,
    progress_for,
    values_options,
    wait_lock_option,
)
from sbkube.cli.output import dump, echo_changes, echo_table, emit, paint, safe

if TYPE_CHECKING:
    from sbkube.cli.entry import Rendered
    from sbkube.engine.results import DeployResult, ReleaseChange


def _release_text(rel: ReleaseChange | None) -> str | None:
    if rel is None:
        return None
    if rel.from_revision is None or rel.from_revision == rel.to_revision:
        return f"{rel.action} rev {rel.to_revision}"
    return f"{rel.action} rev {rel.from_revision}->{rel.to_revision}"


def print_result(result: DeployResult, phase_of: Mapping[str, str] | None = None) -> None:
    from sbkube.redaction import mask_text

    head = "Plan (dry run, nothing applied or recorded)" if result.dry_run else "Deployment"
    ident = f" {safe(result.deployment_id)}" if result.deployment_id else ""
    target = safe(f"{result.cluster}/{result.namespace}")
    click.echo(f"{head}{ident}: {paint(result.status)}  target {target}")
    phase_column = [("PHASE", lambda a: phase_of.get(a.name))] if phase_of else []
    echo_table(
        result.apps,
        [
            *phase_column,
            ("APP", lambda a: a.name),
            ("TYPE", lambda a: a.type),
            ("NAMESPACE", lambda a: a.namespace),
            ("STATUS", lambda a: a.status),
            (
                "RELEASE",
                lambda a: _release_text(a.release),
            ),
            # The first line of an error; its detail lines went to stderr as progress.
            ("CHANGES", lambda a: mask_text(a.error.split("\n", 1)[0]) if a.error else a.summary),
            ("TIME", lambda a: f"{a.seconds:.1f}s"),
        ],
    )
    echo_changes(result.apps)


@click.command()
@app_dir_options
@namespace_option
@values_options
@click.option("--dry-run", is_flag=True, help="Compute the plan; apply and record nothing.")
@click.option(
    "--force-upgrade",
    is_flag=True,
    help="Upgrade every Helm release, even those whose chart, values and objects are unchanged.",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Let YAML apps take over listed objects that exist and are not theirs "
    "(as adopt: true on every app).",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Fetch the index of every chart repository an app without version: uses "
    "(otherwise once its cached index is older than SBKUBE_REPO_INDEX_MAX_AGE, 3600 s).",
)
@click.option(
    "--prune-apps",
    is_flag=True,
    help="Uninstall apps removed from config.yaml that an earlier deploy of this app dir "
    "left live (named 'orphaned' otherwise).",
)
@click.option(
    "--no-exec",
    is_flag=True,
    help="Refuse exec apps before anything is applied [env: SBKUBE_ALLOW_EXEC=false].",
)
@phase_option("run this phase and the phases it needs")
@click.option(
    "--on-failure",
    type=click.Choice(["stop", "continue", "rollback"]),
    default=None,
    help="When an app fails: stop (no phase starts after it), continue (every phase "
    "that does not need it runs), rollback (what the run changed goes back) "
    "[default: the file's on_failure, else stop].",
)
@click.option(
    "--rollback-scope",
    type=click.Choice(["app", "phase", "all"]),
    default=None,
    help="What --on-failure rollback rolls back: the failed app, its phase, or the whole "
    "run [default: the file's rollback_scope, else app].",
)
@click.option(
    "--atomic",
    is_flag=True,
    help="All or nothing: --on-failure rollback --rollback-scope all.",
)
@wait_lock_option
@concurrency_option("Deploy")
@cluster_options
@output_option
@click.pass_context
def deploy(
    ctx: click.Context,
    app_dir: Path,
    config_file: str | None,
    profile: str | None,
    apps: tuple[str, ...],
    selectors: tuple[str, ...],
    no_deps: bool,
    namespace: str | None,
    set_values: tuple[str, ...],
    values_files: tuple[str, ...],
    dry_run: bool,
    force_upgrade: bool,
    adopt: bool,
    refresh: bool,
    prune_apps: bool,
    no_exec: bool,
    phases: tuple[str, ...],
    on_failure: str | None,
    rollback_scope: str | None,
    atomic: bool,
    wait_lock: float,
    concurrency: int,
    kubeconfig: str | None,
    kube_context: str | None,
    memory_cluster: str | None,
    fmt: str,
) -> None:
    """Deploy the apps of an app dir, in depends_on order, and record the deployment.

    Independent apps are deployed at the same time, --concurrency at once (default 4); a
    line is printed as each app ends and, on a terminal, a status line shows the running
    ones. A failed app skips only the apps that depend on it.

    Helm apps are installed or upgraded with `helm upgrade --install`; a release whose chart
    (version and files), values and live objects match its current revision is left as it
    is and recorded unchanged (--force-upgrade upgrades it anyway). YAML apps are applied
    with ownership labels (app, namespace and app dir), and objects sbkube applied before
    but the config no longer has are pruned. A listed object that exists and is not the
    app's fails the app, naming its owner, unless the app has adopt: true or --adopt is
    given; an adopted Namespace is never pruned. Every app, release and resource is
    recorded in the state store.

    A config with phases: (ours or the original's sbkube.yaml) deploys every phase's app
    dirs as ONE recorded deployment: phases follow their depends_on, independent ones run
    at once (max_workers), and the failure policy (on_failure stop|continue|rollback,
    rollback_scope app|phase|all; --atomic for all or nothing) decides what happens when
    an app fails. A rollback is recorded as its own deployment, naming the failed one.

    Exit code: 0 success, 1 some app failed (or the lock is held), 2 bad input, 3 the
    failure policy's rollback itself failed (the record shows each app's state).

    \b
    Examples:
      sbkube deploy --app-dir apps/demo
      sbkube deploy --app-dir apps/demo --app redis --dry-run
      sbkube deploy --app-dir apps/demo --memory-cluster /tmp/cluster.json
      sbkube deploy --app-dir apps/demo --concurrency 1
      sbkube deploy --app-dir apps/demo -n staging --set cache:replicaCount=2 -f prod.yaml
      sbkube deploy --app-dir platform --phase data --on-failure rollback
      sbkube deploy --app-dir apps/demo --atomic
    """
    from sbkube.cluster.helm import INDEX_MAX_AGE_VAR
    from sbkube.engine.deployer import deploy as run_deploy
    from sbkube.engine.runner import interrupt_on_sigterm

    if refresh:
        # Every cached repository index is too old: this run's helm clients fetch them.
        os.environ[INDEX_MAX_AGE_VAR] = "0"
    cluster = make_cluster_for(
        app_dir, config_file, profile, kubeconfig, kube_context, memory_cluster
    )
    progress = progress_for(ctx, fmt)
    from sbkube.engine.phases import phases_of

    phased = phases_of(app_dir, config_file, profile)
    if phased is None and phases:
        raise click.UsageError(f"--phase: {app_dir} has no phases: in its config")
    needs_dirs = False
    if phased is None and not atomic:
        from sbkube.config.phases import declared_deps, plain_policy

        # deps: other app dirs deployed first, in the same run (unless --no-deps).
        needs_dirs = not no_deps and bool(declared_deps(app_dir, config_file, profile))

        # The original's settings may ask for a failure policy of their own.
        said_failure, said_scope = plain_policy(app_dir, config_file, profile)
        on_failure = on_failure or (said_failure if said_failure == "rollback" else None)
        rollback_scope = rollback_scope or (said_scope if on_failure == "rollback" else None)
    if phased is not None or needs_dirs or atomic or on_failure or rollback_scope:
        _deploy_phased(
            ctx,
            phased,
            app_dir=app_dir,
            config_file=config_file,
            profile=profile,
            apps=apps,
            namespace=namespace,
            values=command_line_values(values_files, set_values),
            dry_run=dry_run,
            force_upgrade=force_upgrade,
            adopt=adopt,
            no_exec=no_exec,
            phases=phases,
            no_deps=no_deps,
            selectors=selectors,
            on_failure=on_failure,
            rollback_scope=rollback_scope,
            atomic=atomic,
            wait_lock=wait_lock,
            concurrency=concurrency,
            cluster=cluster,
            progress=progress,
            fmt=fmt,
        )
        return
    with interrupt_on_sigterm():
        result = run_deploy(
            app_dir,
            cluster=cluster,
            # Opened by the engine once the config is known to be valid: bad input must not
            # create (or be masked by an unreachable) state store.
            db=(ctx.find_root().obj or {}).get("state_url"),
            apps=apps or None,
            dry_run=dry_run,
            wait_lock=wait_lock,
            config_file=config_file,
            profile=profile,
            selectors=selectors,
            no_deps=no_deps,
            progress=progress,
            command_args=sys.argv[1:],
            namespace=namespace,
            values=command_line_values(values_files, set_values),
            force_upgrade=force_upgrade,
            adopt=adopt,
            prune_apps=prune_apps,
            concurrency=concurrency,
            no_exec=no_exec,
        )
    if fmt != "table":
        emit(result, fmt)
    else:
        print_result(result)
    if not result.ok:
        ctx.exit(1)


def _deploy_phased(ctx: click.Context, phased: Any, **kw: Any) -> None:
    """deploy of a file of phases (or of one app dir with a failure policy)."""
    from sbkube.engine.phases import deploy_phases, one_dir
    from sbkube.engine.runner import interrupt_on_sigterm
    from sbkube.redaction import mask_text

    if kw["selectors"] and kw["apps"]:
        raise click.UsageError("--app and --selector each pick apps: give one of them")
    if phased is None:
        phased = one_dir(
            kw["app_dir"], kw["config_file"], namespace=kw["namespace"], profile=kw["profile"]
        )
    fmt = kw["fmt"]
    with interrupt_on_sigterm():
        result = deploy_phases(
            phased,
            cluster=kw["cluster"],
            db=(ctx.find_root().obj or {}).get("state_url"),
            apps=kw["apps"] or None,
            phases=kw["phases"] or None,
            no_deps=kw["no_deps"],
            selectors=kw["selectors"],
            profile=kw["profile"],
            on_failure=kw["on_failure"],
            rollback_scope=kw["rollback_scope"],
            atomic=kw["atomic"],
            dry_run=kw["dry_run"],
            wait_lock=kw["wait_lock"],
            progress=kw["progress"],
            command_args=sys.argv[1:],
            namespace=None,
            values=kw["values"],
            force_upgrade=kw["force_upgrade"],
            adopt=kw["adopt"],
            concurrency=kw["concurrency"],
            no_exec=kw["no_exec"],
        )
    if fmt != "table":
        emit(result, fmt)
    else:
        print_result(result, phase_of=result.phase_of)
        revert = result.rollback
        if revert is not None and revert.deployment_id is not None:
            click.echo("")
            click.echo(
                f"Rollback {safe(revert.deployment_id)} (scope {revert.scope}): "
                f"{paint(revert.status)}"
            )
            echo_table(
                revert.apps,
                [
                    ("APP", lambda a: a.name),
                    ("STATUS", lambda a: a.status),
                    ("RELEASE", lambda a: _release_text(a.release)),
                    (
                        "CHANGES",
                        lambda a: mask_text(a.error.split("\n", 1)[0]) if a.error else a.summary,
                    ),
                ],
            )
    revert = result.rollback
    if revert is not None and revert.error is not None:
        click.echo(f"Error: {safe(revert.error)}", err=True)
        ctx.exit(3)
    if not result.ok:
        ctx.exit(1)


def _write_rendered(target: Path, text: str, *, private: bool) -> None:
    """Write one app's manifests; mode 0600 when they hold a Secret, whatever the umask
    or the mode an earlier run left (other files get the umask's default)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    if private:
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


@click.command()
@app_dir_options
@namespace_option
@values_options
@concurrency_option("Render (`helm template`)")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one <app>.yaml per app here instead of printing to stdout.",
)
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="yaml: a multi-document stream; json: one JSON list of the documents.",
)
@phase_option(READ_PHASES)
def template(
    app_dir: Path,
    config_file: str | None,
    profile: str | None,
    apps: tuple[str, ...],
    selectors: tuple[str, ...],
    no_deps: bool,
    namespace: str | None,
    set_values: tuple[str, ...],
    values_files: tuple[str, ...],
    concurrency: int,
    output_dir: Path | None,
    fmt: str,
    phases: tuple[str, ...],
) -> None:
    """Render every app to the manifests deploy would apply.

    Helm apps go through the real `helm template --include-crds` (a chart's crds/ are shown
    too: a first install creates them); YAML apps get their namespace defaulted and sbkube's
    ownership labels. No cluster is contacted and nothing is recorded. Charts render
    --concurrency at a time; the output is in the apps' order whatever N is.

    A file of phases renders as deploy runs it: the apps of every phase (or of --phase
    NAME and the phases it needs), in the run's order, each header naming its phase.
    """

    from sbkube.cli.entry import yaml_text

    rendered = None
    phase_of: dict[str, str] = {}
    if not (apps or selectors or profile or set_values or values_files or phases):
        # A plain app dir of Helm apps: checked and rendered without the config models (a
        # file of phases is not one).
        from sbkube.cli.entry import render_plan
        from sbkube.config.quick import helm_plan

        plan = helm_plan(app_dir, config_file, namespace=namespace)
        rendered = None if plan is None else render_plan(plan, concurrency, fmt == "yaml")
    if rendered is None:
        from sbkube.cli.options import refuse_for_phases
        from sbkube.engine.units import phases_of

        values = command_line_values(values_files, set_values)
        phased = phases_of(app_dir, config_file, profile)
        refuse_for_phases(app_dir, phased, phases, namespace)
        if phased is not None:
            rendered, phase_of = _rendered_phases(
                phased, phases, apps, selectors, no_deps, values, concurrency
            )
        else:
            rendered = _rendered_apps(
                app_dir, config_file, profile, apps, selectors, no_deps, namespace, values,
                concurrency,
            )  # fmt: skip
    if fmt == "json" and output_dir is None:
        emit([doc for *_app, docs, _text in rendered for doc in docs], "json")
        return
    if output_dir is not None:
        # A directory sbkube creates holds rendered Secrets: only its owner may list it.
        output_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, app_type, app_namespace, docs, dumped in rendered:
        text = dumped if dumped is not None else yaml_text(docs)
        phase = f", phase {phase_of[name]}" if name in phase_of else ""
        header = f"# sbkube app: {name} ({app_type}, namespace {app_namespace}{phase})\n"
        if output_dir is not None and fmt == "json":
            target = output_dir / f"{name}.json"
            target.write_text(dump(docs, "json") + "\n")
            click.echo(f"wrote {target} ({len(docs)} objects)", err=True)
        elif output_dir is not None:
            from sbkube.redaction import holds_secret

            target = output_dir / f"{name}.yaml"
            _write_rendered(target, header + text, private=any(map(holds_secret, docs)))
            click.echo(f"wrote {target} ({len(docs)} objects)", err=True)
        else:
            click.echo("---\n" + header + text, nl=False)


def _rendered_apps(
    app_dir: Path,
    config_file: str | None,
    profile: str | None,
    apps: tuple[str, ...],
    selectors: tuple[str, ...],
    no_deps: bool,
    namespace: str | None,
    values: Any,
    concurrency: int,
) -> Rendered:
    """Every picked app prepared as deploy prepares it (``prepare_apps``), offline."""
    from sbkube.cluster.kube import KubeCluster
    from sbkube.config import load_config
    from sbkube.engine.fetch import fetch_sources
    from sbkube.engine.prepare import prepare_apps

    loaded = load_config(app_dir, config_file, namespace=namespace, values=values, profile=profile)
    picked = loaded.pick(list(apps) or None, selectors, with_deps=not no_deps)
    # Git checkouts and downloads as the last deploy left them: template fetches nothing.
    loaded = fetch_sources(loaded, picked, mode="cached").loaded
    # Rendering is `helm template`: offline, whatever the kubeconfig says.
    works = prepare_apps(loaded, picked, KubeCluster(offline=True), concurrency=concurrency)
    return [(w.name, w.type, w.namespace, [o.manifest for o in w.objects], None) for w in works]


def _rendered_phases(
    phased: Any,
    phases: tuple[str, ...],
    apps: tuple[str, ...],
    selectors: tuple[str, ...],
    no_deps: bool,
    values: Any,
    concurrency: int,
) -> tuple[Rendered, dict[str, str]]:
    """The apps of a file of phases, picked as deploy picks them (``select_units``) and
    prepared as ``_rendered_apps`` prepares an app dir's, with each app's phase."""
    from sbkube.cluster.kube import KubeCluster
    from sbkube.engine.fetch import fetch_sources
    from sbkube.engine.prepare import prepare_apps
    from sbkube.engine.target import Options
    from sbkube.engine.units import select_units

    options = Options(apps=apps or None, selectors=selectors, no_deps=no_deps, values=values)
    _taken, units = select_units(phased, phases or None, options)
    rendered: Rendered = []
    phase_of: dict[str, str] = {}
    offline = KubeCluster(offline=True)
    for phase, _group, loaded, names in units:
        loaded = fetch_sources(loaded, names, mode="cached").loaded
        works = prepare_apps(loaded, names, offline, concurrency=concurrency)
        rendered += [
            (w.name, w.type, w.namespace, [o.manifest for o in w.objects], None) for w in works
        ]
        phase_of.update((w.name, phase) for w in works)
    return rendered, phase_of
