"""Subprocess adapter for the ``kubectl`` binary: get, list, apply and delete objects.

Writes are server-side applies (field manager ``sbkube``, conflicts forced: a deploy puts
back what the config declares). Reads keep ``metadata.managedFields`` (kubectl hides them
by default): which fields sbkube's manager owns is how a deploy knows what to remove.
Many objects go through one process: ``apply -f -`` and ``delete -f -`` with a ``List`` on
stdin, ``get K1,K2 -n NS`` for one LIST request per kind.

As in ``helm.py``, the command lines are built by pure functions (tested without kubectl)
that take the cluster-selecting flags as one list, and run by ``KubectlClient`` (a
``process.BinaryClient``, which holds those flags and maps a non-zero exit to ClusterError).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sbkube.cluster.process import BinaryClient, duration_text, target_flags
from sbkube.errors import ClusterError
from sbkube.manifests import (
    FIELD_MANAGER,
    ObjectKey,
    api_group,
    format_key,
    object_key,
    parse_rendered,
)

KUBECTL_ENV_VAR = "SBKUBE_KUBECTL"


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
        "--show-managed-fields",
        *flags,
    ]


def get_many_argv(binary: str, *, flags: Sequence[str] = ()) -> list[str]:
    """``kubectl get -f -``: every object named by the ``List`` on stdin, in one call;
    missing ones are left out (--ignore-not-found) rather than failing the call."""
    return [
        binary,
        "get",
        "--filename",
        "-",
        "--ignore-not-found",
        "--output",
        "json",
        "--show-managed-fields",
        *flags,
    ]


def version_argv(binary: str, *, timeout: str = "10s", flags: Sequence[str] = ()) -> list[str]:
    """``kubectl get --raw /version``: the cheapest request that needs a reachable server."""
    return [binary, "get", "--raw", "/version", f"--request-timeout={timeout}", *flags]


def bounded_argv(argv: list[str], seconds: float) -> list[str]:
    """``argv`` told to end within ``seconds`` (see ``KubectlClient.bounded``); a command
    that talks to no server (``config ...``) or already says its bound is left as it is."""
    if len(argv) < 2 or argv[1] == "config":
        return argv
    flags: list[str] = []
    if not any(arg.startswith("--request-timeout") for arg in argv):
        flags.append(f"--request-timeout={duration_text(seconds)}")
    if argv[1] == "delete" and not any(arg.startswith("--timeout") for arg in argv):
        flags.append(f"--timeout={duration_text(seconds)}")
    return [*argv, *flags]


def stub(key: ObjectKey) -> dict[str, Any]:
    """The least of a manifest that names ``key`` (what ``kubectl get -f`` reads)."""
    api_version, kind, namespace, name = key
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def parse_list(text: str, what: str) -> list[dict[str, Any]]:
    """kubectl's JSON for several objects (a ``List``; one object alone when only one)."""
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClusterError(f"{what}: kubectl printed invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ClusterError(f"{what}: kubectl printed JSON that is not an object")
    items = data.get("items") if data.get("kind") == "List" else [data]
    return [item for item in items or [] if isinstance(item, dict)]


def match_objects(
    keys: Sequence[ObjectKey], items: Sequence[Mapping[str, Any]]
) -> dict[ObjectKey, dict[str, Any] | None]:
    """Each key's object among ``items`` (None when absent). Matched by kind, namespace and
    name, and by the API group unless only one item fits: kubectl may answer in another
    version of the group, and a kind it serves cluster-wide comes back without the
    namespace a manifest gave it."""
    # Indexed by kind and name: a LIST of a busy namespace has thousands of items.
    by_name: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for item in items:
        by_name.setdefault((item.get("kind"), (item.get("metadata") or {}).get("name")), []).append(
            item
        )
    found: dict[ObjectKey, dict[str, Any] | None] = {}
    for key in keys:
        api_version, kind, namespace, name = key
        group = api_version.rpartition("/")[0]
        candidates = [dict(item) for item in by_name.get((kind, name), ())]
        exact = [
            item
            for item in candidates
            if (item.get("metadata") or {}).get("namespace", "") in (namespace, "")
            and str(item.get("apiVersion", "")).rpartition("/")[0] == group
        ]
        chosen = exact or (candidates if len(candidates) == 1 else [])
        found[key] = chosen[0] if chosen else None
    return found


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


def list_argv(
    binary: str,
    kinds: Sequence[tuple[str, str]],
    *,
    namespace: str | None,
    selector: Mapping[str, str] | None = None,
    flags: Sequence[str] = (),
) -> list[str]:
    """``kubectl get K1,K2 -n NS -o json``: every object of the ``(api_version, kind)``
    pairs, one LIST request per kind in one process. Namespaced kinds are listed in
    ``namespace`` (in every namespace when None), cluster-scoped ones whole; ``selector``
    keeps the objects carrying all its labels."""
    resources = ",".join(resource_arg(api_version, kind) for api_version, kind in kinds)
    scope = ["--all-namespaces"] if namespace is None else _namespace_flags(namespace)
    labels = ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items()))
    return [
        binary,
        "get",
        resources,
        *scope,
        *(["--selector", labels] if labels else []),
        "--output",
        "json",
        "--show-managed-fields",
        *flags,
    ]


