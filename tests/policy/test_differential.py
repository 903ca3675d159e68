"""The generated policy and the Python rules give the same verdicts (issue 12).

For every rule with a CEL form, per version line: the severities the policy's validations
fail with (a real CEL runtime, tests/policy/runtime.py) equal the severities the Python
rule reports, on the conformance corpus and on generated objects. CREATE compares with
`evaluate`; UPDATE compares with the webhook's `decide` (errors the stored object already
had are not denied).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from longhorn_bi.engine.names import label_key_problem, label_value_problem
from longhorn_bi.engine.policy import policy_validations, validation_expression
from longhorn_bi.engine.rules import RuleContext, Severity, evaluate
from longhorn_bi.engine.rules.backing_image import MAX_CEL_URL
from longhorn_bi.engine.rules.common import MAX_CEL_LABELS
from longhorn_bi.engine.versions import SUPPORTED_VERSIONS, LonghornVersion
from longhorn_bi.webhook.review import AdmissionRequest, decide
from tests import go_url_cases as url_cases
from tests.conformance.corpus import case_lines, load_corpus
from tests.policy.runtime import PolicyRuntime

POLICY_KINDS = {"BackingImage", "BackupBackingImage"}
Verdict = dict[str, frozenset[Severity]]


@cache
def runtime(line: str) -> PolicyRuntime:
    return PolicyRuntime(LonghornVersion.parse(line))


def schema_valid(obj: Mapping[str, Any], version: LonghornVersion) -> bool:
    """What reaches a policy at all: the CRD's schema refuses wrong types first (LHB005), and
    the API server invalid metadata.labels (k8s.io/apiserver pkg/registry/rest/create.go,
    update.go: BeforeCreate and BeforeUpdate validate ObjectMeta before the validating
    admission; v1.30.0), which LHB004 also reports."""
    labels = obj.get("metadata", {}).get("labels") or {}
    if any(label_key_problem(k) or label_value_problem(v) for k, v in labels.items()):
        return False
    return not any(v.rule == "LHB005" for v in evaluate(obj, RuleContext(version=version)))


def cel_verdict(line: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Verdict:
    out: dict[str, set[Severity]] = {}
    for failure in runtime(line).failures(obj, old):
        assert failure.message.startswith(f"[{failure.rule}] "), failure
        assert "evaluation error" not in failure.message, failure
        out.setdefault(failure.rule, set()).add(failure.severity)
    return {rule: frozenset(s) for rule, s in out.items()}


def python_verdict(line: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Verdict:
    version = LonghornVersion.parse(line)
    ctx = RuleContext(version=version, requester_known=True, previous=old)
    violations = evaluate(obj, ctx)
    out: dict[str, set[Severity]] = {}
    for v in violations:
        if v.severity is Severity.WARNING:
            out.setdefault(v.rule, set()).add(v.severity)
    errors = {v.rule for v in violations if v.severity is Severity.ERROR}
    if errors and old is not None:
        # The webhook's own answer: it denies only errors the change introduces.
        name = str(obj.get("metadata", {}).get("name", ""))  # the object's: nothing to fill
        request = AdmissionRequest(
            "uid", "longhorn.io", "v1beta2", str(obj.get("kind")), "UPDATE",
            "longhorn-system", name, obj, old, False, "kubernetes-admin", True,
        )  # fmt: skip
        response = decide(request, ctx)
        assert "more errors" not in response.message
        errors = set(re.findall(r"\[(LHB\d+)\]", response.message))
    for rule in errors:
        out.setdefault(rule, set()).add(Severity.ERROR)
    rules = runtime(line).rules
    return {rule: frozenset(s) for rule, s in out.items() if rule in rules}


def assert_same(line: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    assert cel_verdict(line, obj, old) == python_verdict(line, obj, old), (line, obj, old)


CORPUS = [
    (case, line, index, obj)
    for case, line in case_lines(load_corpus())
    if not case.by_longhorn  # Longhorn's own requests are not judged (matchConditions)
    for index, obj in enumerate(case.objects)
    if obj.get("kind") in POLICY_KINDS
]


@pytest.mark.parametrize(
    ("case", "line", "index", "obj"),
    CORPUS,
    ids=[f"{c.name}@{line}#{i}" for c, line, i, _ in CORPUS],
)
def test_corpus_verdicts_are_equal(
    case: Any, line: str, index: int, obj: Mapping[str, Any]
) -> None:
    if not schema_valid(obj, LonghornVersion.parse(line)):
        pytest.skip("the CRD schema refuses it before any policy runs")
    old = case.old if case.operation == "UPDATE" else None
    assert_same(line, obj, old)


def test_corpus_exercises_the_policy() -> None:
    """The corpus is not silent for the policy: some of its objects fail a validation."""
    failing = {
        f.rule
        for _, line, _, obj in CORPUS
        for f in runtime(line).failures(obj)
        if schema_valid(obj, LonghornVersion.parse(line))
    }
    assert {"LHB101", "LHB103", "LHB107"} <= failing


CHECKSUM = "3f" * 64
_WS = st.sampled_from(["", " ", "\t", "\n "])
_WORD = st.sampled_from(
    [
        *("", "raw", "qcow2", "RAW", "vol-1", "x", "img", "Bad_Name"),
        *("encrypt", "decrypt", "ignore", "0", "00", "1", "012", "-1", "2.5", "a_b.c", "default"),
    ]
)
_PARAM_KEYS = [
    "volume-name",
    "export-type",
    "url",
    "backing-image",
    "encryption",
    "secret",
    "secret-namespace",
    "data-engine",
    "backup_url",
    "concurrent-limit",
    "backup-target-name",
]


@st.composite
def _urls(draw: st.DrawFn) -> str:
    """Download URLs from the grammar that probes Go's parser (tests/go_url_cases.py)."""
    scheme = draw(st.sampled_from(["http", "https"]) | st.sampled_from(url_cases.SCHEMES))
    head = draw(st.sampled_from([f"{scheme}://"] * 4 + [f"{scheme}:", ""]))
    # Each part plain as often as odd, so that both verdicts are common.
    plain = ("", "example.com", "", "/a.img")
    return head + "".join(
        draw(st.sampled_from(part) | st.just(usual))
        for part, usual in zip(
            (url_cases.USERINFO, url_cases.HOSTS, url_cases.PORTS, url_cases.PATHS),
            plain,
            strict=True,
        )
    )


