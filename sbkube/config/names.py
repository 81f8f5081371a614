"""Kubernetes and text rules for ``config.yaml`` fields, without pydantic.

The models of :mod:`sbkube.config.schema` check their fields with these, and
:mod:`sbkube.config.quick` (``sbkube template``'s check, which must not pay for building
the models) with the very same functions.
"""

from __future__ import annotations

import re

#: The config file names: ours, and the original tool's single file.
OURS_FILE = "config.yaml"
SINGLE_FILE = "sbkube.yaml"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
# Helm stores releases in Secrets named sh.helm.release.v1.<name>.v<N>; it caps names at 53.
HELM_RELEASE_NAME_MAX = 53
#: The longest free-text field (a cluster name, a version, a pattern).
MAX_TEXT = 253
#: The longest path or URL (a chart reference, a repo URL): Linux's PATH_MAX.
MAX_PATH = 4096

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
# A Kubernetes label value: empty, or alphanumerics with '-', '_', '.' inside; at most 63.
# (Every pattern here ends in \Z, not $: $ also matches before a final newline, which let
# "web\n" through as a name.)
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")


def short(value: str) -> str:
    """``value`` quoted, cut to 40 characters, as a message shows it."""
    return repr(value) if len(value) <= 40 else repr(value[:37] + "...")


def dns1123_label_problem(value: str, max_len: int = DNS1123_LABEL_MAX) -> str | None:
    """Why ``value`` is not a valid DNS-1123 label of at most ``max_len`` characters, or None."""
    if not value:
        return "must not be empty"
    if len(value) > max_len:
        return f"{short(value)} is {len(value)} characters long (at most {max_len})"
    if not _LABEL_RE.match(value):
        return (
            f"{short(value)} is not a valid DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def dns1123_subdomain_problem(value: str) -> str | None:
    """Why ``value`` is not a valid DNS-1123 subdomain (a Kubernetes object name), or None."""
    if not value:
        return "must not be empty"
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        return f"{short(value)} is {len(value)} characters long (at most {DNS1123_SUBDOMAIN_MAX})"
    if not _SUBDOMAIN_RE.match(value):
        return (
            f"{short(value)} is not a valid DNS-1123 subdomain (lowercase letters, digits, "
            "'-' and '.', starting and ending with a letter or digit)"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid Kubernetes label value, or None."""
    if len(value) > DNS1123_LABEL_MAX:
        return f"{short(value)} is {len(value)} characters long (at most {DNS1123_LABEL_MAX})"
    if not _LABEL_VALUE_RE.match(value):
        return (
            f"{short(value)} is not a valid label value (letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit)"
        )
    return None


def text_problem(value: str, max_len: int = MAX_TEXT) -> str | None:
    """Why ``value`` is not printable text of at most ``max_len`` characters (it is
    recorded, shown in tables and passed to helm and kubectl as an argument), or None."""
    if len(value) > max_len:
        return f"{short(value)} is {len(value)} characters long (at most {max_len})"
    if not value.isprintable():
        return f"{short(value)} holds a control character"
    return None
