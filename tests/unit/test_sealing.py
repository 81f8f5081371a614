"""Sealed values (``sbkube.sealing``): the key and its file, seal/unseal, and the leaves
that redaction replaced put back exactly, types and encodings included."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbkube import keyfiles
from sbkube import sealing as s
from sbkube.redaction import Redactor, redact_values

KEY = s.SealKey.from_text(b"unit-test-seal-key")
OTHER = s.SealKey.from_text(b"another-seal-key")


def test_seal_opens_with_its_key_only_and_reveals_nothing() -> None:
    blob = s.seal({"password": "Tr0ub4dor&3"}, KEY)
    assert blob.startswith(s.PREFIX + KEY.key_id + ":")
    assert "Tr0ub4dor" not in blob
    assert base64.b64encode(b"Tr0ub4dor").decode()[:8] not in blob
    assert s.unseal(blob, KEY) == {"password": "Tr0ub4dor&3"}
    assert s.unseal(blob, [None, OTHER, KEY]) == {"password": "Tr0ub4dor&3"}
    with pytest.raises(s.SealError, match="not at hand"):
        s.unseal(blob, [OTHER])
    # every seal has its own nonce: equal values do not give equal seals
    assert s.seal("same", KEY) != s.seal("same", KEY)


def test_a_changed_byte_fails_to_open_instead_of_giving_a_wrong_value() -> None:
    blob = s.seal("value", KEY)
    head, body = blob.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(s.SealError, match="damaged"):
        s.unseal(f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode()}", KEY)
    # another key's id pasted on: the tag does not verify either
    forged = blob.replace(KEY.key_id, OTHER.key_id)
    with pytest.raises(s.SealError):
        s.unseal(forged, OTHER)


def test_reseal_moves_a_seal_to_the_new_key() -> None:
    blob = s.seal([1, "two"], KEY)
    moved = s.reseal(blob, [KEY], OTHER)
    assert s.key_id_of(moved) == OTHER.key_id
    assert s.unseal(moved, OTHER) == [1, "two"]
    assert not s.can_unseal(moved, [KEY])
    assert s.reseal(moved, [KEY], OTHER) == moved  # already there: untouched


def test_seal_key_from_env_else_a_private_file_created_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(s.SEAL_KEY_ENV, "team-seal-key")
    assert s.seal_key() == s.SealKey.from_text(b"team-seal-key")
    monkeypatch.delenv(s.SEAL_KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert s.seal_key(create=False) is None  # reading never creates a key
    path = tmp_path / "cfg" / "sbkube" / "seal.key"
    assert not path.exists()
    key = s.seal_key()
    assert key is not None and path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    keyfiles.forget()
    assert s.seal_key() == key  # read back, not replaced
    assert s.seal_key(create=False) == key
    assert "secret" not in repr(key) and key.secret.hex() not in repr(key)


def _roundtrip(plain: Any, stored: Any) -> None:
    leaves = s.sealed_leaves(plain, stored)
    sealed = s.seal(leaves, KEY)
    assert s.restore_leaves(stored, s.unseal(sealed, KEY)) == plain


def test_values_come_back_exactly_from_their_store_form() -> None:
    values = {
        "auth": {"password": "pw-Zq9/+x@y:%41", "tokenTTL": 86400, "enabled": True},
        "url": "postgres://app:S3cr3tPassw0rd@db:5432/app",
        "list": ["--token", "Xx9Yy8Zz7Ww6"],
        "plain": "hello",
    }
    stored = redact_values(values)
    assert "S3cr3tPassw0rd" not in str(stored) and "pw-Zq9" not in str(stored)
    leaves = s.sealed_leaves(values, stored)
    assert [p for p, _v in leaves] == [
        ["auth", "password"],
        ["auth", "tokenTTL"],
        ["url"],
        ["list", 1],
    ]
    assert dict((tuple(p), v) for p, v in leaves)[("auth", "tokenTTL")] == 86400  # an int
    _roundtrip(values, stored)


def test_a_secret_manifest_comes_back_exactly_volatile_fields_aside() -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "ns", "resourceVersion": "42", "uid": "u"},
        "data": {"password": base64.b64encode(b"hunter2-long").decode()},
        "stringData": {"token": "tok-abcdef-123"},
    }
    stored = Redactor().manifest(manifest)
    assert "resourceVersion" not in stored["metadata"]
    restored = s.restore_leaves(stored, s.sealed_leaves(manifest, stored))
    assert restored["data"] == manifest["data"]
    assert restored["stringData"] == manifest["stringData"]
    assert "resourceVersion" not in restored["metadata"]  # dropped from the record, not sealed


def test_an_encoded_reappearance_comes_back_in_its_encoding() -> None:
    b64 = base64.b64encode(b"hunter2-long").decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "data": {"p": b64}}
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "b"},
        "data": {"conf": f"pass={b64}", "raw": "hunter2-long"},
    }
    red = Redactor(known=["hunter2-long"])
    stored = red.manifest(cm)
    assert b64 not in str(stored) and "hunter2-long" not in str(stored)
    _roundtrip(cm, stored)
    _roundtrip(secret, red.manifest(secret))


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.none()),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["password", "name", "apiToken", "value", "url", "x"]),
                children,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_any_document_comes_back_from_its_store_form(doc: Any) -> None:
    _roundtrip(doc, redact_values(doc))
