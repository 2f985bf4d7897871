"""The policy gate (policies/*.rego through renderer.gates.policy), run in process with regorus on
bundles rendered from the example environments and then broken one edit at a time. The same
table under the real OPA engine: tests/test_policy_engines.py."""

from __future__ import annotations

import copy
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.policy_cases import (BROKEN, BUNDLE_CASES, FULL, OTHER_TENANT, POLICIES, TENANT, WITH_PREFIXES, Bundle,
                          rules)
from renderer.gates.policy import PolicyEngine, PolicyError, run_policy_unit_tests


# ---------------------------------------------------------------- the Rego unit tests


def test_every_rego_unit_test_passes():
    results = run_policy_unit_tests(POLICIES)
    failed = [name for name, ok in results if not ok]
    assert failed == []
    files = {name.split(":")[0] for name, _ in results}
    assert files == {"bundle_test.rego", "isolation_test.rego", "lib_test.rego", "network_test.rego", "pod_test.rego",
                     "workload_test.rego", "kafka_test.rego", "secrets_test.rego", "retention_test.rego"}
    assert len(results) >= 90


def test_a_failing_or_broken_rego_unit_test_is_reported_failed(tmp_path):
    copy_ = tmp_path / "policies"
    shutil.copytree(POLICIES, copy_)
    with (copy_ / "lib_test.rego").open("a") as f:
        f.write('\ntest_a_false_expectation if {\n\tdir_of("a/b") == "x"\n}\n'
                "\ntest_an_undefined_value if {\n\tfx_deployment.nothing == 1\n}\n"
                "\ntest_with_input_runs if {\n\tcount(deny) == 0 with input as fx_deployment\n}\n"
                "\ntest_with_input_can_fail if {\n\tcount(deny) > 0 with input as fx_deployment\n}\n")
    # and a policy bug: privileged containers no longer caught
    workload = copy_ / "workload.rego"
    workload.write_text(workload.read_text().replace("c.securityContext.privileged == true", "c.securityContext.privileged == 42"))
    results = dict(run_policy_unit_tests(copy_))
    assert results["lib_test.rego: test_a_false_expectation"] is False
    assert results["lib_test.rego: test_an_undefined_value"] is False
    assert results["lib_test.rego: test_with_input_runs"] is True
    assert results["lib_test.rego: test_with_input_can_fail"] is False
    assert results["workload_test.rego: test_a_privileged_container_is_denied"] is False
    assert results["workload_test.rego: test_a_secure_deployment_passes_every_workload_check"] is True


def test_a_policy_that_does_not_compile_names_its_file_and_fails_every_unit_test(tmp_path):
    copy_ = tmp_path / "policies"
    shutil.copytree(POLICIES, copy_)
    (copy_ / "broken.rego").write_text("package main\n\ndeny contains msg if {\n")
    with pytest.raises(PolicyError) as err:
        PolicyEngine(copy_).check_bundle("b", [], None)
    assert "broken.rego" in str(err.value)
    assert "policies/" in err.value.hint
    results = run_policy_unit_tests(copy_)
    assert results and not any(ok for _, ok in results)


def test_a_policy_that_calls_an_unknown_function_is_a_policy_error_naming_file_and_line(tmp_path, full):
    """regorus resolves a name when it first evaluates it: a rule of every bundle fails when the
    engine loads, one inside an iteration when it first runs. (OPA's compiler, in
    tests/test_policy_engines.py, rejects both before anything runs.)"""
    copy_ = tmp_path / "policies"
    shutil.copytree(POLICIES, copy_)
    (copy_ / "unknown.rego").write_text("package main\n\nimport rego.v1\n\nwarn contains msg if {\n\tsome s in input\n"
                                        "\tmsg := no_such_function(s)\n}\n")
    engine = PolicyEngine(copy_)
    with pytest.raises(PolicyError) as err:
        full.check(engine)
    assert "unknown.rego:7" in str(err.value)
    assert "no_such_function" in str(err.value)
    assert "Stack backtrace" not in str(err.value)
    (copy_ / "unknown.rego").write_text("package main\n\nimport rego.v1\n\nwarn contains no_such_function(1)\n")
    with pytest.raises(PolicyError) as err:
        PolicyEngine(copy_)
    assert "unknown.rego:5" in str(err.value)


def test_a_folder_without_policies_is_refused(tmp_path):
    with pytest.raises(PolicyError, match="no policies"):
        PolicyEngine(tmp_path)