URLS = st.one_of(_urls(), st.sampled_from(url_cases.WHOLE), st.text(max_size=12))


@st.composite
def _padded(draw: st.DrawFn, core: st.SearchStrategy[str]) -> str:
    return draw(_WS) + draw(core) + draw(_WS)


CHECKSUMS = _padded(
    st.one_of(
        st.just(CHECKSUM),
        st.just(CHECKSUM.upper()),
        st.just(CHECKSUM[:64]),
        st.just(CHECKSUM + "0"),
        st.text(alphabet="0123456789abcdefXYZ-", max_size=130),
    )
)
_NAME_CHARS = "abcxyz019-._AZ_/"
NAMES = st.one_of(
    st.sampled_from(["img", "other", "a", "", "Parrot", "a" * 41, "b" * 31 + ".-x" + "c" * 10]),
    st.text(alphabet=_NAME_CHARS, max_size=70),
)
LABEL_KEYS = st.one_of(
    st.sampled_from(["team", "example.com/team", "/x", "a/b/c", "-x", "x" * 64, "Ex.com/y"]),
    st.text(alphabet=_NAME_CHARS, max_size=20),
)
LABELS = st.dictionaries(LABEL_KEYS, st.one_of(NAMES, st.just("")), max_size=3)
METADATA = st.fixed_dictionaries(
    {}, optional={"name": NAMES, "generateName": st.just("img-"), "labels": LABELS}
)
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "sourceType": st.sampled_from(
            ["download", "upload", "export-from-volume", "restore", "clone", "bogus", ""]
        ),
        "checksum": CHECKSUMS,
        "minNumberOfCopies": st.integers(-3, 3),
        "dataEngine": st.sampled_from(["", "v1", "v2", "v3"]),
        "sourceParameters": st.dictionaries(
            st.sampled_from(_PARAM_KEYS), _padded(st.one_of(_WORD, URLS))
        ),
        "secret": st.sampled_from(["", "key-a", "key-b"]),
        "secretNamespace": st.sampled_from(["", "ns-a", "ns-b"]),
        "userCreated": st.booleans(),
        "backingImage": _WORD,
        "backupTargetName": _WORD,
        "labels": LABELS,
    },
)
STATUS = st.fixed_dictionaries(
    {},
    optional={
        "state": st.sampled_from(["", "Completed", "Error", "Unknown", "InProgress"]),
        "lastSyncedAt": st.sampled_from(["", "2026-01-01T00:00:00Z"]),
    },
)


@st.composite
def objects(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": kind,
        "metadata": draw(METADATA),
    }
    if draw(st.integers(0, 9)):  # now and then no spec at all
        spec = draw(SPEC)
        keep = (
            {"userCreated", "backingImage", "backupTargetName", "labels"}
            if kind == "BackupBackingImage"
            else set(spec) - {"userCreated", "backingImage", "backupTargetName", "labels"}
        )
        obj["spec"] = {k: v for k, v in spec.items() if k in keep}
    if draw(st.booleans()):
        obj["status"] = draw(STATUS)
    return obj


@settings(max_examples=500, deadline=None)
@given(
    line=st.sampled_from(SUPPORTED_VERSIONS),
    kind=st.sampled_from(sorted(POLICY_KINDS)),
    data=st.data(),
)
def test_generated_verdicts_are_equal(line: str, kind: str, data: st.DataObject) -> None:
    obj = data.draw(objects(kind))
    old = data.draw(st.none() | objects(kind))
    if not schema_valid(obj, LonghornVersion.parse(line)):
        return
    if old is not None and not schema_valid(old, LonghornVersion.parse(line)):
        old = None
    if old is not None:  # an UPDATE keeps the name
        old["metadata"].pop("name", None)
        if "name" in obj["metadata"]:
            old["metadata"]["name"] = obj["metadata"]["name"]
    assert_same(line, obj, old)
    event(f"policy fails it: {bool(runtime(line).failures(obj, old))}")


