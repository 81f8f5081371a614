"""Subprocess adapter for the ``kubectl`` binary: get, apply and delete single objects.

As in ``helm.py``, the command lines are built by pure functions (tested without kubectl)
that take the cluster-selecting flags as one list, and run by ``KubectlClient`` (a
``process.BinaryClient``, which holds those flags and maps a non-zero exit to ClusterError).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sbkube.cluster.port import ObjectKey, format_key, object_key
from sbkube.cluster.process import BinaryClient, target_flags
from sbkube.errors import ClusterError

KUBECTL_ENV_VAR = "SBKUBE_KUBECTL"
FIELD_MANAGER = "sbkube"


def resource_arg(api_version: str, kind: str) -> str:
    """The RESOURCE argument for ``kubectl get/delete``, fully qualified.

    ``Kind.version.group`` (e.g. ``Deployment.v1.apps``) keeps kubectl from picking another
    API group that happens to serve a kind of the same name; core kinds (``v1``) have no
    group and are given by kind alone.
    """
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return f"{kind}.{version}.{group}"
    return kind


def cluster_flags(*, kubeconfig: str | None = None, context: str | None = None) -> list[str]:
    """Flags that select the cluster; empty when kubectl's own defaults apply."""
    return target_flags(kubeconfig=kubeconfig, context=context, context_flag="--context")


def _namespace_flags(namespace: str) -> list[str]:
    return ["--namespace", namespace] if namespace else []


def get_argv(
    binary: str,
    key: ObjectKey,
    *,
    flags: Sequence[str] = (),
) -> list[str]:
    # --ignore-not-found: a missing object prints nothing and exits 0, so "absent" is not
    # told apart from "failed" by parsing an error message.
    api_version, kind, namespace, name = key
    return [
        binary,
        "get",
        resource_arg(api_version, kind),
        name,
        *_namespace_flags(namespace),
        "--ignore-not-found",
        "--output",
        "json",
        *flags,
    ]


def apply_argv(
    binary: str,
    *,
    server_side: bool = False,
    dry_run: bool = False,
    flags: Sequence[str] = (),
) -> list[str]:
    """``kubectl apply -f -``; the manifest goes on stdin, the live object comes back."""
    argv = [binary, "apply", "--filename", "-", "--output", "json"]
    if server_side:
        argv += ["--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts"]
    if dry_run:
        argv.append("--dry-run=server")
    return [*argv, *flags]


def delete_argv(
    binary: str,
    key: ObjectKey,
    *,
    wait: bool = True,
    dry_run: bool = False,
    flags: Sequence[str] = (),
) -> list[str]:
    # -o name prints "kind.group/name" for a deleted object and nothing when it was absent,
    # which is how delete() tells the two apart.
    api_version, kind, namespace, name = key
    return [
        binary,
        "delete",
        resource_arg(api_version, kind),
        name,
        *_namespace_flags(namespace),
        "--ignore-not-found",
        f"--wait={'true' if wait else 'false'}",
        *(["--dry-run=server"] if dry_run else []),
        "--output",
        "name",
        *flags,
    ]


def current_context_argv(binary: str, *, kubeconfig: str | None = None) -> list[str]:
    # Only the kubeconfig: the question is which context it names.
    return [binary, "config", "current-context", *cluster_flags(kubeconfig=kubeconfig)]


def _parse_object(text: str, what: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClusterError(f"{what}: kubectl printed invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ClusterError(f"{what}: kubectl printed JSON that is not an object")
    # A single-document apply prints the object; some kubectl versions wrap it in a List.
    if data.get("kind") == "List" and isinstance(data.get("items"), list) and data["items"]:
        first = data["items"][0]
        return first if isinstance(first, dict) else None
    return data


class KubectlClient(BinaryClient):
    """Runs kubectl against one kubeconfig/context."""

    NAME = "kubectl"
    ENV_VAR = KUBECTL_ENV_VAR
    CONTEXT_FLAG = "--context"

    def __init__(
        self,
        binary: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        server_side: bool = False,
        env: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> None:
        super().__init__(binary, kubeconfig, context, env, dry_run=dry_run)
        self.server_side = server_side

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        what = f"kubectl get {format_key(key)}"
        argv = get_argv(self.binary, key, flags=self.flags)
        try:
            out = self.run(argv, what=what)
        except ClusterError as exc:
            # --ignore-not-found covers missing objects; an unknown kind (CRD not installed
            # yet) also means "there is no such object".
            if "the server doesn't have a resource type" in exc.message:
                return None
            raise
        return _parse_object(out, what)

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        what = f"kubectl apply {format_key(object_key(manifest))}"
        argv = apply_argv(
            self.binary,
            server_side=self.server_side,
            dry_run=self.dry_run,
            flags=self.flags,
        )
        out = self.run(argv, what=what, stdin=json.dumps(dict(manifest)))
        live = _parse_object(out, what)
        if live is None:
            raise ClusterError(f"{what}: kubectl printed no object")
        return live

    def delete(self, key: ObjectKey) -> bool:
        argv = delete_argv(self.binary, key, dry_run=self.dry_run, flags=self.flags)
        out = self.run(argv, what=f"kubectl delete {format_key(key)}")
        return bool(out.strip())

    def current_context(self) -> str | None:
        """``kubectl config current-context``; None when the kubeconfig names none."""
        # Outside the try: a missing kubectl is an error, not "no context".
        argv = current_context_argv(self.binary, kubeconfig=self.kubeconfig)
        try:
            out = self.run(argv, what="kubectl config current-context")
        except ClusterError:
            # kubectl exits 1 with "current-context is not set" for an empty kubeconfig.
            return None
        return out.strip() or None
