"""``sbkube state diff|prune|export|import`` (registered on the ``state`` group)."""

from __future__ import annotations
