"""libyaml and pure-Python PyYAML give sbkube the same data and the same text.

The corpus: every YAML file under tests/fixtures and examples, what ``helm template`` renders
for every chart there, and edge cases (strings that look like booleans, numbers, dates or
null; multi-line, long and unicode strings; keys that need quotes; empty documents; big
numbers; random strings). Each text is loaded by both loaders (same data, or both refuse
it), then dumped by both dumpers with every option sbkube uses (same text), and the text
loaded back (the same data again). ``FastLoader`` and ``FastDumper`` (what ``load``/``dump``
use) are held to the same corpus: PyYAML's data and text, aliases and errors included.
"""

from __future__ import annotations

import datetime
import os
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbkube import yamlio

ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIRS = (ROOT / "tests" / "fixtures", ROOT / "examples")
OPTIONS = [
    {"sort_keys": sort_keys, "allow_unicode": allow_unicode}
    for sort_keys in (False, True)
    for allow_unicode in (False, True)
]

pytestmark = pytest.mark.skipif(
    not yamlio.LIBYAML and not os.environ.get("CI"),
    reason="PyYAML without libyaml: nothing to compare (CI requires libyaml)",
)


def test_libyaml_is_used_when_installed() -> None:
    # In CI a PyYAML built without libyaml is a failure, never a silent skip.
    assert yaml.__with_libyaml__, "PyYAML was built without libyaml"
    assert yamlio.LIBYAML
    assert yamlio.SafeLoader is yaml.CSafeLoader
    assert yamlio.SafeDumper is yaml.CSafeDumper


def yaml_files() -> list[Path]:
    return sorted(
        p
        for base in CORPUS_DIRS
        for p in base.rglob("*")
        if p.suffix in {".yaml", ".yml"} and p.is_file()
    )


def chart_dirs() -> list[Path]:
    return sorted(p.parent for base in CORPUS_DIRS for p in base.rglob("Chart.yaml"))


def load_both(text: str | bytes) -> tuple[Any, Any]:
    """(pure, C) documents of ``text``, or the YAMLError class each raised; the fast
    loader's must be the C loader's."""
    out = []
    for loader in (yamlio.PURE_LOADER, yamlio.C_LOADER, yamlio.FastLoader):
        try:
            out.append(yamlio.load_all(text, loader=loader))
        except yaml.YAMLError:
            out.append(yaml.YAMLError)
    assert out[2] == out[1], "the fast loader differs from libyaml's"
    return out[0], out[1]


def assert_same_text(documents: list[Any], where: str) -> None:
    for options in OPTIONS:
        pure = yamlio.dump_all(documents, dumper=yamlio.PURE_DUMPER, **options)
        c = yamlio.dump_all(documents, dumper=yamlio.C_DUMPER, **options)
        assert pure == c, f"{where}: dumpers differ with {options}"
        fast = yamlio.dump_all(documents, **options)
        assert fast == c, f"{where}: the fast dumper differs with {options}"
        one = [
            yamlio.dump(d, dumper=k, **options)
            for d in documents
            for k in (
                yamlio.PURE_DUMPER,
                yamlio.C_DUMPER,
            )
        ]
        assert one[0::2] == one[1::2], f"{where}: dump() differs with {options}"
        again = load_both(c)
        assert again[0] == again[1] == documents, f"{where}: not read back as written"


def test_every_yaml_file_of_the_repository() -> None:
    files = yaml_files()
    assert len(files) >= 40, files  # the corpus is really there
    parsed = 0
    for path in files:
        where = str(path.relative_to(ROOT))
        pure, c = load_both(path.read_bytes())  # as bytes: some bad-input files are not UTF-8
        assert pure == c, f"{where}: loaders differ"
        if pure is not yaml.YAMLError:  # a chart template or a bad-input fixture
            parsed += 1
            assert_same_text(pure, where)
    assert parsed >= 30


