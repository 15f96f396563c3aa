"""Conformance of the ONNX frontend + float32 golden executor on the ONNX backend node test cases of
every op the frontend claims (tests/conformance_cases.py), and freshness of docs/conformance.md."""

from __future__ import annotations

import os
import re

import pytest

import conformance_cases as cc

_CASES = cc.claimed_cases()


def _param(case):
    reason = cc.xfail_reason(case.name)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in _CASES])
def test_node_case(case):
    ok, msg = cc.result(case)
    assert ok, f"{case.name} ({case.op}): {msg}"


def test_every_claimed_op_is_exercised():
    """Each claimed op has node cases in this onnx (so the table has no untested claim)."""
    missing = sorted(set(cc.claimed_ops()) - {c.op for c in _CASES if not c.expanded})
    assert not missing, f"claimed ops with no node test case: {missing}"


def test_xfail_reasons_name_real_cases():
    names = {c.name for c in cc.all_cases()}
    assert set(cc.XFAIL) <= names, sorted(set(cc.XFAIL) - names)
    for pat, _ in cc.XFAIL_PATTERNS:
        assert any(re.fullmatch(pat, n) for n in names), pat


def test_conformance_table_is_current():
    """docs/conformance.md equals what tools/gen_conformance.py writes now (same onnx version)."""
    import onnx

    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "conformance.md")
    with open(path) as f:
        committed = f.read()
    m = re.search(r"^onnx (\S+):", committed, re.M)
    if m is None or m.group(1) != onnx.__version__:
        pytest.skip(
            f"docs/conformance.md was generated with onnx {m.group(1) if m else '?'}, this is onnx {onnx.__version__}"
        )
    assert committed == cc.table_markdown(), "docs/conformance.md is stale: run tools/gen_conformance.py"
