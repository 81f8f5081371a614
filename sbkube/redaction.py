"""The one detection layer: what counts as a secret, and how it is digested or masked.

Everything sbkube stores or prints passes through here: config snapshots, Helm values,
app metadata, rendered and live manifests (current and previous state), command
arguments, error messages, and the CLI's output. A secret is found by

* its key: a scalar under ``password``, ``apiToken``, ``tls.key``… (word matching, so
  ``keycloak`` stays readable). Not a field the Kubernetes schemas declare as a name or a
  reference: ``topologyKey``, the ``key`` of a ``secretKeyRef``, of a toleration, of a
  volume's ``items``, ``secretName``… A manifest of a built-in kind is walked along its
  schema (``kubernetes_fields.json``, generated from the OpenAPI schemas of every
  built-in kind), so a rollback never re-applies a hidden name; elsewhere (custom
  resources, chart values) the field holding the object tells (``secretKeyRef.key``);
* the Kubernetes env idiom: ``{name: DB_PASSWORD, value: V}`` (``V`` is the secret), in an
  env var or a header, not in a toleration or a sysctl;
* URL userinfo anywhere in a string: ``postgres://user:V@host/db``, ``V`` running to the
  last ``@`` whatever it holds (``/``, ``+``, ``@``, ``:``, ``%``), digested or masked where
  it stands however short;
* secret-named flags in strings and string lists: ``--db-password=V``, ``--token V``,
  ``["--token", "V"]``; ``-pV`` where a MySQL client runs (``mysql -uroot -pV``,
  ``["mysqldump", "-pV"]``; elsewhere ``-p8080`` is a port);
* ``Authorization`` headers: ``Authorization: Basic B`` (``B``, and the ``user:password`` it
  decodes to), ``Bearer T``, also as the whole value of a header entry; in running text
  only a token-like ``Bearer`` value or a ``Basic`` one that decodes to ``user:password``;
* JSON inside a string (``config: '{"password": "V"}'``): the document is searched like
  values, and a string whose document holds a secret is digested whole;
* credential formats that are secrets wherever they stand: PEM private keys, AWS access
  key ids, GitHub/GitLab/Slack/Stripe/Google/npm tokens, JWTs;
* reappearance: every value found so far in this process (and every ``data`` value of a
  Secret, decoded), wherever it shows up again, also base64- or URL-encoded. A chart that
  renders ``{{ .Values.auth.password | b64enc }}`` into a ConfigMap is caught this way.

Focused detectors rather than detect-secrets: its plugin registry imports on use and its
entropy plugins flag hashes and image digests, while the shapes above are the ones charts
and command lines actually carry; the regexes are compiled once, on first use.

Keyed digests. A stored secret becomes ``hmac-sha256:<hex>`` =
``HMAC-SHA256(key, sha256_hex(value))``. The key is never in the store: it comes from
``SBKUBE_DIGEST_KEY`` or from a key file (``$XDG_CONFIG_HOME/sbkube/digest.key``, else
``~/.config/sbkube/digest.key``) that sbkube creates with mode 0600. Hence

* a stolen database does not let anyone test guesses of a weak password offline;
* equal secrets have equal digests under one key, so "changed"/"unchanged" still works,
  within a store and across stores that share the key (a team sharing one PostgreSQL
  store shares the key too; a history exported and imported elsewhere compares there
  when the key travels with it); two keys give unrelated digests;
* the HMAC is taken over the plain sha256 rather than the value so that digests written
  before keys existed (``sha256:<hex>``) can be re-keyed without the plain text: the
  migration ``0003`` and ``state import`` turn ``sha256:H`` into ``HMAC(key, H)``, exactly
  the digest the same value gets now. Legacy digests that were not re-keyed still count
  as digests (they are masked, never shown).

A known secret reappearing inside a longer string is digested where it stands when it is a
whole token (``x V y``, ``--password=V``); glued into a longer word (``V`` + ``"2"``, perhaps
the next password) it makes the whole string a digest, never ``<digest>2``.

Free text (error messages, output lines) is masked rather than digested: the secret
becomes ``***``, as SQLAlchemy prints a URL's password. A detector's find is masked where
it stands however short; a known secret (``MIN_REAPPEARING`` characters at least) where
it reappears as a token, with the word it is glued into; nothing else, so that a
one-letter password does not turn every ``a`` of a message into ``***``.

Checksums of inputs that may hold a secret (a values file, config.yaml, a chart's files,
whose ``values.yaml`` or templates may carry a default password) are keyed the same way:
``hmac-checksum:<hex>`` = ``HMAC-SHA256(key, sha256_hex(bytes))`` (:func:`keyed_checksum`),
so that a stolen store does not let anyone test guesses of a weak password in a small file
offline. Records made before keys were used for them hold ``sha256:<hex>``: still read and
compared (:func:`checksum_matches`), and re-keyed by the migration ``0007``.
:func:`manifest_checksum` stays a plain sha256: it covers the stored form, which holds
keyed digests and no secret, and it is what tells "changed" from "unchanged".
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, quote_plus

from sbkube.keyfiles import key_path, read_or_create_key
from sbkube.manifests import VOLATILE_METADATA, strip_volatile  # noqa: F401  (re-exported)


class _LazyPattern:
    """A module-level regex compiled on its first use, which then takes its place in the
    module (later lookups get the compiled pattern): ``sbkube template`` and ``--help``
    import this module, most runs search little or no text, and compiling every detector
    up front is a noticeable part of the start-up."""

    __slots__ = ("_args", "_name")

    def __init__(self, name: str, pattern: str, flags: int = 0) -> None:
        self._name = name
        self._args = (pattern, flags)

    def __getattr__(self, attr: str) -> Any:
        compiled = re.compile(*self._args)
        globals()[self._name] = compiled
        return getattr(compiled, attr)


def _lazy(name: str, pattern: str, flags: int = 0) -> re.Pattern[str]:
    return cast("re.Pattern[str]", _LazyPattern(name, pattern, flags))


DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "apikey",
    "credential",
    "credentials",
    "privatekey",
    "pwd",
)
DIGEST_PREFIX = "hmac-sha256:"
LEGACY_PREFIX = "sha256:"
CHECKSUM_PREFIX = "sha256:"  # a manifest's stored form: no secret in it
KEYED_CHECKSUM_PREFIX = "hmac-checksum:"
DIGEST_KEY_ENV = "SBKUBE_DIGEST_KEY"
MASK = "***"
# Shorter values are digested where they stand but not hunted elsewhere: scrubbing every
# "abc" from a manifest would mangle it without protecting anything.
MIN_REAPPEARING = 6

_WORD = _lazy("_WORD", r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_HEX64 = _lazy("_HEX64", r"[0-9a-f]{64}")
# Manifest fields that name a secret rather than hold one.
_REFERENCE_KEYS = frozenset(
    {"key", "secretName", "secretRef", "secretKeyRef", "existingSecret", "tokenSecretRef"}
)
_ENV_NAME_FIELDS = ("name", "key", "env", "variable")
_SCALARS = frozenset({str, int, float, bool, type(None)})


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- digest key


def _key_file() -> Path:
    return key_path("digest.key")


def digest_key() -> bytes:
    """The HMAC key of secret digests: ``$SBKUBE_DIGEST_KEY``, else the user's key file."""
    env = os.environ.get(DIGEST_KEY_ENV)
    if env:
        return env.encode()
    return read_or_create_key(_key_file(), DIGEST_KEY_ENV)


