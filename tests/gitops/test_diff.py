"""``render diff``: object-by-object changes, the call-outs a reviewer must not miss, and the
text, markdown and JSON forms. Covers ``renderer.diff`` (pure) and ``render diff`` end to end
against real git repositories (``renderer.gitops``), which it must never write to.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.git import edit_install, env_dir, git, git_daemon, remove_install, render, signing_key  # noqa: F401
from renderer.gitops import report as diff
from renderer.gitops import report_markdown as md_report
from renderer.gitops.report import FileChange

B = "prod/plugins/acme-school/quiz"


def obj(kind: str, name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "plugin-acme-school-quiz"}, **spec}


def dump(o: dict) -> bytes:
    return yaml.safe_dump(o, sort_keys=True).encode()


def meta(version: str) -> bytes:
    return json.dumps({"pluginVersion": version, "inputDigest": f"sha256:{version}"}).encode()


def netpol(*targets: tuple[str, int]) -> dict:
    return obj("NetworkPolicy", "quiz", spec={"egress": [
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}],
         "ports": [{"port": port, "protocol": "TCP"}]} for ns, port in targets]})


def secret(*keys: str) -> dict:
    return obj("ExternalSecret", "quiz", spec={"data": [{"secretKey": k, "remoteRef": {"key": f"vault/{k}"}}
                                                        for k in keys]})


def kafka(*acls: tuple[str, str]) -> dict:
    return obj("KafkaUser", "quiz", spec={"authorization": {"type": "simple", "acls": [
        {"operations": [op], "resource": {"type": "topic", "name": topic, "patternType": "literal"}}
        for op, topic in acls]}})


def quota(cpu: str) -> dict:
    return obj("ResourceQuota", "quiz", spec={"hard": {"limits.cpu": cpu, "pods": "3"}})


def budget(tokens: int) -> dict:
    o = obj("ConfigMap", "plugin-budget", data={"llmTokensPerDay": str(tokens), "requestsPerSecond": "5"})
    o["metadata"]["labels"] = {"plugins.adapstory.io/budget": "true"}
    return o


def deployment(image: str) -> dict:
    return obj("Deployment", "quiz", spec={"template": {"spec": {"containers": [{"name": "quiz", "image": image}]}}})


def changed(old: dict, new: dict, file: str = "x.yaml") -> list[FileChange]:
    return [FileChange(f"{B}/bundle.json", meta("1.0.0"), meta("1.1.0")),
            FileChange(f"{B}/{file}", dump(old), dump(new))]


@pytest.mark.parametrize("old, new, says", [
    pytest.param(netpol(("gateway", 8080)), netpol(("gateway", 8080), ("kafka", 9092)),
                 "new egress: kafka/any pod port 9092/TCP", id="new-egress"),
    pytest.param(secret("a"), secret("a", "b"), "new secret: vault/b", id="new-secret"),
    pytest.param(kafka(("Read", "t.a")), kafka(("Read", "t.a"), ("Write", "t.b")), "new kafka ACL: Write topic t.b (literal)",
                 id="new-kafka-acl"),
    pytest.param(quota("1"), quota("1500m"), "raised quota limits.cpu: 1 -> 1.5", id="raised-quota"),
    pytest.param(budget(1000), budget(5000), "raised budget llmTokensPerDay: 1000 -> 5000", id="raised-budget"),
    pytest.param(deployment("r.io/quiz@sha256:aa"), deployment("r.io/quiz@sha256:bb"), "new image: r.io/quiz@sha256:bb",
                 id="new-image"),
])
def test_a_change_that_widens_access_is_called_out(old, new, says):
    report = diff.compare(changed(old, new), branch="main", base="f" * 40)
    assert [w.split(": ", 1)[1] for w in report.widening] == [says]
    assert f"WIDENS ACCESS: prod/acme-school/quiz: {says}" in diff.format_text(report)
    md = md_report.format_markdown(report)
    assert md.index("widen access") < md.index("| env | tenant | plugin |")


@pytest.mark.parametrize("old, new", [
    pytest.param(netpol(("gateway", 8080), ("kafka", 9092)), netpol(("gateway", 8080)), id="removed-egress"),
    pytest.param(secret("a", "b"), secret("a"), id="removed-secret"),
    pytest.param(quota("2"), quota("1"), id="lowered-quota"),
    pytest.param(budget(5000), budget(1000), id="lowered-budget"),
])
def test_a_change_that_narrows_access_is_not_called_out(old, new):
    report = diff.compare(changed(old, new), branch="main", base="f" * 40)
    assert report.widening == []
    assert "widen" not in md_report.format_markdown(report)


def test_changed_objects_carry_a_readable_yaml_diff_and_versions():
    report = diff.compare(changed(quota("1"), quota("2")), branch="main", base="f" * 40)
    (b,) = report.bundles
    assert (b.change, b.old_version, b.new_version) == ("changed", "1.0.0", "1.1.0")
    (o,) = b.objects
    assert (o.kind, o.name, o.change) == ("ResourceQuota", "quiz", "changed")
    assert "-    limits.cpu: '1'\n+    limits.cpu: '2'\n" in o.diff
    assert "~ ResourceQuota/quiz" in diff.format_text(report)


def test_a_removed_bundle_counts_every_object_that_will_be_pruned():
    files = [FileChange(f"{B}/bundle.json", meta("1.0.0"), None),
             FileChange(f"{B}/kustomization.yaml", b"resources: []\n", None)]
    files += [FileChange(f"{B}/{k.lower()}.yaml", dump(obj(k, "quiz")), None) for k in ("Deployment", "Service", "Role")]
    files.append(FileChange("prod/argocd/application-quiz.yaml", dump(obj("Application", "quiz")), None))
    report = diff.compare(files, branch="main", base="f" * 40)
    assert report.pruned == 4
    assert report.bundles[0].change == "removed" and report.bundles[0].counts() == (0, 0, 3)
    md = md_report.format_markdown(report)
    assert "**4 objects will be pruned** (1 bundle(s) removed: `prod/plugins/acme-school/quiz`)" in md
    assert md.index("will be pruned") < md.index("| env | tenant | plugin |")
    assert "| prod | acme-school | quiz | removed (was 1.0.0) | 0 | 0 | 3 |" in md


def test_long_diffs_are_folded_and_short_ones_are_not():
    long_old = obj("ConfigMap", "big", data={f"k{i}": "a" for i in range(30)})
    long_new = obj("ConfigMap", "big", data={f"k{i}": "b" for i in range(30)})
    files = changed(quota("1"), quota("2"), "resourcequota.yaml") + [
        FileChange(f"{B}/configmap.yaml", dump(long_old), dump(long_new))]
    md = md_report.format_markdown(diff.compare(files, branch="main", base="f" * 40))
    big = md[md.index("`ConfigMap/big`"):]
    small = md[md.index("`ResourceQuota/quiz`"):]
    assert big.split("\n", 3)[2].startswith("<details><summary>")
    assert small.split("\n", 3)[2] == "```diff"


def test_an_unchanged_run_says_so_in_one_line():
    report = diff.compare([], branch="main", base="a" * 40)
    assert report.unchanged
    assert diff.format_text(report) == f"unchanged: main at {'a' * 12} already holds what the environments render\n"
    assert md_report.format_markdown(report).count("\n") == 1
    assert json.loads(diff.format_json(report))["unchanged"] is True


def test_a_diff_fence_survives_backticks_in_the_objects():
    files = changed(obj("ConfigMap", "c", data={"x": "```"}), obj("ConfigMap", "c", data={"x": "````"}))
    md = md_report.format_markdown(diff.compare(files, branch="main", base=None))
    assert "`````diff" in md


# ------------------------------------------------------------------------------------ render diff


def snapshot(repo: Path) -> tuple[str, str, str]:
    """Refs, objects and working tree: everything ``render diff`` must leave as it was."""
    return (git(repo, "for-each-ref"), git(repo, "count-objects", "-v"), git(repo, "status", "--porcelain"))


def test_render_diff_shows_what_commit_would_change_and_never_writes(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    edit_install(env_dir, "prod", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d", "quiz-generator", version="1.3.0")
    remove_install(env_dir, "prod", "riverside-academy", "grade-sync")
    before = snapshot(repo)

    md = render("diff", str(env_dir), "--repo", str(repo), "--offline", "--format", "markdown")
    assert md.code == 0, md.err
    assert md.out.startswith("### render diff: 2 bundle(s) differ")
    assert "objects will be pruned** (1 bundle(s) removed: `prod/plugins/riverside-academy/grade-sync`)" in md.out
    assert "new secret: adapstory/plugins/quiz-generator/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/signing" in md.out
    assert "| prod | 4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d | quiz-generator | changed (1.2.0 -&gt; 1.3.0) |" in md.out
    assert md.out.index("**Summary:** bundles 0 added, 1 changed, 1 removed") < md.out.index("| env |")
    # the version label on every object of the move is one line; what really changed is shown as diffs
    churn = [line for line in md.out.splitlines() if line.startswith("- only labels changed on ")]
    assert len(churn) == 1 and "app.kubernetes.io/version: 1.2.0 -&gt; 1.3.0" in churn[0]
    assert "- changed `Deployment/quiz-generator`" in md.out
    assert "`Deployment/quiz-generator`" not in churn[0]

    data = render("diff", str(env_dir), "--repo", str(repo), "--offline", "--format", "json").json()
    assert {(b["path"], b["change"]) for b in data["bundles"]} == {
        ("prod/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator", "changed"),
        ("prod/plugins/riverside-academy/grade-sync", "removed")}
    assert snapshot(repo) == before

    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    text = render("diff", str(env_dir), "--repo", str(repo), "--offline")
    assert text.out.startswith("unchanged:") and text.out.count("\n") == 1


def test_render_diff_warns_when_commit_would_refuse_a_mass_delete(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    remove_install(env_dir, "dev", "riverside-academy", "grade-sync")
    run = render("diff", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == 0
    assert "REFUSED: the commit would delete 1 of 4 bundles of environment dev" in run.out


def test_render_diff_against_a_repository_that_does_not_exist_yet_adds_everything_and_creates_nothing(
        render, env_dir, tmp_path):
    repo = tmp_path / "not-yet"
    run = render("diff", str(env_dir), "--repo", str(repo), "--offline", "--format", "json")
    assert run.code == 0, run.err
    assert run.json()["summary"] == {"added": 9, "changed": 0, "removed": 0}
    assert not repo.exists()


def test_render_diff_reads_a_remote_over_the_network(render, env_dir, git_daemon):
    bare = git_daemon.create("diff.git")
    url = git_daemon.url("diff.git")
    assert render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline").code == 0
    refs = git(bare, "for-each-ref")
    edit_install(env_dir, "prod", "riverside-academy", "grade-sync", requests_per_second=9)
    run = render("diff", str(env_dir), "--repo", url, "--offline")
    assert run.code == 0, run.err
    assert "WIDENS ACCESS: prod/riverside-academy/grade-sync: raised budget requestsPerSecond: 5 -> 9" in run.out
    assert git(bare, "for-each-ref") == refs


# ------------------------------------------------------------------------------------ the PR comment at scale

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "prod" / "plugins" / "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d" \
    / "quiz-generator"
GOLDEN_TENANT = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
KAFKA_PORTS = b"    - port: 9093\n      protocol: TCP\n"


def golden(name: str, tenant: str = GOLDEN_TENANT) -> bytes:
    return (GOLDEN / name).read_bytes().replace(GOLDEN_TENANT.encode(), tenant.encode())


def with_digest(data: bytes, digest: str) -> bytes:
    meta_ = json.loads(data)
    meta_["inputDigest"] = digest
    return (json.dumps(meta_, indent=2, sort_keys=True) + "\n").encode()


def port_added(tenant: str) -> list[FileChange]:
    """What one port added to the kafka target in platform.yaml does to one real bundle."""
    root = f"prod/plugins/{tenant}/quiz-generator"
    old = golden("networkpolicy-quiz-generator.yaml", tenant)
    new = old.replace(KAFKA_PORTS, KAFKA_PORTS + b"    - port: 9094\n      protocol: TCP\n")
    assert new != old
    meta_ = golden("bundle.json", tenant)
    return [FileChange(f"{root}/bundle.json", meta_, with_digest(meta_, "sha256:" + "1" * 64)),
            FileChange(f"{root}/networkpolicy-quiz-generator.yaml", old, new)]


@pytest.fixture(scope="module")
def six_hundred_bundles() -> diff.Report:
    files = [f for i in range(600) for f in port_added(f"tenant-{i:04d}")]
    return diff.compare(files, branch="main", base="f" * 40)


def test_six_hundred_bundles_with_one_port_added_give_a_comment_under_the_limit_that_names_the_rest(
        six_hundred_bundles):
    report = six_hundred_bundles
    md = md_report.format_markdown(report)
    assert len(md) < 60_000
    shown = md.count("\n#### `prod/plugins/tenant-")
    assert 0 < shown < 600
    assert f"**... and {600 - shown} more bundle(s): see the build artifact**" in md
    # the one widening is one summary line naming how many bundles it touches, before any detail
    assert "> - kafka/strimzi.io/cluster=platform-kafka,strimzi.io/kind=Kafka port 9094/TCP" not in md
    line = next(x for x in md.splitlines() if "port 9094/TCP" in x)
    assert line.startswith("> - new egress: kafka/") and ": 600 bundles (`prod/tenant-0000/quiz-generator`" in line
    assert line.endswith("and 597 more)")
    assert md.index("**Summary:** bundles 0 added, 600 changed, 0 removed") < md.index(line) < md.index("| env |")


def test_the_comment_limit_holds_at_any_size_and_none_means_whole(six_hundred_bundles):
    report = six_hundred_bundles
    for limit in (8_000, 20_000, 60_000):
        assert len(md_report.format_markdown(report, limit=limit)) <= limit
    whole = md_report.format_markdown(report, limit=None)
    assert len(whole) > 60_000
    assert whole.count("\n#### `prod/plugins/tenant-") == 600
    assert "see the build artifact**" not in whole


def test_the_full_report_is_written_whole_in_the_format_its_name_says(six_hundred_bundles, tmp_path):
    report = six_hundred_bundles
    md = md_report.write_full_report(report, tmp_path / "full-diff.md")
    assert md.read_text().count("\n#### `prod/plugins/tenant-") == 600
    data = json.loads(md_report.write_full_report(report, tmp_path / "full-diff.json").read_text())
    assert len(data["bundles"]) == 600
    text = md_report.write_full_report(report, tmp_path / "full-diff.txt").read_text()
    assert text.count("port: 9094") == 600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full-diff.json", "full-diff.md", "full-diff.txt"]


def version_bump() -> list[FileChange]:
    """A real bundle moved 1.2.0 -> 1.3.0: a new image, and the version label on every object."""
    files = []
    for path in sorted(GOLDEN.iterdir()):
        old = path.read_bytes()
        new = old.replace(b"app.kubernetes.io/version: 1.2.0", b"app.kubernetes.io/version: 1.3.0")
        if path.name == "bundle.json":
            new = new.replace(b'"pluginVersion": "1.2.0"', b'"pluginVersion": "1.3.0"')
        if path.name.startswith("deployment-"):
            new = new.replace(b"quiz-generator:1.2.0@sha256:e974", b"quiz-generator:1.3.0@sha256:f974")
        files.append(FileChange(f"prod/plugins/{GOLDEN_TENANT}/quiz-generator/{path.name}", old, new))
    return files


def test_a_version_bump_collapses_label_only_churn_into_one_line():
    report = diff.compare(version_bump(), branch="main", base="f" * 40)
    (b,) = report.bundles
    churn = [o for o in b.objects if o.label_only]
    assert len(churn) == 25 and all(o.label_only == ["app.kubernetes.io/version: 1.2.0 -> 1.3.0"] for o in churn)
    md = md_report.format_markdown(report)
    assert md.count("only labels changed") == 1
    assert ("- only labels changed on 25 object(s) (app.kubernetes.io/version: 1.2.0 -&gt; 1.3.0): "
            "`ConfigMap/plugin-budget`, ") in md
    assert md.count("```diff") == 1  # the Deployment alone: its image changed too
    assert "- changed `Deployment/quiz-generator`" in md
    assert "new image: registry.adapstory.io/acme/quiz-generator:1.3.0@sha256:f974" in md


def test_an_object_whose_labels_and_spec_both_change_is_not_label_churn():
    old = quota("1")
    new = quota("2")
    new["metadata"]["labels"] = {"app.kubernetes.io/version": "1.3.0"}
    report = diff.compare(changed(old, new), branch="main", base="f" * 40)
    assert report.bundles[0].objects[0].label_only == []
    assert "only labels changed" not in md_report.format_markdown(report)


def test_added_objects_are_shown_as_their_yaml_folded():
    files = [FileChange(f"{B}/bundle.json", meta("1.0.0"), meta("1.0.0").replace(b"}", b', "x": 1}')),
             FileChange(f"{B}/poddisruptionbudget-quiz.yaml", None, dump(obj("PodDisruptionBudget", "quiz",
                                                                                spec={"maxUnavailable": 1})))]
    md = md_report.format_markdown(diff.compare(files, branch="main", base="f" * 40))
    block = md[md.index("- added `PodDisruptionBudget/quiz`"):]
    assert block.split("\n", 3)[2].startswith("<details><summary>") and "lines of YAML</summary>" in block
    assert "```yaml\napiVersion: v1\nkind: PodDisruptionBudget\n" in block
    assert "  maxUnavailable: 1\n```\n\n</details>" in block


@pytest.mark.parametrize("before, after, says", [
    pytest.param(15, 30, "raised DB connectionLimit: 15 -> 30", id="raised"),
    pytest.param(15, -1, "raised DB connectionLimit: 15 -> unlimited", id="to-unlimited"),
    pytest.param(30, 15, None, id="lowered"),
    pytest.param(-1, 15, None, id="from-unlimited"),
])
def test_a_raised_db_connection_limit_is_called_out(before, after, says):
    old = golden("role-quiz-generator.yaml")
    assert b"connectionLimit: 15\n" in old
    files = [FileChange(f"prod/plugins/{GOLDEN_TENANT}/quiz-generator/role-quiz-generator.yaml",
                        old.replace(b"connectionLimit: 15", f"connectionLimit: {before}".encode()),
                        old.replace(b"connectionLimit: 15", f"connectionLimit: {after}".encode()))]
    report = diff.compare(files, branch="main", base="f" * 40)
    assert [w.split(": ", 1)[1] for w in report.widening] == ([says] if says else [])
    md = md_report.format_markdown(report)
    assert ("Raised limits" in md) == bool(says)
    if says:
        assert md.index(says.replace(">", "&gt;")) < md.index("| env |")


def test_a_bundle_json_only_change_says_what_changed_in_it():
    old = golden("bundle.json")
    data = json.loads(old)
    data["inputDigest"] = "sha256:" + "2" * 64
    data["signature"]["payloadDigest"] = "sha256:" + "3" * 64
    files = [FileChange(f"prod/plugins/{GOLDEN_TENANT}/quiz-generator/bundle.json", old,
                        json.dumps(data, indent=2).encode())]
    report = diff.compare(files, branch="main", base="f" * 40)
    assert report.bundles[0].meta == ["inputDigest", "signature.payloadDigest"]
    md = md_report.format_markdown(report)
    assert "| changed (bundle.json only: inputDigest, signature.payloadDigest) | - | - | - |" in md
    assert "| 0 | 0 | 0 |" not in md
    text = diff.format_text(report)
    assert "quiz-generator: changed (bundle.json only: inputDigest, signature.payloadDigest)\n" in text
    assert "(+0 ~0 -0 objects)" not in text