DOWNLOAD_URLS = st.one_of(URLS, _padded(URLS), st.sampled_from(["", " "]))


@settings(max_examples=500, deadline=None)
@given(line=st.sampled_from(SUPPORTED_VERSIONS), url=st.none() | DOWNLOAD_URLS)
def test_download_urls_agree(line: str, url: str | None) -> None:
    """LHB104 on its own: a download BackingImage whose only question is its URL."""
    obj = download(url)
    assert_same(line, obj, None)
    event(f"LHB104 fails it: {'LHB104' in python_verdict(line, obj, None)}")


def test_an_overlong_download_url_is_the_known_difference() -> None:
    """Past MAX_CEL_URL characters the policy refuses a URL unparsed (its cost bound); the
    Python rule parses it. docs/policy.md lists the difference."""
    obj = download("http://example.com/" + "x" * MAX_CEL_URL)
    assert "LHB104" in cel_verdict("1.12", obj, None)
    assert "LHB104" not in python_verdict("1.12", obj, None)
    assert_same("1.12", download("http://example.com/" + "x" * (MAX_CEL_URL - 19)), None)


def test_a_backup_with_very_many_labels_is_the_known_difference() -> None:
    """Past MAX_CEL_LABELS backup labels the policy judges none of them (the cost of the loop);
    the Python rule does. docs/policy.md lists the difference."""
    labels = {f"k{i}": "v" for i in range(MAX_CEL_LABELS)}
    obj = {"apiVersion": "longhorn.io/v1beta2", "kind": "BackupBackingImage",
           "metadata": {"name": "img"}, "spec": {"backingImage": "img", "labels": labels}}  # fmt: skip
    labels["bad/key/"] = ""
    assert "LHB004" in python_verdict("1.12", obj, None)
    assert "LHB004" not in cel_verdict("1.12", obj, None)
    del labels["k0"]  # at the bound it is judged
    assert_same("1.12", obj, None)
    assert "LHB004" in cel_verdict("1.12", obj, None)


def download(url: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"sourceType": "download", "checksum": CHECKSUM}
    if url is not None:
        spec["sourceParameters"] = {"url": url}
    return {"apiVersion": "longhorn.io/v1beta2", "kind": "BackingImage",
            "metadata": {"name": "img"}, "spec": spec}  # fmt: skip


# Edits that break a validation, and objects on which the broken policy must then disagree.
def restore(url: str | None, target_name: str | None = None) -> dict[str, Any]:
    pairs = (("backup-url", url), ("backup-target-name", target_name))
    params = {key: value for key, value in pairs if value is not None}
    return {"apiVersion": "longhorn.io/v1beta2", "kind": "BackingImage",
            "metadata": {"name": "img"},
            "spec": {"sourceType": "restore", "checksum": CHECKSUM, "sourceParameters": params}}  # fmt: skip


S3 = "s3://bucket@us-east-1/?backingImage=img"
VFS = "vfs:///store?backingImage=img"
# Edits that break a validation, and objects on which the broken policy must then disagree.
BROKEN = [
    ("isURL(", "!isURL(", download("http://example.com/a.img"), "LHB104"),
    ("'.localhost'", "'.localhostx'", download("http://a.localhost/x"), "LHB104"),
    ("127\\\\.", "128\\\\.", download("http://127.0.0.1/x"), "LHB104"),
    ("ffff:", "fffe:", download("http://[::ffff:127.0.0.1]/x"), "LHB104"),
    ("'^[hH][tT][tT][pP][sS]?:'", "'^[hH][tT][tT][pP]:'", download("https://x/"), "LHB104"),
    (".contains('?')", ".contains('#')", restore(S3), "LHB201"),
    ("|vfs)://'", ")://'", restore(VFS, "default"), "LHB201"),
    ("startsWith('vfs://')", "startsWith('s3://')", restore(VFS), "LHB201"),
]


@pytest.mark.parametrize(
    ("old", "new", "obj", "rule"), BROKEN, ids=[f"{b[3]}:{b[1]}" for b in BROKEN]
)
def test_a_broken_expression_is_caught(old: str, new: str, obj: dict[str, Any], rule: str) -> None:
    line = "1.12"
    runtime(line)  # the intact policy agrees on the object
    assert_same(line, obj, None)
    broken = PolicyRuntime(LonghornVersion.parse(line), lambda text: text.replace(old, new))
    assert any(old in validation_expression(r, c) for r, c in policy_validations(
        LonghornVersion.parse(line)))  # fmt: skip
    found = {f.severity for f in broken.failures(obj) if f.rule == rule}
    assert found != python_verdict(line, obj, None).get(rule, set())