def _plain_sha256(value: Any) -> str:
    data = value if isinstance(value, str) else canonical_json(value)
    return hashlib.sha256(data.encode()).hexdigest()


def _keyed(plain_hex: str, key: bytes | None) -> str:
    mac = hmac.new(key if key is not None else digest_key(), plain_hex.encode(), hashlib.sha256)
    return DIGEST_PREFIX + mac.hexdigest()


def digest(value: Any, key: bytes | None = None) -> str:
    """``hmac-sha256:<hex>`` of a value (strings as they are, anything else as JSON)."""
    return _keyed(_plain_sha256(value), key)


def is_digest(value: Any) -> bool:
    """A secret digest, keyed or from before keys (``sha256:<64 hex>``)."""
    if not isinstance(value, str):
        return False
    if value.startswith(DIGEST_PREFIX):
        return len(value) == len(DIGEST_PREFIX) + 64
    return value.startswith(LEGACY_PREFIX) and len(value) == len(LEGACY_PREFIX) + 64


def rekey_legacy(value: Any, key: bytes | None = None, *, secret: bool = False) -> Any:
    """Copy of JSON-like ``value`` with its legacy ``sha256:<hex>`` secret digests re-keyed.

    Only where sbkube put a digest for a secret (a Secret's ``data``/``stringData``, a leaf
    under a secret-looking key): an image digest (``digest: sha256:…``) has the same shape
    and must stay as it is. Digests that older versions put inside longer strings stay
    unkeyed: they compare as "changed" once, on the next deployment.
    """
    if isinstance(value, str):
        hexpart = value[len(LEGACY_PREFIX) :]
        if secret and value.startswith(LEGACY_PREFIX) and _HEX64.fullmatch(hexpart):
            return _keyed(hexpart, key if key is not None else digest_key())
        return value
    if isinstance(value, Mapping):
        payload = ("data", "stringData") if is_secret_manifest(value) else ()
        return {
            k: rekey_legacy(v, key, secret=secret or k in payload or is_secret_key(str(k)))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [rekey_legacy(v, key, secret=secret) for v in value]
    return value


def keyed_checksum(data: bytes, key: bytes | None = None) -> str:
    """``hmac-checksum:<hex>`` of bytes that may hold a secret (see the module docstring)."""
    return rekey_checksum(hashlib.sha256(data).hexdigest(), key)


def rekey_checksum(plain_hex: str, key: bytes | None = None) -> str:
    """The keyed checksum of bytes whose plain sha256 is ``plain_hex``."""
    mac = hmac.new(key if key is not None else digest_key(), plain_hex.encode(), hashlib.sha256)
    return KEYED_CHECKSUM_PREFIX + mac.hexdigest()


def checksum_matches(recorded: str | None, plain_hex: str, key: bytes | None = None) -> bool:
    """True when ``recorded`` (keyed, or a plain ``sha256:`` of an older record) is the
    checksum of bytes whose plain sha256 is ``plain_hex``."""
    if recorded is None:
        return False
    if recorded.startswith(KEYED_CHECKSUM_PREFIX):
        return hmac.compare_digest(recorded, rekey_checksum(plain_hex, key))
    return recorded == LEGACY_PREFIX + plain_hex


def manifest_checksum(stored_manifest: Mapping[str, Any]) -> str:
    """Checksum of a manifest already in the store's form (no secrets left in it)."""
    return CHECKSUM_PREFIX + hashlib.sha256(canonical_json(stored_manifest).encode()).hexdigest()


# --------------------------------------------------------------------------- key names


_FIELD_NAMES: dict[tuple[tuple[str, ...], bool], dict[str, bool]] = {}


def _field_names(patterns: tuple[str, ...], manifest: bool) -> dict[str, bool]:
    """key -> :func:`_is_secret_field` for ``patterns``: a plain dict, looked up once per
    string of every manifest recorded (the cache of the function hashes the patterns each
    call). Emptied when it grows past 8,192 keys."""
    names = _FIELD_NAMES.get((patterns, manifest))
    if names is None or len(names) > 8192:
        names = _FIELD_NAMES[(patterns, manifest)] = {}
    return names


@functools.lru_cache(maxsize=8192)
def _is_secret_field(key: str, patterns: tuple[str, ...], manifest: bool) -> bool:
    """A key whose scalar is a secret (asked by :class:`Redactor`'s walks); in a manifest, the
    fields that name a secret (``secretName``…) are not."""
    return (not manifest or key not in _REFERENCE_KEYS) and _is_secret_key(key, patterns)


# --------------------------------------------------------------------------- Kubernetes fields

# What the built-in kinds' schemas say about fields whose names look secret: generated
# from the OpenAPI schemas of Kubernetes 1.25 onwards (tests/unit/kubernetes_schemas.py,
# which the schema test checks it against), so that a name is told from a secret by the
# schema, not by a list kept by hand. A manifest of a built-in kind is walked along its
# schema: a field the schema declares is a secret only when the schema's field is one
# (``TokenReview.spec.token``); ``topologyKey``, the ``key`` of a ``secretKeyRef``, of a
# toleration, of a volume's ``items`` stay in the clear, and a rollback re-applies them as
# they were. Keys of maps (labels, ConfigMap data, annotations) are the user's: their names
# decide, as in chart values. Where the kind is unknown (custom resources, chart values),
# the field holding an object still tells: ``key`` under ``secretKeyRef`` is a name.
_FIELDS_FILE = Path(__file__).with_name("kubernetes_fields.json")
_KEEP, _SECRET = 0, 1
_UNLISTED = object()


class _MapOf:
    """A schema position holding a map: its keys are the user's, its values are ``node``."""

    __slots__ = ("node",)

    def __init__(self, node: dict[str, Any]) -> None:
        self.node = node


class _KubeFields:
    """The table of ``kubernetes_fields.json``, its definitions linked into one graph."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        nodes: dict[str, dict[str, Any]] = {name: dict(d) for name, d in data["defs"].items()}
        for node in nodes.values():
            for field, child in node.items():
                if field == "@value":
                    continue
                if isinstance(child, str):
                    node[field] = nodes[child]
                elif isinstance(child, dict):
                    node[field] = _MapOf(nodes[child["*"]])
        self.kinds: dict[str, dict[str, Any]] = {k: nodes[v] for k, v in data["kinds"].items()}
        self.references: dict[str, frozenset[str]] = {
            k: frozenset(v) for k, v in data["references"].items()
        }
        self.plain_pairs = frozenset(data["plain_pairs"])
        self.reference_objects = frozenset(data["reference_objects"])

    def root(self, manifest: Any) -> dict[str, Any] | None:
        """The schema node of a manifest of a built-in kind, else None."""
        if not isinstance(manifest, Mapping):
            return None
        return self.kinds.get(f"{manifest.get('apiVersion')}/{manifest.get('kind')}")


@functools.cache
def _kube_fields() -> _KubeFields:
    return _KubeFields(json.loads(_FIELDS_FILE.read_text()))


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(key)]


def is_secret_key(key: str, patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> bool:
    """True when a key names a secret: one of its words (or all of them joined) is a pattern.

    Word matching rather than substring matching keeps ``keycloak`` or ``monkey`` in the
    clear while ``redisPassword``, ``api_key``, ``apiKey`` and ``tls.key`` are hidden.
    """
    return _is_secret_key(str(key), patterns if type(patterns) is tuple else tuple(patterns))


# Keys whose values NAME secrets rather than hold them: config.yaml's own ``secret_keys``
# (a list of key names), so its errors and its snapshot stay readable.
_NAMES_OF_SECRETS = frozenset({"secretkeys"})


@functools.lru_cache(maxsize=8192)
def _is_secret_key(key: str, patterns: tuple[str, ...]) -> bool:
    # Cached: a deploy asks about the same few hundred keys (name, labels, data keys…) for
    # every object it records, several times each.
    words = _words(key)
    if not words:
        return False
    joined = "".join(words)
    if joined in _NAMES_OF_SECRETS:
        return False
    pats = {p.lower().replace("_", "").replace("-", "") for p in patterns}
    # Long patterns also end compound words written in one case: rootpassword, apitoken,
    # clientsecret. Short ones (key) must match a whole word, or "monkey" would be hidden.
    suffixes = tuple(p for p in pats if len(p) >= 5)
    return (
        joined in pats
        or joined.endswith(suffixes)
        or any(w in pats or (w.endswith("s") and w[:-1] in pats) for w in words)
    )


# --------------------------------------------------------------------------- text detectors

# userinfo password of any URL: scheme://user:PASS@host. PASS runs to the LAST "@" of the
# URL (whatever it holds: "/", "+", ":", "%", "@"; base64 passwords carry "/" and "+"),
# within one whitespace- or quote-delimited word and never into another "scheme://".
_URL_PASSWORD = _lazy(
    "_URL_PASSWORD",
    r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://(?P<user>[^\s:/@\"'<>]*):)"
    r"(?P<secret>(?:(?!://)[^\s\"'<>])+)@",
)
_PORT_THEN_PATH = _lazy("_PORT_THEN_PATH", r"\d{1,5}/")


def _url_password(m: re.Match[str]) -> bool:
    """False for ``http://host:8080/path/@scope``: a host and a port, then a path holding
    "@", read as userinfo. A user name is not a domain name."""
    user = m.group("user")
    hostlike = "." in user or user.lower() == "localhost"
    return not (hostlike and _PORT_THEN_PATH.match(m.group("secret")))


def _sub_url_passwords(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with the password of every URL in it replaced where it stands (also one
    too short to be hunted as a reappearing secret)."""

    def one(m: re.Match[str]) -> str:
        if not _url_password(m) or is_digest(m.group("secret")) or m.group("secret") == MASK:
            return m.group(0)
        return f"{m.group('pre')}{replace(m.group('secret'))}@"

    return _URL_PASSWORD.sub(one, text)


# --db-password=V and --token V (a flag), password=V and password: V (an assignment).
_FLAG_NAME = r"[A-Za-z][A-Za-z0-9_.-]*"
_SECRET_TEXT = r"(?P<secret>\"[^\"]+\"|'[^']+'|[^\s,;&\"']+)"
_FLAG_ASSIGN = _lazy(
    "_FLAG_ASSIGN",
    rf"(?<![A-Za-z0-9_.-])(?:--?(?P<flag>{_FLAG_NAME})(?:=|\s+)|(?P<name>{_FLAG_NAME})(?:=|:\s*))"
    + _SECRET_TEXT,
)
# "app/secret.yaml: message": a file's name, then what is wrong with it.
_FILE = _lazy("_FILE", r"\.(?:ya?ml|json|tpl|txt|md|toml)$", re.IGNORECASE)
_PEM = _lazy(
    "_PEM", r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY)-----.*?-----END (?P=kind)-----", re.DOTALL
)
_CREDENTIAL_FORMATS = _lazy(
    "_CREDENTIAL_FORMATS",
    "|".join(
        (
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",  # AWS access key id
            r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
            r"\bglpat-[A-Za-z0-9_-]{20,}\b",  # GitLab
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",  # Slack
            r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b",  # Stripe
            r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
            r"\bnpm_[A-Za-z0-9]{36}\b",  # npm
            r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b",  # SendGrid
            r"\bsk-[A-Za-z0-9_-]{32,}\b",  # OpenAI-style
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",  # JWT
        )
    ),
)
# A cheap pre-filter before the word test. Substring tests of the lowered text rather than
# a case-insensitive regex, which Python's re runs about 10 times slower: this is asked of
# every string of every manifest recorded.
_SECRET_NAME_HINTS = (
    *("pass", "pwd", "token", "secret", "key", "credential", "auth", "bearer", "basic"),
    *("mysql", "mariadb"),
)


