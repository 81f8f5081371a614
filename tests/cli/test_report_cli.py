"""``sbkube state report --html``: the README walkthrough's history, looked at in a browser.

The history is made the way a user makes it, with the real console script on the
in-memory cluster: deploy ``examples/demo``, change ``replicaCount`` 1 -> 2 and drop
``svc.yaml``, deploy again, roll back. The report is then opened from disk in headless
Chromium (the system package, through Playwright) and its DOM checked; a screenshot is
kept under ``tests/artifacts/``. The demo's Redis password is replaced by a sentinel that
must appear nowhere in the file: not in the HTML, not in the compressed details, not as
base64 (as a Secret holds it) and not as the digest the store keeps.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import zlib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
SENTINEL = "report-sentinel-9c1f2e7d"


def _walkthrough(sbkube: Any, tmp_path: Path) -> dict[str, str]:
    demo = Path(shutil.copytree(REPO_ROOT / "examples" / "demo", tmp_path / "demo"))
    values = demo / "values" / "redis.yaml"
    values.write_text(values.read_text().replace("demo-password", SENTINEL))
    cluster = str(tmp_path / "cluster.json")
    run = [f"--app-dir={demo}", f"--memory-cluster={cluster}"]
    first = sbkube("deploy", *run)
    assert first.returncode == 0, first.stderr
    config = demo / "config.yaml"
    text = config.read_text().replace("replicaCount: 1", "replicaCount: 2")
    text = text.replace("[manifests/web.yaml, manifests/svc.yaml]", "[manifests/web.yaml]")
    config.write_text(text)
    second = sbkube("deploy", *run)
    assert second.returncode == 0, second.stderr
    back = sbkube("rollback", *run)
    assert back.returncode == 0, back.stderr
    rows = sbkube.json("state", "list")
    newest_first = [r["deployment_id"] for r in rows]
    assert [r["command"] for r in rows] == ["rollback", "deploy", "deploy"]
    return dict(zip(("rollback", "second", "first"), newest_first, strict=True))


def _chunks(html: str) -> list[Any]:
    """The page's compressed details, decoded as the page's script decodes them."""
    m = re.search(r'<script type="application/json" id="sbkube-data">(.*?)</script>', html, re.S)
    assert m, "no embedded data in the report"
    data = json.loads(m.group(1))
    return [json.loads(zlib.decompress(base64.b64decode(c))) for c in data["chunks"]]


@pytest.fixture
def walkthrough_report(sbkube: Any, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    ids = _walkthrough(sbkube, tmp_path)
    out = tmp_path / "report.html"
    proc = sbkube("state", "report", "--html", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "3 deployment(s)" in proc.stderr
    return out, ids


def test_report_holds_no_secret(walkthrough_report: tuple[Path, dict[str, str]]) -> None:
    path, ids = walkthrough_report
    html = path.read_text()
    details = json.dumps(_chunks(html))
    forbidden = {
        SENTINEL,
        base64.b64encode(SENTINEL.encode()).decode(),
        "sha256:" + hashlib.sha256(SENTINEL.encode()).hexdigest(),
    }
    for text in (html, details):
        for secret in forbidden:
            assert secret not in text
        assert "sha256:" not in text  # no digest at all: a short secret's can be guessed
    assert all(i in details for i in ids.values())  # the decoding really found the details
    assert "(secret)" in details  # the password is there, masked


def test_report_opens_offline_and_reads_back_from_the_record(
    walkthrough_report: tuple[Path, dict[str, str]], sbkube: Any
) -> None:
    path, _ids = walkthrough_report
    narrowed = path.with_name("web.html")
    proc = sbkube("state", "report", "--html", str(narrowed), "--app", "web", "--since", "1d")
    assert proc.returncode == 0, proc.stderr
    chunk = _chunks(narrowed.read_text())[0]
    assert [a["name"] for d in chunk.values() for a in d["apps"]] == ["web"] * 3
    bad = sbkube("state", "report", "--html", str(narrowed), "--since", "yesterday")
    assert bad.returncode == 2
    assert "--since" in bad.stderr


@pytest.mark.browser
def test_report_in_a_browser(
    walkthrough_report: tuple[Path, dict[str, str]], chromium: Any
) -> None:
    path, ids = walkthrough_report
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(path.as_uri())

        # Every deployment is a row whose id is the full deployment id.
        rows = page.locator("tr.dep")
        assert rows.evaluate_all("rs => rs.map(r => r.id)") == [
            ids["rollback"],
            ids["second"],
            ids["first"],
        ]
        assert "rolled_back" in page.locator(f"[id='{ids['second']}']").inner_text()
        # The rollback is drawn pointing at the deployment it restored.
        arc = page.locator("path.rb")
        assert arc.count() == 1
        assert arc.get_attribute("data-from") == ids["rollback"]
        assert arc.get_attribute("data-to") == ids["first"]
        assert page.locator("a.tl").count() == 3
        # Per-app history: both apps, three rows each, revisions 3, 2, 1 for redis.
        redis = page.locator("section.app[data-app='redis'] tbody tr")
        assert redis.count() == 3
        assert [r.split("\t")[6] for r in redis.all_inner_texts()] == ["3", "2", "1"]
        assert page.locator("section.app[data-app='web'] tbody tr").count() == 3

        # A deep link opens the second deploy with its diff to the first.
        page.goto(f"{path.as_uri()}#{ids['second']}")
        page.reload()
        detail = page.locator(f"tr.detail[data-for='{ids['second']}']")
        detail.locator(".detail-body").wait_for()
        adds = detail.locator(".diff .l.add").all_inner_texts()
        dels = detail.locator(".diff .l.del").all_inner_texts()
        assert "+      replicaCount: 2" in adds
        assert "-      replicaCount: 1" in dels
        assert "-    - manifests/svc.yaml" in dels
        assert "+  replicas: 2" in adds
        changes = detail.locator("ul.changes li").all_inner_texts()
        assert "~ replicaCount: 1 -> 2" in changes
        assert "- Service/demo/web (v1)" in changes  # the pruned Service
        assert "= auth.password: (secret) unchanged" in changes
        resources = detail.locator("table").nth(2).locator("tbody tr").all_inner_texts()
        assert "web\tdelete\tService\tdemo\tweb\tv1" in resources

        # Side by side: old on the left, new on the right of the same row.
        page.locator("input[name=mode][value=split]").check()
        pair = detail.locator(".diff.split tr", has_text="replicaCount: 1").first
        cells = pair.locator("td").all_inner_texts()
        assert "replicaCount: 1" in cells[1]
        assert "replicaCount: 2" in cells[3]

        # The keyboard opens a row: Tab to its button, Enter.
        first_button = page.locator(f"[id='{ids['first']}'] button.open")
        first_button.focus()
        page.keyboard.press("Enter")
        assert first_button.get_attribute("aria-expanded") == "true"
        page.locator(f"tr.detail[data-for='{ids['first']}'] .detail-body").wait_for()
        assert (
            "nothing to compare"
            in page.locator(f"tr.detail[data-for='{ids['first']}']").inner_text()
        )

        page.screenshot(path=str(_artifact("report-walkthrough.png")), full_page=True)
        text = page.locator("body").inner_text()
        assert SENTINEL not in text

        # Filters hide rows: a search, then a status.
        page.fill("#q", "rollback")
        assert rows.evaluate_all("rs => rs.filter(r => r.offsetParent).map(r => r.id)") == [
            ids["rollback"]
        ]
        assert page.locator("#shown").inner_text() == "1 of 3 deployments shown"
        page.fill("#q", "")
        page.select_option("#status", "rolled_back")
        assert rows.evaluate_all("rs => rs.filter(r => r.offsetParent).map(r => r.id)") == [
            ids["second"]
        ]
        assert page.locator("a.tl:not(.hidden)").count() == 1
        page.screenshot(path=str(_artifact("report-filtered.png")))
    finally:
        page.close()
    assert errors == []
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
