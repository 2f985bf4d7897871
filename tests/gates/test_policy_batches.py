"""Several bundles in one policy evaluation (``PolicyEngine.all_clean``, ``BundleGates.prefetch``):
a bundle's messages are the same alone and among others, so a batch without a message proves each
of its bundles clean; a batch with any message leaves every bundle to its own evaluation."""

from __future__ import annotations

import json

import pytest

from tests.support.policy_cases import BROKEN, FULL, POLICIES, Bundle
from renderer.gates.policy import PolicyEngine, bundle_input
from renderer.core.yamlio import dump
from renderer.pipeline.validate import BundleGates


def others(rendered, n: int = 3) -> list[Bundle]:
    return [Bundle(path, *rendered[path]) for path in sorted(rendered) if path != FULL][:n]


def entries(b: Bundle) -> tuple:
    return b.path, sorted(b.objects.items()), b.info


def test_the_example_bundles_together_are_all_clean(engine, rendered):
    batch = [entries(Bundle(path, *rendered[path])) for path in sorted(rendered)]
    assert len(batch) > 4
    assert engine.all_clean(batch) and engine.all_clean(batch, plain=True)


@pytest.mark.parametrize("position", [0, 1, 3], ids=["first", "second", "last"])
@pytest.mark.parametrize("edit, expected", BROKEN)
def test_a_broken_bundle_gets_the_same_messages_among_others_as_alone(engine, rendered, edit, expected, position):
    """The whole policy table: each broken bundle evaluated with three clean ones (at each place
    in the input) gets exactly its messages alone, the others none, and the batch is not clean."""
    broken = Bundle(FULL, *rendered[FULL])
    edit(broken)
    alone = engine.evaluate(bundle_input(*entries(broken)))
    assert alone[0], "the edit went through"
    batch = others(rendered)
    batch.insert(position, broken)
    together = engine.evaluate([e for b in batch for e in bundle_input(*entries(b))])
    assert together == alone
    assert not engine.all_clean([entries(b) for b in batch])


class Rendered:
    """A policy-case bundle as render hands it to the gates: path, objects, files (bundle.json too)."""

    def __init__(self, b: Bundle):
        self.path = b.path
        self.objects = tuple(sorted(b.objects.items()))
        self.files = tuple(sorted([(f, dump(o)) for f, o in b.objects.items()]
                                  + [("bundle.json", json.dumps(b.info).encode())]))


class _Counting(PolicyEngine):
    def __init__(self, policies):
        super().__init__(policies)
        self.evaluations = 0

    def evaluate(self, value, plain=False):
        self.evaluations += 1
        return super().evaluate(value, plain)


def test_prefetch_skips_the_clean_batches_and_leaves_a_broken_bundles_batch_to_one_by_one_checks(rendered):
    """Six clean bundles and one without its ResourceQuota, four to a batch: the first batch
    (clean) is evaluated once for its four bundles; the second (broken among them) once as a
    batch, then each of its three bundles alone, and only the broken one is denied."""
    bundles = [Bundle(path, *rendered[path]) for path in sorted(rendered)][:7]
    bundles[5].drop("ResourceQuota")
    gates = BundleGates((), True, POLICIES)
    gates._policy = engine = _Counting(POLICIES)
    made = [Rendered(b) for b in bundles]
    gates.prefetch(made)
    assert engine.evaluations == 2
    verdicts = {bundle.path: gates.check(bundle, "1.33", rendered=True)[0] for bundle in made}
    assert engine.evaluations == 2 + 3
    assert [p for p, v in verdicts.items() if v] == [bundles[5].path]
    assert verdicts[bundles[5].path] and all(": resource-quota: " in line for line in verdicts[bundles[5].path])


def test_a_new_prefetch_forgets_what_the_last_one_proved(rendered):
    bundles = [Bundle(path, *rendered[path]) for path in sorted(rendered)][:4]
    gates = BundleGates((), True, POLICIES)
    made = [Rendered(b) for b in bundles]
    gates.prefetch(made)
    assert len(gates._clean) == 4
    gates.prefetch(made[:1])  # one bundle: nothing to batch, check() evaluates it
    assert gates._clean == set()