def _has_secret_hint(text: str) -> bool:
    lowered = text.lower()
    return any(hint in lowered for hint in _SECRET_NAME_HINTS)


def _flag_is_secret(name: str, patterns: tuple[str, ...]) -> bool:
    return _has_secret_hint(name) and is_secret_key(name, patterns)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _plausible_secret(text: str) -> bool:
    # "--password-file /path" or "password: ${DB_PASSWORD}" name where a secret is, not it.
    return bool(text) and not text.startswith(("$", "{{", "/", "<")) and not is_digest(text)


# A substring every credential format above contains (none of them in a text, no match),
# each group behind a character its formats cannot match without (an AWS key id and AIza
# start with "A"; gh[pousr]_, github_pat_, [sr]k_live_, npm_ hold "_"; glpat-, xox?-, sk-
# hold "-"; SG. and a JWT hold "."): a one-character test (memchr) skips a group, where a
# two- or three-letter literal costs a full scan of the text.
_GATED_CREDENTIAL_LITERALS = (
    ("A", ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIza")),
    ("_", ("gh", "github_pat_", "k_live_", "k_test_", "npm_")),
    ("-", ("glpat-", "xox", "sk-")),
    (".", ("SG.", "eyJ")),
)


def _may_hold_credential(text: str) -> bool:
    """False when no credential format can match in ``text`` (nor in any part of it)."""
    return any(
        gate in text and any(literal in text for literal in literals)
        for gate, literals in _GATED_CREDENTIAL_LITERALS
    )


def find_in_text(text: str, patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> list[str]:
    """The secrets a free-text string carries (URL passwords, flags, PEM keys, tokens,
    ``Authorization`` headers, ``mysql -pPASS``)."""
    return _find_in_text(text, tuple(patterns))


def _find_in_texts(
    texts: list[str], patterns: tuple[str, ...], joined: str | None = None
) -> list[str]:
    """:func:`find_in_text` of every string of ``texts``, the strings of one structure.

    The detectors are first run over the strings joined by newlines (which none of them
    matches across, and which bounds a word as the end of a string does): a structure
    without a URL, a PEM block, a credential's prefix or a secret-like word, the usual
    case, costs one pass instead of one per string. ``joined``: that string, when the
    caller made it already."""
    if not texts:
        return []
    if joined is None:
        joined = "\n".join(texts)
    credentials = _may_hold_credential(joined)
    if not (
        credentials or "://" in joined or "PRIVATE KEY-----" in joined or _has_secret_hint(joined)
    ):
        return []
    return [s for text in texts for s in _find_in_text(text, patterns, credentials)]


def _find_in_text(text: str, pats: tuple[str, ...], credentials: bool = True) -> list[str]:
    found = [text[a:b] for a, b in _secret_spans(text, pats, credentials)]
    found += _basic_credentials(found, text)
    return [s for s in found if s and not is_digest(s)]


# Authorization headers: "Authorization: Basic dXNlcjpwYXNz", "Bearer eyJ…", also as the
# whole value of a header entry ({name: Authorization, value: "Basic …"}).
# The header's value stays on its line: "authorization:\n  mode: Webhook" (a kubelet
# configuration) names a section, not a credential.
_AUTH_HEADER = _lazy(
    "_AUTH_HEADER",
    r"(?i)\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?:basic|bearer|token|digest|negotiate|apikey)[ \t]+)?(?P<secret>[^\s\"',;]+)",
)
# "Bearer" is followed by a token: one with a digit or a token's punctuation, or a long
# mixed-case one, never an ordinary word ("bearer authentication"); "Basic" by base64 of
# user:password. So also the whole value of a header entry ({name: X, value: "Bearer T"}).
_AUTH_SCHEME = _lazy(
    "_AUTH_SCHEME",
    r"(?i)(?<![A-Za-z0-9])(?P<scheme>basic|bearer)\s+"
    r"(?P<secret>[A-Za-z0-9._~+/-]{8,}=*)(?![A-Za-z0-9._~+/=-])",
)
_TOKEN_MARK = _lazy("_TOKEN_MARK", r"[0-9._~+/-]")


def _token_like(token: str) -> bool:
    """A bearer token rather than a word: a digit or punctuation in it, or 16 characters
    and more with capitals inside (not just a capitalised word)."""
    if _TOKEN_MARK.search(token):
        return True
    return len(token) >= 16 and any(c.isupper() for c in token[1:]) and not token.isupper()


# mysql -uroot -pPASS (the password glued to -p), in a string that runs a MySQL client.
_MYSQL = _lazy("_MYSQL", r"(?i)(?<![A-Za-z0-9_])(?:mysql|mariadb)[a-z_-]*(?![A-Za-z0-9_])")
_GLUED_P = _lazy("_GLUED_P", r"(?<![^\s\"'=])-p(?P<secret>[^\s\"';&|)]+)")


def _decoded_basic(token: str) -> str | None:
    """``user:password`` of a Basic credential, None when ``token`` is not one."""
    with suppress(binascii.Error, UnicodeDecodeError, ValueError):
        plain = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode()
        if ":" in plain and plain.isprintable():
            return plain
    return None


def _basic_credentials(found: list[str], text: str) -> list[str]:
    """What a Basic credential found in ``text`` decodes to: ``user:password`` and the
    password, hunted wherever they reappear."""
    if "basic" not in text.lower():
        return []
    out: list[str] = []
    for token in found:
        plain = _decoded_basic(token)
        if plain is not None:
            out += [plain, plain.partition(":")[2]]
    return out


def _secret_spans(
    text: str, pats: tuple[str, ...], credentials: bool = True
) -> list[tuple[int, int]]:
    """Where in ``text`` the detectors find a secret: ``(start, end)`` of each."""
    spans: list[tuple[int, int]] = []
    if "://" in text:
        spans += [m.span("secret") for m in _URL_PASSWORD.finditer(text) if _url_password(m)]
    if "PRIVATE KEY-----" in text:
        spans += [m.span() for m in _PEM.finditer(text)]
    if credentials:
        spans += [m.span() for m in _CREDENTIAL_FORMATS.finditer(text)]
    if not _has_secret_hint(text):
        return spans
    at = 0
    while (m := _FLAG_ASSIGN.search(text, at)) is not None:
        raw = m.group("secret")
        value = _unquote(raw)
        name = m.group("flag") or m.group("name")
        if _flag_is_secret(name, pats) and _plausible_secret(value) and not _FILE.search(name):
            start = m.start("secret") + (1 if value is not raw else 0)
            spans.append((start, start + len(value)))
            at = m.end()
        else:  # "x.yaml: password: V": the value of one pair may be the name of the next
            at = m.start("secret")
    lowered = text.lower()
    if "authorization" in lowered:
        spans += [
            m.span("secret")
            for m in _AUTH_HEADER.finditer(text)
            if _plausible_secret(m.group("secret")) and not m.group("secret").endswith(":")
        ]
    if "basic" in lowered or "bearer" in lowered:
        for m in _AUTH_SCHEME.finditer(text):
            token = m.group("secret")
            if m.group("scheme").lower() == "bearer":
                if _token_like(token):
                    spans.append(m.span("secret"))
            elif _decoded_basic(token) is not None:
                spans.append(m.span("secret"))
    if ("mysql" in lowered or "mariadb" in lowered) and _MYSQL.search(text):
        spans += [m.span("secret") for m in _GLUED_P.finditer(text)]
    return [(a, b) for a, b in spans if b > a and not is_digest(text[a:b])]


def _short(secrets: Iterable[str]) -> set[str]:
    """The secrets too short to be hunted as known forms (:data:`MIN_REAPPEARING`): hidden
    only where a detector finds them."""
    return {s for s in secrets if s and len(s) < MIN_REAPPEARING}


def _json_container(text: str) -> Any:
    """The object or array a string holds as JSON (``'{"password": "…"}'``), else None."""
    head = text.lstrip()[:1]
    if head not in ("{", "[") or text.rstrip()[-1:] not in ("}", "]"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _runs_mysql(items: Sequence[Any]) -> bool:
    """A command line (a list of arguments) that runs a MySQL client: its ``-pPASS`` is a
    password (elsewhere ``-p8080`` is a port)."""
    return any(
        isinstance(i, str) and ("mysql" in i or "mariadb" in i) and _MYSQL.search(i) for i in items
    )


def _variants(secret: str) -> set[str]:
    """The forms a secret reappears in: itself, base64 (padded or not), URL-encoded."""
    raw = secret.encode()
    b64 = base64.b64encode(raw).decode()
    forms = {
        secret,
        b64,
        b64.rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        quote(secret, safe=""),
        quote_plus(secret),
    }
    return {f for f in forms if len(f) >= MIN_REAPPEARING}


# Every secret this process has found: a value found while recording one app is hidden in
# everything recorded or printed afterwards (another app's manifests, an error line).
_SEEN: dict[str, str] = {}  # variant -> the plain secret it encodes


def remember(secrets: Iterable[str]) -> None:
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= MIN_REAPPEARING and not is_digest(secret):
            for form in _variants(secret):
                _SEEN.setdefault(form, secret)


def _known_forms(extra: Iterable[str] = ()) -> dict[str, str]:
    forms = dict(_SEEN)
    for secret in extra:
        if isinstance(secret, str) and len(secret) >= MIN_REAPPEARING and not is_digest(secret):
            for form in _variants(secret):
                forms.setdefault(form, secret)
    return forms


def _longest_first(forms: Mapping[str, str]) -> list[str]:
    return sorted(forms, key=len, reverse=True)


def _glued(text: str, start: int, end: int) -> bool:
    """True when ``text[start:end]`` runs into a letter or digit on either side: a part of
    a longer word (``old`` in ``old2``), not a whole token."""
    return (start > 0 and text[start - 1].isalnum() and text[start].isalnum()) or (
        end < len(text) and text[end].isalnum() and text[end - 1].isalnum()
    )


def _word_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the run of letters and digits that ``text[start:end]`` is glued into."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return start, end


def _occurrences(
    text: str, forms: Mapping[str, str], order: Iterable[str] | None
) -> list[tuple[int, int, str]]:
    """``(start, end, form)`` of every known form in ``text``, longest first, none
    overlapping another."""
    taken: list[tuple[int, int, str]] = []
    for form in _longest_first(forms) if order is None else order:
        if form not in text:
            continue
        at = text.find(form)
        while at >= 0:
            end = at + len(form)
            if not any(a < end and at < b for a, b, _ in taken):
                taken.append((at, end, form))
            at = text.find(form, at + 1)
    return sorted(taken)


def _replace_known(
    text: str,
    forms: Mapping[str, str],
    replace: Callable[[str], str],
    order: Iterable[str] | None = None,
) -> str:
    """``text`` with every known form replaced by ``replace(secret)`` where it stands as a
    whole token; when one runs into a longer word (``old`` in ``old2``, perhaps the next
    password) the whole string becomes ``replace(text)``: a digest glued to the rest of a
    word would tell that rest. ``order``: ``forms``' keys longest first, when the caller
    sorted them once for many strings."""
    if not forms or is_digest(text):
        return text
    found = _occurrences(text, forms, order)
    if not found:
        return text
    if any(_glued(text, a, b) for a, b, _ in found):
        return replace(text)
    out, last = [], 0
    for a, b, form in found:
        out += [text[last:a], replace(forms[form])]
        last = b
    out.append(text[last:])
    return "".join(out)


def mask_text(text: str, patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> str:
    """Free text (an error message, an output line) with every secret it holds as ``***``.

    A secret a detector finds in the text (``password: V``, ``-pV``, a URL's password) is
    masked where it stands, however short. Known secrets (found earlier, at least
    ``MIN_REAPPEARING`` characters) are masked where they reappear as a whole token, and
    with the word they are glued into when they run into one. Nothing else is touched: a
    one-letter password does not turn every ``a`` of a message into ``***``."""
    pats = tuple(patterns)
    if "://" in text:
        remember(find_in_text(text, pats))
        text = mask_url(text)
    spans = _secret_spans(text, pats)
    values = [text[a:b] for a, b in spans]
    remember([*values, *_basic_credentials(values, text)])
    forms = _known_forms()
    spans += [
        _word_around(text, a, b) if _glued(text, a, b) else (a, b)
        for a, b, _ in _occurrences(text, forms, None)
    ]
    if not spans:
        return text
    merged: list[list[int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, last = [], 0
    for a, b in merged:
        out += [text[last:a], MASK]
        last = b
    out.append(text[last:])
    return "".join(out)


def mask_url(url: str) -> str:
    """A database URL fit to print or record: its password (if any) becomes ``***``."""
    return _sub_url_passwords(url, lambda _s: MASK)


# --------------------------------------------------------------------------- structures


class Redactor:
    """Finds secrets in JSON-like data and returns the copy fit for the store.

    ``known`` are secrets already found elsewhere (another app's values, a Secret's data):
    their text and encoded forms are replaced wherever they reappear. What a Redactor
    finds is remembered for the rest of the process.
    """

    def __init__(
        self,
        patterns: Iterable[str] = DEFAULT_SECRET_KEYS,
        known: Iterable[str] = (),
        key: bytes | None = None,
    ) -> None:
        self.patterns = tuple(patterns)
        self._extra = tuple(known)
        self._batch = _short(k for k in self._extra if isinstance(k, str))
        self._key = key if key is not None else digest_key()
        # The forms of ``known`` (and of what the process had found), longest first: made
        # once for the manifests of a batch given as ``learned``.
        self._learned: tuple[dict[str, str], list[str]] | None = None
        # Positions met by a walk whose value :meth:`_digest_found` rewrites where it stands
        # (a secret-named field, the value of an env pair, a MySQL command line): counted,
        # so that :meth:`scan` tells a manifest that storing leaves as it is.
        self._in_place = 0

    def digest(self, value: Any) -> str:
        return digest(value, self._key)

    # -- finding -----------------------------------------------------------------------

    def find(self, value: Any, *, manifest: bool = False) -> set[str]:
        """Every secret ``value`` holds, by every detector (not including reappearances)."""
        return self._search(value, manifest=manifest)[0]

    def scan(self, manifest: Mapping[str, Any]) -> ManifestScan:
        """:meth:`find` of a manifest, keeping what :meth:`stored_form` needs to know
        whether storing it would change anything but its volatile fields."""
        before = self._in_place
        found, joined = self._search(manifest, manifest=True)
        plain = not found and self._in_place == before and not holds_secret(manifest)
        return ManifestScan(found, plain, joined)

    def _search(self, value: Any, *, manifest: bool) -> tuple[set[str], str]:
        """(the secrets ``value`` holds, its free-text strings joined by newlines)."""
        found: set[str] = set()
        texts: list[str] = []  # the strings to search as free text, searched at the end
        node = _kube_fields().root(value) if manifest else None
        self._walk(value, found, texts, manifest=manifest, node=node)
        joined = "\n".join(texts)
        found.update(_find_in_texts(texts, self.patterns, joined))
        if "{" in joined or "[" in joined:  # else no string holds a JSON document
            for text in texts:
                parsed = _json_container(text)
                if parsed is not None:
                    inner = self.find(parsed)
                    if inner:  # the string is hidden whole, its secrets wherever they reappear
                        found |= {*inner, text}
        remember(found)
        return found, joined

    def _leaves(self, value: Any, found: set[str]) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                self._leaves(item, found)
        elif isinstance(value, list | tuple):
            for item in value:
                self._leaves(item, found)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            if not is_digest(text):
                found.add(text)

    def _env_secret(self, item: Mapping[str, Any]) -> str | None:
        """The field holding the secret of ``{name: DB_PASSWORD, value: V}``, if any."""
        if "value" not in item:
            return None
        for field in _ENV_NAME_FIELDS:
            name = item.get(field)
            if isinstance(name, str) and field != "value" and is_secret_key(name, self.patterns):
                return "value"
        return None

    def _pair_secret(
        self, item: Mapping[str, Any], node: Any, parent: str | None, manifest: bool
    ) -> str | None:
        """:meth:`_env_secret` where a name/value pair may hold a secret: an env var, a
        header; not a toleration, a taint, a sysctl (``kernel.keys.maxkeys``)."""
        if "value" not in item:
            return None
        if type(node) is dict:
            return self._env_secret(item) if node.get("@value") == "secret" else None
        if node is not None or (manifest and parent in _kube_fields().plain_pairs):
            return None
        return self._env_secret(item)

    def _field(
        self, key: str, value: Any, node: Any, parent: str | None, manifest: bool
    ) -> tuple[bool, Any]:
        """Whether ``key``'s value is a secret (its leaves digested), and the schema node
        of the value (None where no schema is known)."""
        if type(node) is dict:
            spec = node.get(key, _UNLISTED)
            if spec is not _UNLISTED:
                # A field the schema declares: a secret only if the schema's is one.
                if type(spec) is int:
                    return spec == _SECRET, None
                return False, spec
            # Not listed: a field whose name does not look secret, or one the schema does
            # not know; its name decides, as below.
        elif type(node) is _MapOf:
            # A key of a map (labels, data): the user's word.
            container = isinstance(value, Mapping | list)
            secret = _is_secret_key(key, self.patterns) and not (manifest and container)
            return secret, node.node
        else:
            fields = _kube_fields()
            refs = fields.references.get(parent) if parent is not None else None
            if refs is not None and key in refs:
                return False, None
            if key in fields.reference_objects and isinstance(value, Mapping | list):
                return False, None  # secretKeyRef: {name, key} in chart values
        secret = _is_secret_field(key, self.patterns, manifest) and not (
            manifest and isinstance(value, Mapping | list)
        )
        return secret, None

    def _walk(
        self,
        value: Any,
        found: set[str],
        texts: list[str],
        *,
        manifest: bool,
        node: Any = None,
        parent: str | None = None,
    ) -> None:
        # Strings first, and dict before the Mapping ABC: this runs for every node of every
        # manifest recorded.
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict | Mapping):
            if type(node) is _MapOf:  # no env pair in a map of the schema (_pair_secret)
                self._walk_map(value, found, texts, manifest, node)
                return
            env_field = self._pair_secret(value, node, parent, manifest)
            # Where no schema is known, a string's field is decided as _field would (not a
            # reference field of its parent, and a secret-like name), without the call.
            unknown = node is None
            refs = _kube_fields().references.get(parent) if unknown and parent is not None else None
            names = _field_names(self.patterns, manifest)
            for k, v in value.items():
                if unknown and type(v) is str and type(k) is str:
                    secret = names.get(k)
                    if secret is None:
                        secret = names[k] = _is_secret_field(k, self.patterns, manifest)
                    if k == env_field or ((refs is None or k not in refs) and secret):
                        self._in_place += 1
                        self._leaves(v, found)
                    else:
                        texts.append(v)
                    continue
                key = k if type(k) is str else str(k)
                secret, child = self._field(key, v, node, parent, manifest)
                if secret or k == env_field:
                    self._in_place += 1
                    self._leaves(v, found)
                elif type(v) is str:
                    texts.append(v)  # what the call below would do, without the call
                else:
                    self._walk(v, found, texts, manifest=manifest, node=child, parent=key)
        elif isinstance(value, list | tuple):
            pending = False  # the previous item was a secret-named flag with no value
            mysql = _runs_mysql(value)
            self._in_place += mysql
            for item in value:
                if pending and isinstance(item, str) and _plausible_secret(item):
                    found.add(item)
                    pending = False
                    continue
                if mysql and isinstance(item, str) and _GLUED_P.fullmatch(item):
                    found.add(item[2:])
                    continue
                pending = (
                    isinstance(item, str)
                    and item.startswith("-")
                    and "=" not in item
                    and _flag_is_secret(item.lstrip("-"), self.patterns)
                )
                self._walk(item, found, texts, manifest=manifest, node=node, parent=parent)

    def _walk_map(
        self, value: Mapping[Any, Any], found: set[str], texts: list[str], manifest: bool, node: Any
    ) -> None:
        """:meth:`_walk` of a map the schema declares (labels, a ConfigMap's ``data``): the
        keys are the user's words, so a string's key name alone decides (as
        :meth:`_field` would, without its call per key)."""
        pats = self.patterns
        for k, v in value.items():
            if type(v) is str and type(k) is str:
                if _is_secret_key(k, pats):
                    self._in_place += 1
                    self._leaves(v, found)
                else:
                    texts.append(v)
                continue
            key = k if type(k) is str else str(k)
            secret, child = self._field(key, v, node, None, manifest)
            if secret:
                self._in_place += 1
                self._leaves(v, found)
            elif type(v) is str:
                texts.append(v)
            else:
                self._walk(v, found, texts, manifest=manifest, node=child, parent=key)

    # -- redacting -----------------------------------------------------------------------

    def _forms(self, found: Iterable[str]) -> dict[str, str]:
        return _known_forms((*self._extra, *found))

    def _scrub(self, value: Any, forms: Mapping[str, str], order: list[str] | None = None) -> Any:
        return self._scrub_in(value, forms, _longest_first(forms) if order is None else order)

    def _scrub_in(self, value: Any, forms: Mapping[str, str], order: list[str]) -> Any:
        if isinstance(value, str):
            if value in forms:
                return self.digest(forms[value])
            return _replace_known(value, forms, self.digest, order)
        if isinstance(value, Mapping):
            return {k: self._scrub_in(v, forms, order) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub_in(v, forms, order) for v in value]
        return value

    def _digest_found(
        self,
        value: Any,
        found: set[str],
        *,
        manifest: bool,
        node: Any = None,
        parent: str | None = None,
    ) -> Any:
        """Copy with the positions :meth:`find` looks at digested as a whole, every URL
        password digested where it stands, and so are the ``found`` secrets too short to be
        hunted elsewhere (:func:`_short`) where a detector finds them in a string."""
        if isinstance(value, str):
            return self._digest_text(value, found)
        if isinstance(value, dict | Mapping):
            env_field = self._pair_secret(value, node, parent, manifest)
            out: dict[Any, Any] = {}
            for k, v in value.items():
                key = k if type(k) is str else str(k)
                secret, child = self._field(key, v, node, parent, manifest)
                if secret or k == env_field:
                    out[k] = self._digest_leaves(v)
                elif type(v) is str:
                    out[k] = self._digest_text(v, found)
                elif type(v) in _SCALARS:
                    out[k] = v  # what the call below would return, without the call
                else:
                    out[k] = self._digest_found(v, found, manifest=manifest, node=child, parent=key)
            return out
        if isinstance(value, list | tuple):
            mysql = _runs_mysql(value)
            return [
                f"-p{self.digest(v[2:])}"
                if mysql and isinstance(v, str) and _GLUED_P.fullmatch(v) and not is_digest(v[2:])
                else self._digest_found(v, found, manifest=manifest, node=node, parent=parent)
                for v in value
            ]
        return value

    def _digest_text(self, text: str, short: set[str]) -> str:
        """``text`` with the secrets the detectors find in it digested where they stand:
        a URL's password, and ``--password=V``, ``-pV``… when ``V`` is one of the ``short``
        secrets found (longer ones, and a JSON document holding a secret, are known forms
        that :meth:`_scrub` replaces)."""
        if "://" in text:
            text = _sub_url_passwords(text, self.digest)
        # A short secret is never a PEM key or a token format: only the detectors behind
        # a secret-like word (flags, assignments, headers, -pV) can find one.
        if not short or not any(f in text for f in short) or not _has_secret_hint(text):
            return text
        spans = _secret_spans(text, self.patterns, credentials=False)
        out, last = [], 0
        for a, b in sorted(set(spans)):
            if a < last:
                continue
            out += [text[last:a], self.digest(text[a:b])]
            last = b
        out.append(text[last:])
        return "".join(out)

    def _digest_leaves(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: self._digest_leaves(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._digest_leaves(v) for v in value]
        if value is None or isinstance(value, bool) or is_digest(value):
            return value
        return self.digest(value)

    def values(self, value: Any) -> Any:
        """Copy of JSON-like ``value`` (values, a config snapshot, metadata) for the store."""
        found = self.find(value)
        stored = self._digest_found(value, _short(found), manifest=False)
        return self._scrub(stored, self._forms(found))

    def manifest(self, manifest: Mapping[str, Any], *, learned: bool = False) -> dict[str, Any]:
        """What the store keeps of a manifest: volatile fields dropped, secrets digested.

        ``learned``: the secrets ``manifest`` holds are among ``known`` already (found by
        :func:`learn_manifests` over a batch that includes it), so it is not searched
        again; the result is the same."""
        out = strip_volatile(manifest)
        if out.get("kind") == "List" and isinstance(out.get("items"), list):
            out["items"] = [
                self.manifest(item, learned=learned) if isinstance(item, Mapping) else item
                for item in out["items"]
            ]
            return out
        found = set() if learned else self.find(out, manifest=True)
        if is_secret_manifest(out):
            found |= _secret_payload(out)
            remember(found)
            for field in ("data", "stringData"):
                payload = out.get(field)
                if isinstance(payload, Mapping):
                    out[field] = {
                        k: v if is_digest(v) else self.digest(v) for k, v in payload.items()
                    }
        if found or not learned:
            forms, order = self._forms(found), None
        else:
            if self._learned is None:
                known = self._forms(())
                self._learned = known, _longest_first(known)
            forms, order = self._learned
        stored: dict[str, Any] = self._digest_found(  # a new copy
            out,
            _short(found) if found else self._batch,
            manifest=True,
            node=_kube_fields().root(out),
        )
        return self._scrub(stored, forms, order) if forms else stored

    def stored_form(
        self, manifest: Mapping[str, Any], scan: ManifestScan | None
    ) -> tuple[dict[str, Any], bool]:
        """``(what the store keeps of manifest, whether redaction changed it)``, for a
        manifest of a batch learned by :func:`scan_manifests` (``scan``: its own, None for
        one to store the long way). One that holds no secret, no field redaction rewrites
        and none of the known secrets is its :func:`strip_volatile` copy (deeper values
        shared with ``manifest``): :meth:`manifest` would return an equal one, after a
        second walk."""
        if scan is None or not scan.plain or self._reappears(scan.text):
            return self.manifest(manifest, learned=True), True
        return strip_volatile(manifest), False

    def _reappears(self, text: str) -> bool:
        """Whether a known secret (any of its forms; short ones as they are) is in
        ``text``: nothing else makes :meth:`manifest` rewrite a string of a plain scan."""
        if self._learned is None:
            known = self._forms(())
            self._learned = known, _longest_first(known)
        return any(form in text for form in self._learned[0]) or any(
            short in text for short in self._batch
        )

    def args(self, args: Iterable[Any]) -> list[Any]:
        """Command-line arguments fit for the store: URL passwords masked (``--state``),
        secret flags and ``--set auth.password=V`` values digested."""
        items = list(args)
        out: list[Any] = []
        for item in items:
            if isinstance(item, str) and "=" in item and not item.startswith("-"):
                # --set a.b.password=V arrives as its own argument "a.b.password=V"
                key, _, value = item.partition("=")
                if is_secret_key(key, self.patterns) and not is_digest(value):
                    remember([value])
                    item = f"{key}={self.digest(value)}"
            out.append(item)
        redacted: list[Any] = self.values(out)
        return [mask_url(a) if isinstance(a, str) else a for a in redacted]


def _secret_payload(secret: Mapping[str, Any]) -> set[str]:
    """A Secret's values in plain text: ``stringData`` as is, ``data`` decoded."""
    found: set[str] = set()
    for field in ("data", "stringData"):
        payload = secret.get(field)
        if not isinstance(payload, Mapping):
            continue
        for value in payload.values():
            if not isinstance(value, str) or is_digest(value):
                continue
            found.add(value)
            if field == "data":
                # Not base64 (or not text): the value itself is all there is to hunt.
                with suppress(binascii.Error, UnicodeDecodeError, ValueError):
                    found.add(base64.b64decode(value, validate=True).decode())
    return found


def is_secret_manifest(manifest: Mapping[str, Any]) -> bool:
    return manifest.get("kind") == "Secret" and str(manifest.get("apiVersion", "")) == "v1"


# --------------------------------------------------------------------------- shorthands


def redact_values(value: Any, patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> Any:
    """Copy of JSON-like ``value`` with every secret digested (see :class:`Redactor`)."""
    return Redactor(patterns).values(value)


def redact_args(args: Iterable[Any], patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> list[Any]:
    return Redactor(patterns).args(args)


def redact_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Normalized copy of a manifest fit for the store (secrets digested)."""
    return Redactor().manifest(manifest)


def secret_leaves(value: Any, patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> set[str]:
    """The secrets ``value`` holds (by every detector), to scrub wherever they reappear."""
    return Redactor(patterns).find(value)


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """Copy of ``value`` with every occurrence of a known secret (or its encodings) digested."""
    red = Redactor(known=secrets)
    return red._scrub(value, red._forms(()))


def store_form(
    manifest: Mapping[str, Any], secrets: Iterable[str] = (), *, learned: bool = False
) -> dict[str, Any]:
    """What the store keeps of a manifest, ``secrets`` also scrubbed wherever they appear
    (``learned``: they include what :func:`learn_manifests` found in it, see
    :meth:`Redactor.manifest`)."""
    return Redactor(known=secrets).manifest(manifest, learned=learned)


def holds_secret(manifest: Any) -> bool:
    """True for a Secret, or a ``kind: List`` with one among its items."""
    if not isinstance(manifest, Mapping):
        return False
    if is_secret_manifest(manifest):
        return True
    items = manifest.get("items") if manifest.get("kind") == "List" else None
    return isinstance(items, list) and any(holds_secret(i) for i in items)


class ManifestScan:
    """What one search of a manifest saw (:meth:`Redactor.scan`): the secrets it holds;
    ``plain``: it holds none, is not a Secret, and has no position whose value redaction
    rewrites where it stands (secret-named fields, env pairs, MySQL command lines); and
    its free-text strings joined by newlines, to test known secrets against in one pass."""

    __slots__ = ("found", "plain", "text")

    def __init__(self, found: set[str], plain: bool, text: str) -> None:
        self.found = found
        self.plain = plain
        self.text = text


def scan_manifests(
    manifests: Sequence[Mapping[str, Any]],
) -> tuple[set[str], list[ManifestScan | None]]:
    """:func:`learn_manifests`, keeping each manifest's :class:`ManifestScan` (None for a
    ``kind: List``, stored the long way) for :meth:`Redactor.stored_form`."""
    red = Redactor()
    found: set[str] = set()
    scans: list[ManifestScan | None] = []
    for manifest in manifests:
        if manifest.get("kind") == "List" and isinstance(manifest.get("items"), list):
            found |= learn_manifests([manifest])
            scans.append(None)
            continue
        scan = red.scan(manifest)
        found |= scan.found
        if is_secret_manifest(manifest):
            found |= _secret_payload(manifest)
        scans.append(scan)
    remember(found)
    return found, scans


def learn_manifests(manifests: Iterable[Mapping[str, Any]]) -> set[str]:
    """Find (and remember) the secrets a set of manifests holds, before any is stored, so
    that a value one object holds is hidden in every other (a Secret's password quoted in
    a ConfigMap listed before it)."""
    red = Redactor()
    found: set[str] = set()
    for manifest in manifests:
        items = manifest.get("items") if manifest.get("kind") == "List" else None
        if isinstance(items, list):
            found |= learn_manifests(i for i in items if isinstance(i, Mapping))
            continue
        found |= red.find(manifest, manifest=True)
        if is_secret_manifest(manifest):
            found |= _secret_payload(manifest)
    remember(found)
    return found


_DIGEST_IN_TEXT = _lazy("_DIGEST_IN_TEXT", r"(?:hmac-sha256|sha256):[0-9a-f]{64}")


def mask_digests(text: str, replacement: str) -> str:
    """``text`` with every secret digest in it (whole, or inside a URL or ``key=…``
    argument, where scrubbing put it) replaced: a digest of a short password can be guessed
    back by whoever holds the key, so what is handed around carries none."""
    return replacement if is_digest(text) else _DIGEST_IN_TEXT.sub(replacement, text)
