"""Shapes of secrets the detectors learned with issue 22 (JSON inside a string, ``mysql
-pPASS``, ``Authorization`` headers), the rule that a known secret glued into a longer word
hides the whole string, and masking that never garbles what is not secret: tables in both
directions (what must be hidden, what must stay as it is)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from sbkube import redaction as r

S = "S3NT1NELx9Q"  # a sentinel: nothing else in these tables holds it


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each case starts knowing no secret: what one case found must not hide another's."""
    monkeypatch.setattr(r, "_SEEN", {})
    yield


def _cm(data: dict[str, str]) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data}


B64 = base64.b64encode(f"admin:{S}".encode()).decode()

HIDDEN_VALUES = {
    "JSON in a values string": {"config": json.dumps({"db": {"password": S}, "port": 5432})},
    "JSON list in a values string": {"users": json.dumps([{"name": "bob", "token": S}])},
    "mysql -pPASS in a command string": {"cmd": f"mysql -h db -uroot -p{S} app < dump.sql"},
    "mysql -pPASS as a list item": {"args": ["mysqldump", "-uroot", f"-p{S}", "app"]},
    "Authorization: Basic in a string": {"curl": f"curl -H 'Authorization: Basic {B64}' x"},
    "Authorization: Bearer in a string": {"hdr": f"Authorization: Bearer {S}"},
    "a header entry's value": {"headers": [{"name": "Authorization", "value": f"Bearer {S}"}]},
    "a Basic header entry": {"headers": [{"name": "Authorization", "value": f"Basic {B64}"}]},
}


@pytest.mark.parametrize("shape", list(HIDDEN_VALUES))
def test_a_shape_is_hidden_in_values_and_wherever_it_reappears(shape: str) -> None:
    values = HIDDEN_VALUES[shape]
    stored = r.redact_values(values)
    elsewhere = r.store_form(_cm({"note": f"the value is {S} here"}))
    shown = r.mask_text(f"error: chart refused {S}")
    text = json.dumps([stored, elsewhere]) + shown
    assert S not in text and B64 not in text, text
    assert base64.b64encode(S.encode()).decode() not in text


def test_a_long_letters_only_bearer_token_is_a_token() -> None:
    token = "AbCdEfGhIjKlMnOpQrSt"
    stored = r.redact_values({"h": f"Bearer {token}", "copy": f"x {token}"})
    assert token not in json.dumps(stored)
    assert stored["h"] == f"Bearer {r.digest(token)}"


def test_json_in_a_configmap_string_is_hidden_whole_and_restored_by_its_digest() -> None:
    doc = json.dumps({"user": "app", "password": "pw"})  # short: hidden by the JSON shape
    stored = r.store_form(_cm({"settings.json": doc, "mode": "pw-less"}))
    assert stored["data"]["settings.json"] == r.digest(doc)
    assert stored["data"]["mode"] == "pw-less"


def test_mysql_p_is_a_password_only_for_a_mysql_client() -> None:
    kept = {"args": ["nc", "-p8080", "host"], "cmd": "ssh -p2222 host", "x": "tar -pxf a.tar"}
    assert r.redact_values(kept) == kept
    short = r.redact_values({"args": ["mysql", "-pab"], "cmd": "mysql -uroot -pab db"})
    assert short["args"][1] == "-p" + r.digest("ab")
    assert short["cmd"] == f"mysql -uroot -p{r.digest('ab')} db"


KEPT_TEXTS = [
    "Basic authentication is disabled",
    "bearer authentication required",
    "Bearer Authentication",
    "the token was rejected",
    "token required",
    "Basic auth",
    "use a Basic configuration",
    "Authorization header missing",
    "authorization:\n  mode: Webhook\n  webhook:\n    cacheTTL: 5m",  # a kubelet config
    "--authorization-mode=Node,RBAC",
    "curl -H 'Authorization: Bearer ${API_TOKEN}' http://x",
    "mysqld --port=3306 -P3306",
]


@pytest.mark.parametrize("text", KEPT_TEXTS)
def test_ordinary_words_about_auth_stay_readable(text: str) -> None:
    assert r.mask_text(text) == text
    assert r.redact_values({"note": text}) == {"note": text}


def test_a_known_secret_glued_into_a_longer_word_hides_the_whole_string() -> None:
    """``old`` + ``"2"`` is not stored as ``<digest of old>2``: that would tell the new
    password's tail (and that it starts with the old one)."""
    old = "Tr0ub4dor-old"
    r.remember([old])
    stored = r.redact_values({"admin": {"code": old + "2"}, "same": old, "url": f"x {old} y"})
    assert stored["admin"]["code"] == r.digest(old + "2")
    assert stored["same"] == r.digest(old)
    assert stored["url"] == f"x {r.digest(old)} y"  # a whole token: replaced where it stands


# (text, secret known beforehand or None, expected masked text)
MASK_TABLE = [
    # garbling that used to happen: a one-letter value found after "key:"
    ("app/a/secret.yaml: key: a file must be a mapping", None, None),
    ("app/a/x.yaml: password: a", None, "app/a/x.yaml: password: ***"),
    ("run --token Zz9Qq8Ww7 now", None, "run --token *** now"),
    ("connect to mysql -uroot -pab", None, "connect to mysql -uroot -p***"),
    # a known secret: a whole token is masked, a glued one takes its word with it
    ("failed: Hunter2Hunter2 refused", "Hunter2Hunter2", "failed: *** refused"),
    ("failed: Hunter2Hunter2x refused", "Hunter2Hunter2", "failed: *** refused"),
    ("path=/srv/Hunter2Hunter2/x", "Hunter2Hunter2", "path=/srv/***/x"),
    # a short known value is never hunted in free text
    ("ab is fine; cab and abc too", "ab", "ab is fine; cab and abc too"),
]


@pytest.mark.parametrize(("text", "known", "expected"), MASK_TABLE)
def test_mask_text_masks_secrets_and_nothing_else(
    text: str, known: str | None, expected: str | None
) -> None:
    if known is not None:
        r.remember([known])
    masked = r.mask_text(text)
    if expected is None:
        # "key: a" names a key field, whose value "a" is masked where it stands only
        assert masked == "app/a/secret.yaml: key: *** file must be a mapping", masked
    else:
        assert masked == expected
    if known is not None and len(known) >= r.MIN_REAPPEARING:
        assert known not in masked
