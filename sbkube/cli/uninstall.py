"""``sbkube uninstall``: remove apps from the cluster, recorded as a deployment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sbkube.cli.options import (
    app_dir_options,
    cluster_options,
    concurrency_option,
    make_cluster_for,
    namespace_option,
    output_option,
    phase_option,
    progress_for,
    wait_lock_option,
)
from sbkube.cli.output import echo_changes, echo_table, emit, error_lines, paint, safe

if TYPE_CHECKING:
    from sbkube.engine.uninstall import UninstallPlan


def print_plan(plan: UninstallPlan) -> None:
    click.echo(f"Uninstall plan: target {safe(plan.cluster)}/{safe(plan.namespace)}")
    phase_column = (
        [("PHASE", lambda a: a.phase)] if any(a.phase is not None for a in plan.apps) else []
    )
    echo_table(
        plan.apps,
        [
            *phase_column,
            ("APP", lambda a: a.name),
            ("TYPE", lambda a: a.type),
            ("NAMESPACE", lambda a: a.namespace),
            ("ACTION", lambda a: a.action),
            ("RELEASE", lambda a: f"{a.release_name} rev {a.revision}" if a.revision else None),
            ("RESOURCES", lambda a: f"{len(a.changes)} delete" if a.changes else None),
        ],
        empty="(nothing to uninstall: no app of this app dir is recorded or live here)",
    )
    echo_changes(plan.apps)
    for warning in plan.warnings:
        click.echo(f"warning: {safe(warning)}", err=True)


@click.command()
@app_dir_options
@namespace_option
@click.option("--dry-run", is_flag=True, help="Print the plan and stop.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@wait_lock_option
@concurrency_option("Remove")
@cluster_options
@output_option
@phase_option(
    "this phase's apps and those of every phase that needs it (--no-deps: this phase's alone)"
)
@click.pass_context
def uninstall(
    ctx: click.Context,
    app_dir: Path,
    config_file: str | None,
    profile: str | None,
    apps: tuple[str, ...],
    selectors: tuple[str, ...],
    no_deps: bool,
    namespace: str | None,
    dry_run: bool,
    yes: bool,
    wait_lock: float,
    concurrency: int,
    kubeconfig: str | None,
    kube_context: str | None,
    memory_cluster: str | None,
    fmt: str,
    phases: tuple[str, ...],
) -> None:
    """Remove an app dir's apps (or --app NAME) from the cluster.

    Helm releases are uninstalled (helm uninstall --keep-history, so their revisions stay);
    YAML objects that sbkube applied and that still carry the app's ownership labels are
    deleted. The plan is printed first and, on a terminal, confirmed (-y skips). The
    removal takes the target's lock and is recorded as a deployment with command
    'uninstall'; `sbkube rollback` to an earlier deployment brings the apps back.

    A file of phases is removed as one run, recorded under the run's own target: every
    phase, or --phase NAME and the phases that need it, later phases first.

    Exit code: 0 success (or nothing to remove), 1 some app failed, 2 bad input.

    \b
    Examples:
      sbkube uninstall --app-dir apps/demo --dry-run
      sbkube uninstall --app-dir apps/demo --app web -y
      sbkube rollback --app-dir apps/demo      # brings them back
      sbkube uninstall --app-dir platform --phase apps -y
    """
    from sbkube.cli.options import refuse_for_phases
    from sbkube.engine.runner import interrupt_on_sigterm
    from sbkube.engine.uninstall import uninstall as run_uninstall
    from sbkube.engine.uninstall import uninstall_phases
    from sbkube.engine.units import phases_of

    phased = phases_of(app_dir, config_file, profile)
    refuse_for_phases(app_dir, phased, phases, namespace)

    interactive = sys.stdin.isatty() and not yes and fmt == "table" and not dry_run

    def confirm(plan: UninstallPlan) -> bool:
        if fmt == "table":
            print_plan(plan)
        if not interactive:
            return True
        return click.confirm("Proceed with this uninstall?", default=False, err=True)

    cluster = make_cluster_for(
        app_dir, config_file, profile, kubeconfig, kube_context, memory_cluster
    )
    picked: dict[str, Any] = {
        "cluster": cluster,
        "db": (ctx.find_root().obj or {}).get("state_url"),
        "apps": apps or None,
        "dry_run": dry_run,
        "wait_lock": wait_lock,
        "profile": profile,
        "selectors": selectors,
        "no_deps": no_deps,
        "progress": progress_for(ctx, fmt),
        "confirm": confirm,
        "command_args": sys.argv[1:],
        "concurrency": concurrency,
    }
    with interrupt_on_sigterm():
        if phased is not None:
            result = uninstall_phases(phased, phases=phases or None, **picked)
        else:
            result = run_uninstall(app_dir, config_file=config_file, namespace=namespace, **picked)
    if fmt != "table":
        emit(result, fmt)
    elif result.deployment_id is None:
        print_plan(result.plan)
        if dry_run:
            click.echo("\nDry run: nothing was changed or recorded.")
    else:
        click.echo(f"\nUninstall {safe(result.deployment_id)}: {paint(str(result.status))}")
        for app in result.apps:
            if app.error:
                prefix = f"  {safe(app.name)}: {paint(str(app.status))}: "
                click.echo(error_lines(app.error, prefix=prefix))
    if not result.ok:
        ctx.exit(1)
