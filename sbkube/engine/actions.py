"""Action apps: ordered ``apply`` and ``delete`` steps over manifest files.

Shape: the objects of the apply steps are a YAML app's (``apply.apply_yaml_app``: ownership
labels, one server-side apply, prune, record); then :func:`run_delete_steps` deletes, in
step order, the live objects each delete step's file names (one LIST, one delete per
step), records each as a ``delete`` resource of the app, and records every step in the
app's metadata (``steps``, after any hook's): ``{"phase": "action", "action": "apply" |
"delete", "path", "namespace", "objects": [{"kind", "namespace", "name", "result"}]}``,
``result`` being the resource action (``create``, ``update``, ``unchanged``, ``delete``)
or ``absent`` (a delete step's object that was not there). A delete step deletes what its
file names whoever made it: the file says so, as ``kubectl delete -f`` would; an object
already gone is not an error (a redeploy does nothing). Rollback and uninstall need
nothing of their own: the record holds the objects (re-applied or deleted from it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sbkube.engine.results import ResourceChange
from sbkube.engine.work import AppWork
from sbkube.manifests import ObjectKey
from sbkube.model import ResourceAction
from sbkube.state import ResourceInput

if TYPE_CHECKING:
    from sbkube.cluster.port import Objects
    from sbkube.state import AppHandle


def delete_keys(work: AppWork) -> tuple[ObjectKey, ...]:
    """The objects the app's delete steps name, in step order."""
    return tuple(key for step in work.actions if step.type == "delete" for key in step.keys)


def _identity(key: ObjectKey) -> tuple[str, str, str, str]:
    api_version, kind, namespace, name = key
    return (api_version.rpartition("/")[0], kind, namespace, name)


def run_delete_steps(
    work: AppWork,
    cluster: Objects,
    handle: AppHandle,
    applied: Sequence[ResourceChange],
) -> tuple[ResourceChange, ...]:
    """Run the delete steps and record every step (see the module docstring); ``applied``
    are the changes of the apply steps (and prune), for the apply steps' results."""
    results: dict[tuple[str, str, str, str], str] = {
        _identity((c.api_version, c.kind, c.namespace or "", c.name)): str(c.action)
        for c in applied
    }
    changes: list[ResourceChange] = []
    inputs: list[ResourceInput] = []
    for step in work.actions:
        if step.type != "delete" or not step.keys:
            continue
        live = cluster.list_many(list(step.keys))
        present = [key for key in step.keys if live.get(key) is not None]
        gone = set(cluster.delete_many(present)) if present else set()
        for key in step.keys:
            obj = live.get(key)
            if key in gone and obj is not None:
                results[_identity(key)] = str(ResourceAction.DELETE)
                inputs.append(
                    ResourceInput.from_manifest(
                        obj, ResourceAction.DELETE, previous=obj, source_file=step.path
                    )
                )
                api, kind, namespace, name = key
                changes.append(
                    ResourceChange(ResourceAction.DELETE, api, kind, namespace or None, name)
                )
            else:
                results[_identity(key)] = "absent"
    if inputs:
        handle.record_resources(inputs)
    steps: list[dict[str, Any]] = list(handle.metadata.get("steps") or [])
    for step in work.actions:
        steps.append(
            {
                "phase": "action",
                "action": step.type,
                "path": step.path,
                "namespace": step.namespace,
                "objects": [
                    {
                        "kind": key[1],
                        "namespace": key[2] or None,
                        "name": key[3],
                        "result": results.get(_identity(key), "absent"),
                    }
                    for key in step.keys
                ],
            }
        )
    handle.set_metadata(steps=steps)
    return tuple(changes)