def test_every_rendered_chart() -> None:
    helm = os.environ.get("SBKUBE_HELM") or "helm"
    rendered = 0
    for chart in chart_dirs():
        proc = subprocess.run(
            [helm, "template", "corpus", str(chart), "--include-crds", "-n", "corpus"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            # made to fail: a bad-input fixture, or a chart that needs values
            assert "bad" in chart.parts or chart.name in {"broken", "strict"}, proc.stderr
            continue
        where = f"helm template {chart.relative_to(ROOT)}"
        pure, c = load_both(proc.stdout)
        assert pure == c != yaml.YAMLError, f"{where}: loaders differ"
        assert_same_text(pure, where)
        rendered += len(pure)
    assert rendered >= 80  # many-kinds alone renders more than 50 documents


LOOKALIKES = [
    "yes", "no", "on", "off", "y", "n", "True", "FALSE", "~", "null", "Null", "",
    "1e3", "1.0e+3", "0x1F", "0o17", "017", "0b101", "+1", "-0", "1_000", ".5", "1.",
    ".inf", "-.Inf", ".nan", "2024-01-01", "2024-01-01T10:00:00Z", "2024-1-1", "12:30:45",
    "1:20", "190:20:30",
]  # fmt: skip
AWKWARD = [
    " lead", "trail ", "a: b", "a:b", "- x", "-x", "#c", "x #c", "x#c", "it's", '"q"', "'",
    "\t", "tab\tin", "\n", "a\nb", "a\n\nb\n", "line\n" * 40, "\r", "a\r\nb", " \n ",
    "---", "...", "--- x", "? x", "?", "&a", "*a", "!t", "!!str", "|", ">", "%", "@", "`",
    "{", "}", "[", "]", ",", "a,b", "a]", "<<", "=", "\\", "\x00", "\x07", "\x1b", "\x7f",
    "é", "café ✓", "日本語", "\u00a0", "\x85", "\u2028", "\u2029", "\ufeff", "\ufffd",
    "\U0001f600 smile", "é" * 100, "x" * 127, "x" * 128, "x" * 129, "é" * 64, "é" * 65,
    "word " * 60, "a" * 5000,
]  # fmt: skip
NUMBERS = [
    0, -1, 10**18, 2**63, -(2**64), 10**40, 1.5, -0.0, 0.1, 1e300, 1e-300, 1.5e-7, 3.0,
    float("inf"), float("-inf"), True, False, None,
]  # fmt: skip
DATES = [datetime.date(2024, 1, 1), datetime.datetime(2024, 1, 1, 10, 0, 0)]


def random_strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = (
        "abcxyz019 :#-?&*!|>'\"%@`{}[],\\\t\n\r\x00\x07é✓日\u00a0\u2028\u2029\x85\ufeff\U0001f600"
    )
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(count)]


def shapes(value: Any) -> list[list[Any]]:
    """``value`` as a whole document, in a mapping, a list, as a key, among others."""
    key = str(value) if isinstance(value, float) else value
    return [
        [value],
        [{"key": value, "list": [value, {"nested": value}]}],
        [{key: value}],
        [value, None, {}, [], value],
    ]


def test_edge_cases() -> None:
    values = [*LOOKALIKES, *AWKWARD, *random_strings(600, seed=14), *NUMBERS, *DATES]
    # All at once (fast); value by value only to name the first one that differs.
    batch = [doc for value in values for documents in shapes(value) for doc in documents]
    try:
        assert_same_text(batch, "edge cases")
    except AssertionError:
        for value in values:
            for documents in shapes(value):
                assert_same_text(documents, f"edge case {value!r:.60}")
        raise


def test_empty_and_big_documents() -> None:
    for documents in ([], [None], [None, None], [{}], [[]], [{"a": None}]):
        assert_same_text(documents, f"{documents!r}")
    big = [{f"key-{i}": {"n": i, "f": i / 7, "s": f"value {i}" * (i % 9)}} for i in range(500)]
    assert_same_text(big, "500 documents")


def test_nan_is_written_alike() -> None:
    # nan != nan, so not through assert_same_text's read-back equality.
    for options in OPTIONS:
        docs = [{"nan": float("nan")}, [float("nan")]]
        pure = yamlio.dump_all(docs, dumper=yamlio.PURE_DUMPER, **options)
        assert pure == yamlio.dump_all(docs, dumper=yamlio.C_DUMPER, **options)


def test_long_strings_are_not_folded() -> None:
    text = yamlio.dump({"description": "word " * 40 + "end", "quoted": "\x07 " * 60})
    assert len(text.splitlines()) == 2


def test_loaders_agree_on_unquoted_scalars() -> None:
    text = "".join(f"- {s}\n" for s in LOOKALIKES)
    pure, c = load_both(text)
    assert pure == c
    loaded = dict(zip(LOOKALIKES, pure[0], strict=True))
    assert loaded["yes"] is True  # YAML 1.1
    assert loaded["1e3"] == "1e3"  # not a float without a dot in YAML 1.1
    assert loaded["0x1F"] == 31
    assert loaded["~"] is None
    assert loaded["2024-01-01"] == datetime.date(2024, 1, 1)


def fast_and_plain(text: str) -> tuple[Any, Any]:
    """``text`` loaded by the fast loader and by libyaml's, or the error each raised."""
    out: list[Any] = []
    for loader in (yamlio.FastLoader, yamlio.C_LOADER):
        try:
            out.append(yamlio.load_all(text, loader=loader))
        except yaml.YAMLError as err:
            out.append(str(err))
    return out[0], out[1]


SPECIAL_TEXTS = [
    "a: &x {k: 1}\nb: *x\nc: [*x, *x]\n",  # aliases
    "base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  y: 3\n",  # merge key
    "m: &m\n  <<: [{a: 1}, {b: 2}]\n  c: 3\nn: {<<: *m, d: 4}\n",  # merge of merges
    "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}, {a: 2}]\n",
    "t: 2024-01-01T10:00:00Z\nd: 2024-01-01\nb: !!binary aGVsbG8=\nf: 1.5\nn: ~\n",
    "x: !!str 12\ny: !!int '7'\nz: !!float '2'\nw: !!null ''\n",
    "dup: 1\ndup: 2\nother: {k: 1, k: 2}\n",
    "? [a, b]\n: unhashable\n",
    "? {a: 1}\n: unhashable\n",
    "1: int key\n2.5: float key\ntrue: bool key\n~: null key\n2024-01-01: date key\n",
    "x: !custom value\n",
    "x: !!str [a]\n",
    "x: !!map [a]\n",
    "&a [*a, {k: *a}]\n",  # recursive sequence
    "&m {self: *m, list: [*m]}\n",  # recursive mapping
    "&k {*k : 1}\n",  # a mapping as its own key
    "a: [" * 300 + "]" * 300 + "\n",
    "---\n---\na: 1\n--- [1, 2]\n--- text\n",
]


def test_fast_loader_is_pyyaml_on_special_nodes() -> None:
    for text in SPECIAL_TEXTS:
        fast, plain = fast_and_plain(text)
        assert repr(fast) == repr(plain), text  # repr: recursive data, and the same errors


def test_fast_loader_shares_aliased_objects() -> None:
    (data,) = yamlio.load_all("a: &x {k: [1]}\nb: *x\nc: [*x]\n")
    assert data["a"] is data["b"] is data["c"][0]
    (loop,) = yamlio.load_all("&m {self: *m}\n")
    assert loop["self"] is loop


def test_fast_dumper_writes_aliases_and_other_types_as_pyyaml() -> None:
    shared = {"k": [1, 2]}
    items = [1, {"a": shared}]
    loop: dict[str, Any] = {"x": 1}
    loop["self"] = loop
    documents = [
        {"a": shared, "b": shared, "c": [shared, items, items]},
        loop,
        {"t": (1, "two"), "s": {1, 2}, "f": 1.5, "d": datetime.date(2024, 1, 1), "b": b"hi"},
        {1: "int key", None: "null key", False: "bool", (1, 2): "tuple key"},
    ]
    for options in OPTIONS:
        for flow in (None, False, True):
            for style in (None, '"'):
                extra = {"default_flow_style": flow, "default_style": style}
                texts = [
                    yaml.dump_all(documents, Dumper=dumper, **options, **extra)
                    for dumper in (yamlio.FastDumper, yamlio.C_DUMPER)
                ]
                assert texts[0] == texts[1], (options, extra)


def test_sbkube_reads_and_writes_yaml_only_through_yamlio() -> None:
    """No module but yamlio calls PyYAML's load/dump functions (the C/Python choice is
    made once, there)."""
    calls = re.compile(
        r"\byaml\.(CSafeLoader|CSafeDumper)\b"
        r"|\byaml\.(safe_load|safe_load_all|safe_dump|safe_dump_all|load|load_all|dump|dump_all)\("
    )
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "sbkube").rglob("*.py"))
        if path.name != "yamlio.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if calls.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
