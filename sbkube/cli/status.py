"""``sbkube status``: drift between the recorded deployment and the live cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sbkube.cli.options import (
    READ_PHASES,
    app_dir_options,
    cluster_options,
    make_cluster_for,
    namespace_option,
    output_option,
    phase_option,
    refuse_for_phases,
)
from sbkube.cli.output import echo_table, emit, paint, safe

if TYPE_CHECKING:
    from sbkube.engine.status import DriftReport


def print_report(report: DriftReport, *, verbose: bool = False) -> None:
    target = safe(f"{report.cluster}/{report.namespace}")
    click.echo(f"Status of {target} against the recorded deployments")
    phase_column = (
        [("PHASE", lambda a: a.phase)] if any(a.phase is not None for a in report.apps) else []
    )
    echo_table(
        report.apps,
        [
            *phase_column,
            ("APP", lambda a: a.name),
            ("TYPE", lambda a: a.type),
            ("STATE", lambda a: a.state),
            ("HEALTH", lambda a: a.health),
            ("DEPLOYMENT", lambda a: a.deployment_id),
            (
                "RELEASE",
                lambda a: (
                    f"{a.release.release_name} rev {a.release.live_revision or '-'}"
                    f" (recorded {a.release.recorded_revision})"
                    if a.release
                    else None
                ),
            ),
            ("OBJECTS", lambda a: len(a.objects) if a.objects else None),
        ],
        empty="(no apps)",
    )
    if verbose:
        objects = [(a, o) for a in report.apps for o in a.objects]
        if objects:
            click.echo("")
            echo_table(
                objects,
                [
                    ("APP", lambda p: p[0].name),
                    ("KIND", lambda p: p[1].kind),
                    ("NAMESPACE", lambda p: p[1].namespace),
                    ("NAME", lambda p: p[1].name),
                    ("STATE", lambda p: p[1].state),
                    ("HEALTH", lambda p: p[1].health),
                    ("HOOK", lambda p: p[1].hook),
                    ("MESSAGE", lambda p: p[1].health_message or None),
                ],
            )
    details = [(a, r) for a in report.apps for r in a.reasons]
    if details:
        click.echo("")
    for app, reason in details:
        click.echo(f"{safe(app.name)}: {paint(safe(reason), str(app.state))}")


@click.command()
@app_dir_options
@namespace_option
@cluster_options
@phase_option(READ_PHASES)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when any app is drifted or missing, or its health is Degraded or Missing.",
)
@output_option
@click.pass_context
def status(
    ctx: click.Context,
    app_dir: Path,
    config_file: str | None,
    profile: str | None,
    apps: tuple[str, ...],
    selectors: tuple[str, ...],
    no_deps: bool,
    namespace: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    memory_cluster: str | None,
    phases: tuple[str, ...],
    exit_code: bool,
    fmt: str,
) -> None:
    """Drift and health: compare each app's last successful recorded deployment with the
    live cluster.

    Every object recorded is read live and its recorded fields compared; a Helm release
    must still be at the recorded revision. Each app is in-sync, drifted (with the changed
    fields), missing (nothing of it left live) or not-deployed (nothing recorded).
    HEALTH is Argo CD's: Healthy, Progressing, Degraded, Missing, Suspended or Unknown,
    the worst of the app's objects (-v, the global option, or -o json: per object).
    Nothing is changed or recorded.

    A file of phases is read as deploy runs it: the apps of every phase (or of --phase
    NAME and the phases it needs), against the run's own record, with a PHASE column.

    Exit code: 0, or with --exit-code 1 when any app is drifted or missing, or Degraded or
    Missing; 1 when the cluster cannot be reached; 2 bad input.

    \b
    Examples:
      sbkube status --app-dir apps/demo
      sbkube status --app-dir apps/demo --app web -o json --exit-code
      sbkube status --app-dir platform --phase data
    """
    from sbkube.engine.status import status as drift_status
    from sbkube.engine.status import status_phases
    from sbkube.engine.units import phases_of

    phased = phases_of(app_dir, config_file, profile)
    refuse_for_phases(app_dir, phased, phases, namespace)
    cluster = make_cluster_for(
        app_dir, config_file, profile, kubeconfig, kube_context, memory_cluster
    )
    picked: dict[str, Any] = {
        "cluster": cluster,
        "db": (ctx.find_root().obj or {}).get("state_url"),
        "apps": apps or None,
        "selectors": selectors,
        "no_deps": no_deps,
    }
    if phased is not None:
        report = status_phases(phased, phases=phases or None, **picked)
    else:
        report = drift_status(
            app_dir, config_file=config_file, profile=profile, namespace=namespace, **picked
        )
    if fmt != "table":
        emit(report, fmt)
    else:
        print_report(report, verbose=bool((ctx.find_root().obj or {}).get("verbose")))
    if exit_code and report.failing:
        ctx.exit(1)