# ---------------------------------------------------------------- rendered bundles


def test_every_example_bundle_passes(engine, rendered):
    assert len(rendered) >= 8
    for path, (objects, info) in rendered.items():
        assert Bundle(path, objects, info).check(engine) == ([], []), path


def test_every_example_bundle_passes_with_the_requested_prefix_annotations(engine, rendered):
    for path, (objects, info) in rendered.items():
        assert Bundle(path, objects, info).with_platform_prefixes().check(engine) == ([], []), path


def test_without_bundle_json_the_namespace_labels_name_the_owner(engine, full):
    full.info = None
    assert full.check(engine) == ([], [])
    full.one("ServiceAccount")["metadata"]["labels"]["plugins.adapstory.io/tenant"] = OTHER_TENANT
    assert rules(full.check(engine)[0]) == {"bundle-identity"}


def test_a_harmless_annotation_passes(engine, full):
    full.one("Deployment")["metadata"].setdefault("annotations", {})["example.org/owner"] = "team-quiz"
    full.one("Service")["metadata"]["labels"]["example.org/cost-center"] = "42"
    assert full.check(engine) == ([], [])


def test_the_engine_never_mutates_its_inputs(engine, full):
    full.container()["env"].append({"name": "QUOTE", "value": 'a "quoted" \\ value'})
    objects = sorted(full.objects.items())
    before = copy.deepcopy((objects, full.info))
    engine.check_bundle(full.path, objects, full.info)
    engine.check_object("x.yaml", objects[0][1])
    assert (objects, full.info) == before


def test_an_engine_sent_to_another_process_by_pickle_still_checks(engine, full):
    copy_ = pickle.loads(pickle.dumps(engine))
    full.container()["securityContext"]["privileged"] = True
    assert copy_.check_bundle(full.path, sorted(full.objects.items()), full.info) == full.check(engine)
    assert rules(full.check(copy_)[0]) == {"no-privileged"}


def test_a_violation_line_names_bundle_file_object_rule_and_fix(engine, full):
    full.container()["securityContext"]["privileged"] = True
    deny, warn = full.check(engine)
    assert deny == [f"{FULL}/deployment-quiz-generator.yaml: Deployment/quiz-generator: no-privileged: "
                    "container plugin is privileged: remove securityContext.privileged"]
    assert warn == []


def test_a_missing_object_is_reported_on_the_namespace(engine, full):
    full.drop("ResourceQuota")
    ns = full.file_of("Namespace")
    assert full.check(engine)[0] == [f"{FULL}/{ns}: Namespace/{full.one('Namespace')['metadata']['name']}: "
                                     "resource-quota: the bundle has no ResourceQuota with spec.hard limits"]


def test_quotes_and_backslashes_in_values_survive_the_engine(engine, full):
    key = f'adapstory/plugins/grade-sync/{TENANT}/a"b\\c\\n\tü'
    full.one("ExternalSecret")["spec"]["data"][0]["remoteRef"]["key"] = key
    deny, _ = full.check(engine)
    assert len(deny) == 1
    assert f"reads '{key}', outside the bundle's Vault prefix" in deny[0]


def test_values_json_cannot_hold_reach_the_policies_as_strings(engine, full):
    """YAML's .nan and .inf, and dates, have no JSON form: they are read as strings, not a failure."""
    import datetime

    full.one("ConfigMap")["metadata"].setdefault("annotations", {}).update(
        {"example.org/nan": float("nan"), "example.org/inf": float("-inf"), "example.org/day": datetime.date(2026, 1, 2)})
    assert full.check(engine) == ([], [])
    full.container()["securityContext"]["runAsUser"] = 0
    full.one("ConfigMap")["metadata"]["annotations"]["example.org/nan"] = float("nan")
    assert rules(full.check(engine)[0]) == {"run-as-non-root", "high-uid"}


def test_warnings_are_reported_apart_from_violations(engine, full):
    full.container()["securityContext"]["readOnlyRootFilesystem"] = False
    del full.container()["resources"]["limits"]
    deny, warn = full.check(engine)
    assert deny == []
    assert rules(warn) == {"read-only-root-filesystem", "resource-limits"}


# ---------------------------------------------------------------- one edit, one rule


