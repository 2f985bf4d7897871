"""Fixtures of the policy gate's tests (test_policies, test_policy_engines, test_policy_batches):
the engine, the example bundles rendered once per module, and an editable copy of the full one."""

from __future__ import annotations

import pytest

from tests.support.policy_cases import FULL, POLICIES, Bundle, render_examples
from renderer.gates.policy import PolicyEngine


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(POLICIES)


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[dict[str, dict], dict]]:
    return render_examples()


@pytest.fixture
def full(rendered) -> Bundle:
    return Bundle(FULL, *rendered[FULL])
