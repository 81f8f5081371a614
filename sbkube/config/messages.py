"""One-line messages for what is wrong in a config: the cases only a config has (unknown
fields with closest-name hints, app types) in front of the common wording of
:mod:`sbkube.messages`.

Every message starts with the file as shown (``display_path``) and the dotted field
(``apps.redis.chart``), so the CLI prints it as is.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from sbkube.config.schema import APP_MODELS, APP_TYPES, SbkubeConfig
from sbkube.errors import ConfigError
from sbkube.messages import dotted, error_line, error_text, first_error, suggest


def validation_error(err: ValidationError, shown: str) -> ConfigError:
    """The first (most useful) pydantic error as one ConfigError line."""
    first = first_error(err)
    loc = list(first["loc"])
    kind = first["type"]
    app_type: str | None = None
    if len(loc) >= 3 and loc[0] == "apps" and loc[2] in APP_TYPES:
        app_type = str(loc.pop(2))
    if loc and loc[-1] == "[key]":
        loc.pop()
        key = loc.pop() if loc else "?"
        return ConfigError(
            f"{shown}: {dotted(loc)}: key {key!r} must be a string (quote it in the YAML)"
        )
    path = dotted(loc)
    ctx = first.get("ctx") or {}

    if kind == "extra_forbidden":
        key = str(loc[-1])
        if app_type is not None:
            model = APP_MODELS[app_type]
            elsewhere = [
                t for t, m in APP_MODELS.items() if t != app_type and key in m.model_fields
            ]
            if elsewhere:
                return ConfigError(
                    f"{shown}: {path}: unknown field for a {app_type!r} app "
                    f"(it belongs to {elsewhere[0]!r} apps)"
                )
            fields: Iterable[str] = model.model_fields
        elif len(loc) == 1:
            fields = SbkubeConfig.model_fields
        else:
            fields = ()
        return ConfigError(f"{shown}: {path}: unknown field{suggest(key, fields)}")
    if kind == "union_tag_invalid":
        valid = ", ".join(APP_TYPES)
        return ConfigError(
            f"{shown}: {path}.type: unknown app type {ctx.get('tag')!r} (valid types: {valid})"
        )
    if kind == "union_tag_not_found":
        valid = ", ".join(APP_TYPES)
        return ConfigError(f"{shown}: {path}.type: required field missing (one of: {valid})")
    return ConfigError(error_line(shown, loc, error_text(first)))
