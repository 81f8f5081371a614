"""``sbkube config convert``: an app dir in either of the original sbkube's formats, as
our ``config.yaml``.

:func:`convert` loads the dir as a deploy would (every check, every refusal: a dir that
cannot deploy cannot be converted either) and returns our ``config.yaml`` text: a header
of comments, one per field the two formats say differently and what became of it (the
``Rendering`` list of :mod:`~sbkube.config.original`), then the YAML. Written beside the
original files, it deploys the same objects: its paths are the app dir's.
"""

from __future__ import annotations

from pathlib import Path

from sbkube import yamlio
from sbkube.config.dialects import Dialect, find_config
from sbkube.config.loader import load_config, resolve_checked
from sbkube.config.reading import display_path, parse_yaml, read_file
from sbkube.errors import ConfigError

__all__ = ["convert"]


def convert(app_dir: str | Path, config_file: str | None = None, profile: str | None = None) -> str:
    """Our ``config.yaml`` for the app dir (see the module docstring); ConfigError when it
    is ours already or cannot be read."""
    from sbkube.config.original import translate

    loaded = load_config(app_dir, config_file, profile=profile)
    found = find_config(resolve_checked(Path(app_dir)), config_file, profile)
    if found.dialect == Dialect.OURS:
        raise ConfigError(
            f"{loaded.shown_config}: already sbkube's config.yaml; nothing to convert"
        )
    sources = None
    if found.sources is not None:
        shown = display_path(found.sources)
        sources = parse_yaml(read_file(found.sources, shown, "sources file"), shown)
    translation = translate(
        found.content,
        loaded.shown_config,
        sources=sources,
        sources_shown=None,
        base_dir=loaded.app_dir,
        single=found.dialect == Dialect.SINGLE,
    )
    names = [found.path.name] + ([found.sources.name] if found.sources else [])
    lines = [f"# sbkube config.yaml converted from {' + '.join(names)} (the original sbkube's)."]
    if translation.renderings:
        lines.append("# Said differently here:")
        lines += [f"#   {r.field}: {r.said}" for r in translation.renderings]
    if found.environments:
        # An overlay is written in the original's terms: each is converted on its own.
        applied = f"environments.{found.environment} applied; " if found.environment else ""
        lines.append(
            f"# environments ({', '.join(found.environments)}): {applied}not carried over; "
            "run `sbkube config convert --profile ENV` for each"
        )
    body = yamlio.dump(translation.raw, sort_keys=False, allow_unicode=True)
    return "\n".join(lines) + "\n" + body
