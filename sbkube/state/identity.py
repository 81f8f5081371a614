"""Who and what a record names: deployment ids, targets, the operator, ``latest~N`` refs.

Shared by the repository, the tracker, locks and retention, so an id is drawn, a target
spelled and an operator named the same way everywhere.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import socket
from datetime import datetime

from sbkube.model import utcnow

_LATEST = re.compile(r"^latest(?:~(\d+))?\Z")
# What new_deployment_id draws: dep-YYYYMMDD-HHMMSS- and 6 to 32 lowercase hex digits.
_DEPLOYMENT_ID = re.compile(r"dep-\d{8}-\d{6}-[0-9a-f]{6,32}")


def is_deployment_id(value: str) -> bool:
    """Whether ``value`` has the shape of a deployment id (not ``latest``, not a path)."""
    return _DEPLOYMENT_ID.fullmatch(value) is not None


def new_deployment_id(at: datetime | None = None) -> str:
    """``dep-YYYYMMDD-HHMMSS-xxxxxx``: sorts by start time, unique by its random tail."""
    at = at or utcnow()
    return f"dep-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def latest_offset(ref: str) -> int | None:
    """``latest`` -> 0, ``latest~N`` -> N; None for anything else (an id or a prefix)."""
    m = _LATEST.match(ref)
    return int(m.group(1) or 0) if m else None


def lock_target(cluster: str, namespace: str) -> str:
    """The scope of a deploy lock, and its key: ``cluster/namespace``."""
    return f"{cluster}/{namespace}"


def current_operator() -> str:
    try:
        return os.environ.get("SBKUBE_OPERATOR") or getpass.getuser()
    except Exception:  # getuser() fails in containers without a passwd entry
        return f"uid:{os.getuid()}"


def current_host() -> str:
    return socket.gethostname()