def raw_list_path(api_version: str, resource: str, namespace: str | None) -> str:
    """The URL path that LISTs ``resource`` of ``api_version``: ``/api/v1/...`` for the
    core group, ``/apis/GROUP/VERSION/...`` for the others, under ``namespaces/NS`` for a
    namespaced kind."""
    base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{where}/{resource}"


def delete_many_argv(binary: str, *, dry_run: bool = False, flags: Sequence[str] = ()) -> list[str]:
    """``kubectl delete -f -``: every object named by the ``List`` on stdin, in one call;
    ``-o name`` prints each one deleted (:func:`deleted_name`), absent ones are skipped."""
    return [
        binary,
        "delete",
        "--filename",
        "-",
        "--ignore-not-found",
        "--wait=true",
        *(["--dry-run=server"] if dry_run else []),
        "--output",
        "name",
        *flags,
    ]


def deleted_name(key: ObjectKey) -> str:
    """How ``kubectl delete -o name`` names a deleted object: ``deployment.apps/web``."""
    api_version, kind, _namespace, name = key
    group = api_version.rpartition("/")[0]
    return f"{kind.lower()}{'.' + group if group else ''}/{name}"


def _unknown_kind(message: str) -> bool:
    return "doesn't have a resource type" in message or "no matches for kind" in message


def _as_list(manifests: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [dict(m) for m in manifests]})


def _count(n: int) -> str:
    return f"{n} object{'' if n == 1 else 's'}"


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


def kustomize_argv(binary: str, path: str) -> list[str]:
    """``kubectl kustomize PATH``: kubectl's built-in kustomize renders a kustomization to
    YAML, offline (no cluster flags: it reads no kubeconfig)."""
    return [binary, "kustomize", path]


def api_resources_argv(binary: str, *, flags: Sequence[str] = ()) -> list[str]:
    """``kubectl api-resources -o wide``: every kind the cluster serves, with its scope."""
    return [binary, "api-resources", "--output", "wide", *flags]


class Served(NamedTuple):
    """A kind the cluster serves, as discovery tells it: its scope and its resource (the
    plural name in its URL, ``configmaps``)."""

    namespaced: bool
    resource: str


