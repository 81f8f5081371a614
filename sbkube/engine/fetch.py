"""Step 1b of a deploy (and of every command that prepares apps): the app inputs that
come from elsewhere, fetched (``sbkube.sources``) before anything is prepared or recorded.

Shape of :func:`fetch_sources` (``mode``):

* ``fetch`` (a deploy): each git app among the selected apps, or named by one of them as
  ``${repos.NAME}``, is cloned or fetched into sbkube's cache and checked out at the
  commit its ``branch``/``tag``/``ref``/``commit`` names; each selected http app's ``url``
  is downloaded to its ``dest``;
* ``plan`` (``deploy --dry-run``): nothing is fetched or written. A checkout the cache
  already holds is used as it is, and an http app's ``dest`` as it is on disk; a note says
  what a real run would fetch. An app that reads a checkout or a download that is not
  there yet cannot be planned: it is left out of the plan, with a note saying why;
* ``cached`` (diff, status, template): as ``plan``, but an app whose input is not there
  is an error (one line: deploy fetches it).

It returns :class:`Fetched`: the config bound to the checkouts (``${repos.NAME}`` now
resolves), what each git/http app's step records (its ``source`` metadata: repository,
ref and commit sha; url, dest and sha256), the apps left out, and the notes. The file
checks the loader deferred for apps that read fetched files run here, once the files are
there. A source that cannot be fetched is one line naming the app and the field (a URL
git or the server cannot serve: exit 1; a ref the repository does not have: exit 2);
nothing has been recorded or applied then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from sbkube.cluster.process import calls_bounded
from sbkube.config.loader import LoadedConfig, check_app
from sbkube.config.schema import GitApp, HttpApp, duration_seconds
from sbkube.errors import ClusterError, ConfigError
from sbkube.redaction import mask_url
from sbkube.sources import cache_home
from sbkube.sources.git import Checkout, FetchError, GitCache
from sbkube.sources.http import download, file_digest

Mode = Literal["fetch", "plan", "cached"]


@dataclass
class Fetched:
    """What :func:`fetch_sources` found (see the module docstring)."""

    loaded: LoadedConfig
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def names(self, names: Sequence[str]) -> tuple[str, ...]:
        """``names`` without the apps left out."""
        return tuple(n for n in names if n not in self.left_out)


def _bound(app: GitApp | HttpApp) -> float | None:
    return duration_seconds(app.timeout) if app.timeout else None


def _failed(loaded: LoadedConfig, name: str, err: FetchError) -> Exception:
    line = f"{loaded.shown_config}: apps.{name}.{err.field}: {err.message}"
    return ConfigError(line) if err.exit_code == 2 else ClusterError(line)


def fetch_sources(
    loaded: LoadedConfig,
    names: Sequence[str],
    *,
    mode: Mode,
    cache: GitCache | None = None,
) -> Fetched:
    """Fetch (or, ``plan``/``cached``, look up) the inputs ``names`` need; see the module
    docstring."""
    selected = set(names)
    needed_git: set[str] = set()
    readers: dict[str, list[str]] = {}  # source app -> the selected apps that read it
    for name in names:
        for source in loaded.waits_for_sources(name):
            readers.setdefault(source, []).append(name)
            if isinstance(loaded.app(source), GitApp):
                needed_git.add(source)
    out = Fetched(loaded)
    checkouts: dict[str, Path] = {}
    missing: dict[str, str] = {}  # source app -> why its output is not there
    git = cache or GitCache(cache_home())
    for name in loaded.order:
        app = loaded.app(name)
        if isinstance(app, GitApp) and (name in selected or name in needed_git):
            kind, ref = app.wanted
            wanted = "HEAD" if ref is None else f"{kind} {ref}"
            shown = mask_url(app.repo)
            checkout: Checkout | None
            with calls_bounded(_bound(app)):
                if mode == "fetch":
                    try:
                        checkout = git.fetch(app.repo, kind, ref)
                    except FetchError as err:
                        raise _failed(loaded, name, err) from None
                else:
                    checkout = git.cached(app.repo, kind, ref)
            if checkout is None:
                missing[name] = f"${{repos.{name}}}, not fetched yet"
                if mode == "plan":
                    out.notes.append(f"app {name} would clone {shown} ({wanted}) into the cache")
                continue
            if mode == "plan":
                out.notes.append(
                    f"app {name} would fetch {shown} ({wanted}); planned with the cached "
                    f"commit {checkout.commit[:12]}"
                )
            if app.path is not None and not (checkout.tree / app.path).exists():
                raise ConfigError(
                    f"{loaded.shown_config}: apps.{name}.path: {app.path!r} is not in "
                    f"{shown} at {checkout.commit[:12]} ({wanted})"
                )
            checkouts[name] = checkout.tree
            record = checkout.record()
            if app.path is not None:
                record["path"] = app.path
            out.records[name] = record
        elif isinstance(app, HttpApp) and name in selected:
            dest = loaded.app_dir / app.dest
            if mode == "fetch":
                with calls_bounded(_bound(app)):
                    try:
                        done = download(app.url, dest, app.dest, app.headers)
                    except FetchError as err:
                        raise _failed(loaded, name, err) from None
                out.records[name] = done.record()
                continue
            if mode == "plan":
                out.notes.append(
                    f"app {name} would download {mask_url(app.url)} to {app.dest}"
                    + (" (planned with the file there now)" if dest.is_file() else "")
                )
            if dest.is_file():
                out.records[name] = {
                    "kind": "http",
                    "url": mask_url(app.url),
                    "dest": app.dest,
                    "sha256": file_digest(dest),
                }
            else:
                missing[name] = f"{app.dest}, not downloaded yet"
    bound = replace(loaded, checkouts=checkouts)
    out.loaded = bound
    for name in names:
        sources = loaded.waits_for_sources(name)
        if not sources:
            continue
        absent = [missing[s] for s in sources if s in missing]
        if absent:
            if mode == "cached":
                raise ConfigError(
                    f"{loaded.shown_config}: apps.{name}: it reads {absent[0]} "
                    "(sbkube deploy fetches it)"
                )
            out.left_out[name] = absent[0]
            out.notes.append(
                f"app {name} is not planned: it reads {absent[0]} (a dry run fetches nothing)"
            )
            continue
        check_app(bound, name)
    return out
