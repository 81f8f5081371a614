"""The detection layer (``sbkube.redaction``): keyed digests, the key file, and a property
test that a generated secret placed anywhere in values or manifests never comes back out."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbkube import keyfiles
from sbkube import redaction as r

SECRET_ALPHABET = "GHJKLMNPQRSTVWXZghjklmnpqrstvwxz"
secret_text = st.text(alphabet=SECRET_ALPHABET, min_size=10, max_size=24)
plain_text = st.text(alphabet="0123456789abcdef-.", max_size=8)


def _forms(secret: str) -> set[str]:
    b64 = base64.b64encode(secret.encode()).decode()
    return {
        secret,
        b64,
        b64.rstrip("="),
        quote(secret, safe=""),
        hashlib.sha256(secret.encode()).hexdigest(),
    }


def test_two_keys_give_different_digests_and_one_key_the_same() -> None:
    a, b = r.digest("hunter2hunter2", b"key-a"), r.digest("hunter2hunter2", b"key-b")
    assert a != b and r.is_digest(a) and r.is_digest(b)
    assert r.digest("hunter2hunter2", b"key-a") == a
    assert hashlib.sha256(b"hunter2hunter2").hexdigest() not in a


def test_digest_key_from_env_else_a_private_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(r.DIGEST_KEY_ENV, "team-key")
    assert r.digest_key() == b"team-key"
    monkeypatch.delenv(r.DIGEST_KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    key = r.digest_key()
    path = tmp_path / "cfg" / "sbkube" / "digest.key"
    assert path.read_bytes().strip() == key and len(key) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    keyfiles.forget()
    assert r.digest_key() == key  # read back, not replaced


def test_legacy_digests_are_rekeyed_to_what_the_value_digests_to_now() -> None:
    legacy = "sha256:" + hashlib.sha256(b"s3cr3t-value").hexdigest()
    image = "sha256:" + "ab" * 32
    assert r.rekey_legacy({"password": [legacy], "digest": image, "b": "x"}, b"k") == {
        "password": [r.digest("s3cr3t-value", b"k")],
        "digest": image,  # an image digest has the same shape: not a secret position
        "b": "x",
    }


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("connect postgresql+psycopg://u:PaSsWoRd99@h/db failed", "PaSsWoRd99"),
        ("run --db-password=Zz9Qq8Ww7 now", "Zz9Qq8Ww7"),
        ("run --token Zz9Qq8Ww7 now", "Zz9Qq8Ww7"),
        ("key AKIAABCDEFGHIJKLMNOP used", "AKIAABCDEFGHIJKLMNOP"),
    ],
)
def test_mask_text_hides_secrets_in_free_text(text: str, hidden: str) -> None:
    masked = r.mask_text(text)
    assert hidden not in masked and r.MASK in masked


def test_mask_text_leaves_ordinary_words() -> None:
    assert r.mask_text("invalid password for user bob") == "invalid password for user bob"


def _place(secret: str, shape: str) -> tuple[dict[str, Any], bool]:
    """Values or a manifest holding ``secret`` in one shape; True for a manifest."""
    b64 = base64.b64encode(secret.encode()).decode()
    shapes: dict[str, tuple[dict[str, Any], bool]] = {
        "key": ({"auth": {"adminPassword": secret}}, False),
        "env": ({"env": [{"name": "SMTP_PASSWORD", "value": secret}]}, False),
        "url": ({"db": {"url": f"redis://default:{secret}@cache:6379/0"}}, False),
        "flag": ({"args": [f"--client-secret={secret}"]}, False),
        "flag2": ({"args": ["--api-token", secret]}, False),
        "cm": ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"password": secret}}, True),
        "secret": ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                    "data": {"x": b64}}, True),
        "list": ({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
             "stringData": {"x": secret}}]}, True),
    }  # fmt: skip
    return shapes[shape]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=secret_text,
    shape=st.sampled_from(["key", "env", "url", "flag", "flag2", "cm", "secret", "list"]),
    reappear=st.sampled_from(["plain", "base64", "url"]),
    filler=plain_text,
)
def test_a_secret_placed_anywhere_never_comes_back_out(
    secret: str, shape: str, reappear: str, filler: str
) -> None:
    placed, is_manifest = _place(secret, shape)
    encoded = {
        "plain": secret,
        "base64": base64.b64encode(secret.encode()).decode(),
        "url": quote(secret, safe=""),
    }[reappear]
    # The same secret shows up again elsewhere, under a key that says nothing.
    elsewhere = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "other"},
        "data": {"note": f"{filler}{encoded}{filler}"},
    }
    red = r.Redactor()
    if is_manifest:
        stored: Any = [red.manifest(placed), r.store_form(elsewhere)]
    else:
        stored = [red.values(placed), r.store_form(elsewhere)]
    text = json.dumps(stored) + r.mask_text(f"failed: {encoded} and {secret}")
    assert not any(form in text for form in _forms(secret)), text


URL_PASSWORDS = [
    "ab/cd+ef",  # openssl rand -base64
    "Q9x/7+Zk==",
    "pa@ss@word",
    "pa:ss:wo",
    "p%2Fss%zz",
    "a/b+c@d:e%f",
    "pw",  # short: still hidden where it stands
]


@pytest.mark.parametrize("password", URL_PASSWORDS)
def test_a_url_password_is_hidden_whole_whatever_it_holds(password: str) -> None:
    """Everything between ``scheme://user:`` and the last ``@`` before the host is the
    password; what follows it (host, port, path) stays readable."""
    url = f"postgres://app:{password}@db.example:5432/app?sslmode=require"
    values = r.redact_values({"db": {"url": url}, "plain": "visible-value"})
    stored = values["db"]["url"]
    assert password not in stored and stored.startswith("postgres://app:hmac-sha256:")
    assert stored.endswith("@db.example:5432/app?sslmode=require")
    assert values["plain"] == "visible-value"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    cm["data"] = {"dsn": url, "two": f"x redis://:{password}@cache:6379/0 y"}  # type: ignore[assignment]
    data = r.store_form(cm)["data"]
    assert password not in repr(data), data
    assert data["two"].startswith("x redis://:hmac-sha256:") and data["two"].endswith(
        "@cache:6379/0 y"
    )
    shown = "postgres://app:***@db.example:5432/app?sslmode=require"
    assert r.mask_text(f"cannot connect to {url}: refused") == f"cannot connect to {shown}: refused"
    assert r.mask_url(url) == shown


def test_urls_without_a_password_are_left_whole() -> None:
    """A port then a path holding "@" is not a password; neither is a list of URLs."""
    texts = [
        "https://registry.example.com:443/npm/@scope/pkg",
        "http://localhost:8080/@admin",
        "see https://example.com/a@b and ftp://host/x",
    ]
    for text in texts:
        assert r.mask_text(text) == text
        assert r.redact_values({"u": text}) == {"u": text}
    both = "redis://u:p1secret@h1:6379,redis://u:p2secret@h2:6379"
    assert r.mask_url(both) == "redis://u:***@h1:6379,redis://u:***@h2:6379"


def _record_shapes(secret: str) -> list[dict[str, Any]]:
    """Manifests of every shape the record's one-walk path must tell apart: clean ones
    (stored as their volatile-stripped copy) and ones whose storing rewrites something."""
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u-1"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    return [
        {**base, "data": {"mode": "production", "url": "http://svc:8080/path"}},
        {**base, "data": {"dsn": f"postgres://app:{secret}@db/app"}},
        {**base, "data": {"password": secret}},
        {**base, "data": {"password": None, "token": True}},
        {**base, "data": {"note": f"quoted {secret} again"}},
        {**base, "data": {"pw": "--password=ab"}},  # short: digested where it stands
        {**base, "data": {"cfg": json.dumps({"apiKey": secret})}},
        {**pod, "spec": {"containers": [{"name": "c", "env": [
            {"name": "DB_PASSWORD", "value": secret}]}]}},
        {**pod, "spec": {"containers": [{"name": "c", "args": [
            "mysql", "-uroot", f"-p{secret}"]}]}},
        {**pod, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
         "status": {"phase": "Running"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
         "data": {"x": base64.b64encode(secret.encode()).decode()}},
        {"apiVersion": "v1", "kind": "List", "items": [{**base, "data": {"a": "b"}}]},
    ]  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=secret_text)
def test_the_one_walk_record_path_stores_what_the_full_redaction_does(secret: str) -> None:
    """``scan_manifests`` + ``stored_form`` (what recording runs) give, for every manifest
    of a batch, exactly what ``Redactor.manifest`` gives, and report as changed every one
    it changed; the clean ones (and only they) skip the second walk."""
    batch = _record_shapes(secret)
    found, scans = r.scan_manifests(batch)
    red = r.Redactor(known=found)
    full = r.Redactor(known=found)
    for manifest, scan in zip(batch, scans, strict=True):
        stored, redacted = red.stored_form(manifest, scan)
        assert stored == full.manifest(manifest, learned=True), manifest
        assert redacted or stored == r.strip_volatile(manifest)
    # The clean ConfigMap and Pod (a URL without a password, a status) take the short path.
    shortcut = [not red.stored_form(m, s)[1] for m, s in zip(batch, scans, strict=True)]
    assert shortcut == [True] + [False] * 8 + [True, False, False]
    # A known secret reappearing in an otherwise clean manifest is still scrubbed.
    quoted = {**batch[0], "data": {"mode": secret}}
    (scan,) = r.scan_manifests([quoted])[1]
    stored, redacted = red.stored_form(quoted, scan)
    assert redacted and secret not in json.dumps(stored)