def parse_api_resources(text: str) -> dict[tuple[str, str], Served]:
    """``kubectl api-resources -o wide`` -> ``{(group, kind): Served}``.

    The table is aligned under its header (kubectl's tabwriter) and SHORTNAMES or CATEGORIES
    may be empty, so columns are cut at the header's word positions, not split on blanks.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return {}
    header = lines[0]
    starts = {m.group(0): m.start() for m in re.finditer(r"\S+", header)}
    bounds = [*sorted(starts.values()), None]
    wanted = ("NAME", "APIVERSION", "NAMESPACED", "KIND")
    if not all(column in starts for column in wanted):
        raise ClusterError(f"kubectl api-resources printed an unknown table: {header.strip()!r}")

    def cell(row: str, column: str) -> str:
        start = starts[column]
        end = bounds[bounds.index(start) + 1]
        return row[start:end].strip()

    scopes: dict[tuple[str, str], Served] = {}
    for row in lines[1:]:
        resource, api_version, namespaced, kind = (cell(row, column) for column in wanted)
        if kind and resource and namespaced in ("true", "false"):
            scopes[(api_group(api_version), kind)] = Served(namespaced == "true", resource)
    return scopes


def config_view_argv(
    binary: str, *, kubeconfig: str | None = None, context: str | None = None
) -> list[str]:
    """``kubectl config view --minify``: the selected context, its cluster and user."""
    return [
        binary,
        "config",
        "view",
        "--minify",
        "--output",
        "json",
        *cluster_flags(kubeconfig=kubeconfig, context=context),
    ]


def flattened_config_argv(
    binary: str, *, kubeconfig: str | None = None, context: str | None = None
) -> list[str]:
    """``kubectl config view --minify --flatten``: a self-contained kubeconfig whose current
    context is the selected one (for commands sbkube runs: hooks, exec apps)."""
    return [
        binary,
        "config",
        "view",
        "--minify",
        "--flatten",
        "--output",
        "yaml",
        *cluster_flags(kubeconfig=kubeconfig, context=context),
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
        server_side: bool = True,
        env: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> None:
        super().__init__(binary, kubeconfig, context, env, dry_run=dry_run)
        self.server_side = server_side

    def bounded(self, argv: list[str], seconds: float) -> list[str]:
        """Every request within ``seconds`` (``--request-timeout``: kubectl gives up on a
        request the server never answers, and says so); a delete's wait too (``--timeout``:
        by default kubectl waits as long as the objects' size suggests)."""
        return bounded_argv(argv, seconds)

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

    def get_many(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        """Every object of ``keys`` in one ``kubectl get -f -`` (None for the absent ones).

        A kind the server does not serve fails the whole call (kubectl stops at it): then
        each key is asked alone, so that kind reads as absent and the rest as they are."""
        if not keys:
            return {}
        what = f"kubectl get ({len(keys)} objects)"
        stdin = json.dumps({"apiVersion": "v1", "kind": "List", "items": [stub(k) for k in keys]})
        try:
            out = self.run(get_many_argv(self.binary, flags=self.flags), what=what, stdin=stdin)
        except ClusterError as exc:
            if not _unknown_kind(exc.message):
                raise
            return {key: self.get(key) for key in keys}
        return match_objects(keys, parse_list(out, what))

    def flattened_config(self) -> str:
        """This client's kubeconfig and context as one self-contained kubeconfig (text)."""
        argv = flattened_config_argv(self.binary, kubeconfig=self.kubeconfig, context=self.context)
        return self.run(argv, what="kubectl config view --flatten")

    def kustomize(self, path: str) -> list[dict[str, Any]]:
        """The objects of the kustomization at ``path`` (``kubectl kustomize``)."""
        what = f"kubectl kustomize {path}"
        return parse_rendered(self.run(kustomize_argv(self.binary, path), what=what), what)

    def probe(self) -> None:
        """ClusterError with kubectl's reason when the API server does not answer."""
        self.run(version_argv(self.binary, flags=self.flags), what="kubectl get --raw /version")

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

    def list_kinds(
        self,
        kinds: Sequence[tuple[str, str]],
        namespace: str | None,
        selector: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """The objects of ``kinds`` (see :func:`list_argv`) in one process. A kind the
        server does not serve fails the whole call (kubectl stops at it): then each kind is
        listed alone, so that kind reads as empty and the others as they are."""
        if not kinds:
            return []
        argv = list_argv(
            self.binary, kinds, namespace=namespace, selector=selector, flags=self.flags
        )
        what = f"kubectl get {argv[2]}"
        try:
            out = self.run(argv, what=what)
        except ClusterError as exc:
            if not _unknown_kind(exc.message):
                raise
            if len(kinds) == 1:
                return []
            return [obj for kind in kinds for obj in self.list_kinds([kind], namespace, selector)]
        return parse_list(out, what)

    def list_raw(
        self, api_version: str, kind: str, resource: str, namespace: str | None
    ) -> list[dict[str, Any]]:
        """Every object of one kind (in ``namespace``; cluster-scoped: None), with
        ``kubectl get --raw PATH`` (:func:`raw_list_path`): the same objects as
        :meth:`list_kinds` of that kind, at a cost that does not grow with their number.
        kubectl decodes and prints every object of a ``get -o json`` (~0.15 ms each here:
        300 ms for 2,000 ConfigMaps) but passes a raw answer through (~45 ms for any
        number). A LIST answer's items carry no ``apiVersion`` or ``kind`` (``get -o json``
        adds them): they are given the list's."""
        path = raw_list_path(api_version, resource, namespace)
        what = f"kubectl get --raw {path}"
        out = self.run([self.binary, "get", "--raw", path, *self.flags], what=what)
        try:
            data = json.loads(out)
        except json.JSONDecodeError as exc:
            raise ClusterError(f"{what}: kubectl printed invalid JSON: {exc}") from exc
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ClusterError(f"{what}: the answer is not a list of objects")
        found = [item for item in items if isinstance(item, dict)]
        for item in found:
            item.setdefault("apiVersion", data.get("apiVersion") or api_version)
            item.setdefault("kind", kind)
        return found

    def apply_many(self, manifests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Apply every manifest in one ``kubectl apply -f -`` (a ``List`` on stdin); the
        live objects come back in the same order. kubectl goes on past an object that
        fails and then exits 1 naming it: the error is kubectl's, and nothing is returned."""
        if not manifests:
            return []
        keys = [object_key(m) for m in manifests]
        shown = format_key(keys[0]) if len(keys) == 1 else f"({_count(len(keys))})"
        what = f"kubectl apply {shown}"
        argv = apply_argv(
            self.binary, server_side=self.server_side, dry_run=self.dry_run, flags=self.flags
        )
        out = self.run(argv, what=what, stdin=_as_list(manifests))
        found = match_objects(keys, parse_list(out, what))
        missing = [format_key(key) for key in keys if found[key] is None]
        if missing:
            raise ClusterError(f"{what}: kubectl printed no object for {', '.join(missing[:5])}")
        return [found[key] or {} for key in keys]

    def delete_many(self, keys: Sequence[ObjectKey]) -> list[ObjectKey]:
        """Delete every object of ``keys`` in one ``kubectl delete -f -``; returns the keys
        kubectl reports deleted (those already gone are not), in order."""
        if not keys:
            return []
        what = f"kubectl delete ({_count(len(keys))})"
        argv = delete_many_argv(self.binary, dry_run=self.dry_run, flags=self.flags)
        out = self.run(argv, what=what, stdin=_as_list([stub(k) for k in keys]))
        printed = out.split()
        deleted: list[ObjectKey] = []
        # kubectl deletes in the List's order and prints each deleted one as it goes.
        at = 0
        for key in keys:
            if at < len(printed) and printed[at] == deleted_name(key):
                deleted.append(key)
                at += 1
        return deleted

    def api_resources(self) -> dict[tuple[str, str], Served]:
        """``{(group, kind): Served}`` for every kind the cluster serves (discovery).

        kubectl prints the kinds it could discover and exits 1 when one API group does not
        answer (an aggregated API that is down); those kinds are still good to use.
        """
        what = "kubectl api-resources"
        proc = self.execute(api_resources_argv(self.binary, flags=self.flags), what=what)
        scopes = parse_api_resources(proc.stdout) if proc.stdout.strip() else {}
        if proc.returncode != 0 and not scopes:
            raise self.failure(proc, what)
        return scopes

    def selected_cluster(
        self, kubeconfig: str | None = None, context: str | None = None
    ) -> tuple[str | None, str | None]:
        """``(context name, API server URL)`` that ``kubeconfig`` and ``context`` (default:
        this client's) select; the URL is None when the kubeconfig does not name that
        context (or no context at all)."""
        kubeconfig = kubeconfig or self.kubeconfig
        context = context or self.context
        argv = config_view_argv(self.binary, kubeconfig=kubeconfig, context=context)
        proc = self.execute(argv, what="kubectl config view")
        if proc.returncode != 0:
            # "current-context must exist in order to minify", "cannot locate context".
            return context, None
        try:
            view = json.loads(proc.stdout or "{}")
        except json.JSONDecodeError:
            return context, None
        context = context or view.get("current-context") or None
        clusters = view.get("clusters") or []
        server = None
        if clusters and isinstance(clusters[0], Mapping):
            server = (clusters[0].get("cluster") or {}).get("server") or None
        return context, server

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