@pytest.mark.parametrize("edit, expected", BROKEN)
def test_one_broken_object_is_caught_by_its_rule_without_the_prefix_annotations(engine, full, edit, expected):
    full.without_platform_prefixes()
    edit(full)
    deny, _ = full.check(engine)
    assert deny, "the edit went through"
    assert rules(deny) == expected
    for line in deny:
        assert line.startswith(f"{FULL}/"), line


@pytest.mark.parametrize("edit, expected", BROKEN)
def test_one_broken_object_is_caught_with_the_requested_prefix_annotations_too(engine, full, edit, expected, request):
    full.with_platform_prefixes()
    edit(full)
    case = request.node.callspec.id
    assert rules(full.check(engine)[0]) == WITH_PREFIXES.get(case, expected)


@pytest.mark.parametrize("edit, expected", BROKEN)
def test_render_s_own_objects_handed_over_without_json_text_get_the_same_verdicts(engine, full, edit, expected):
    """``check_bundle(plain=True)`` (a bundle rendered in this process) gives what the JSON text
    path gives, on every broken bundle of the table and on the whole one."""
    objects = lambda: sorted(full.objects.items())  # noqa: E731
    assert engine.check_bundle(full.path, objects(), full.info, plain=True) == full.check(engine) == ([], [])
    edit(full)
    through_json = full.check(engine)
    assert through_json[0]
    assert engine.check_bundle(full.path, objects(), full.info, plain=True) == through_json


@pytest.mark.parametrize("value", [
    pytest.param(float("nan"), id="nan"),
    pytest.param(10 ** 30, id="beyond-64-bits"),
    pytest.param(__import__("datetime").date(2026, 1, 2), id="date"),
])
def test_a_value_regorus_cannot_take_as_it_is_goes_as_json_text(engine, full, value):
    full.one("ConfigMap")["metadata"].setdefault("annotations", {})["example.org/odd"] = value
    full.container()["securityContext"]["runAsUser"] = 0
    plain = engine.check_bundle(full.path, sorted(full.objects.items()), full.info, plain=True)
    assert plain == full.check(engine)
    assert rules(plain[0]) == {"run-as-non-root", "high-uid"}


@pytest.mark.parametrize("edit, expected", [p for p in BROKEN if p.id not in BUNDLE_CASES])
def test_conftest_without_combine_finds_the_same_per_object_violations(engine, full, edit, expected):
    before = copy.deepcopy(full.objects)
    edit(full)
    changed = [f for f, obj in full.objects.items() if before.get(f) != obj]
    assert len(changed) == 1
    file = changed[0]
    combined = [line for line in full.check(engine)[0] if line.startswith(f"{FULL}/{file}: ")]
    single, _ = engine.check_object(f"{FULL}/{file}", full.objects[file])
    assert single == combined


def test_kafka_prefix_annotations_must_match_bundle_json(engine, full):
    full.with_platform_prefixes()
    full.info["isolation"]["groupPrefix"] = f"tenant.{TENANT}.grade-sync."
    assert rules(full.check(engine)[0]) == {"kafka-acl-scope"}


def test_a_bundle_moved_into_another_tenants_folder_is_caught(engine, full):
    moved = f"dev/plugins/{OTHER_TENANT}/quiz-generator"
    deny, _ = engine.check_bundle(moved, sorted(full.objects.items()), full.info)
    assert rules(deny) == {"bundle-identity"}


# ---------------------------------------------------------------- regorus's library backtraces


_ERROR_TEXT = """
import regorus
import renderer.gates.policy
engine = regorus.Engine()
try:
    engine.eval_rule("data.nothing.here")
except RuntimeError as exc:
    print("backtrace" if "Stack backtrace" in str(exc) else "none")
"""


@pytest.mark.parametrize(("preset", "expected"), [
    pytest.param(None, "none", id="the-gate-turns-them-off-under-RUST_BACKTRACE"),
    pytest.param("1", "backtrace", id="a-value-the-user-set-wins"),
])
def test_regorus_errors_carry_a_stack_backtrace_only_when_the_user_asks(preset, expected):
    """Under RUST_BACKTRACE=1 regorus captured a backtrace for every error it created, the ones it
    discards while evaluating included; the gate never shows one, so it sets RUST_LIB_BACKTRACE=0."""
    env = {k: v for k, v in os.environ.items() if k != "RUST_LIB_BACKTRACE"}
    env["RUST_BACKTRACE"] = "1"
    if preset is not None:
        env["RUST_LIB_BACKTRACE"] = preset
    out = subprocess.run([sys.executable, "-c", _ERROR_TEXT], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == expected
