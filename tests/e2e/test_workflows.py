"""The GitHub workflows cannot run here; keep them honest. Every workflow (the renderer's own and
the environments repo's caller example) parses, and follows the rules: actions pinned by commit
SHA, least-privilege ``permissions:``, no ``curl | tar``, every download sha256-checked, the PR
comment never gating the gates, one merge commit at a time with ``--source-commit``, reusable
workflows callable, every ``$(...)`` quoted and every run script clean under the real ShellCheck;
every ``render`` command they run exists in the CLI with the flags they pass."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from renderer.cli.parser import parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
EXAMPLE = ROOT / "examples" / "environments-repo" / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml")) + sorted(EXAMPLE.glob("*.yml"))
REUSABLE = {"plugins-pr.yml", "plugins-commit.yml", "plugins-shards.yml"}
SHA_PIN = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s@#]+)@(?P<pin>\S+)(?P<rest>.*)$")
# Flags another engineer is adding right now (``--shard`` and ``--from-shards`` of issue 12, the
# diff's full-report file of issue 10). A line may use one ONLY while the parser lacks it: once it
# exists, the real parser checks it. Value: how many values follow the flag ("+": one or more).
KNOWN_NEW = {("build", "--shard"): 1, ("commit", "--from-shards"): "+", ("diff", "--output"): 1,
             ("mark-good", "--from-argocd"): 0}
SAMPLE_VARS = {"SHARD": "1", "SHARDS": "4", "GITHUB_SHA": "0" * 40, "ENV_DIR": "environments/.",
               "GITOPS_URL": "https://example.invalid/gitops.git", "KUBERNETES_VERSION": "1.33"}
SAMPLE_ARRAYS = {"dirs": ["shards/shard-1", "shards/shard-2"], "branch": [], "files": ["a.yaml"]}


def _load(path: Path) -> dict:
    doc = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    assert isinstance(doc, dict) and isinstance(doc.get("jobs"), dict), f"{path.name}: no jobs"
    return doc


def _on(doc: dict) -> dict:
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as True
    return on if isinstance(on, dict) else {str(on): None}


def _steps(doc: dict):
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps") or []:
            yield job_id, job, step


def _scripts():
    for path in FILES:
        for job_id, _, step in _steps(_load(path)):
            if "run" in step:
                yield path.name, job_id, str(step["run"])


def _lines():
    for name, _, script in _scripts():
        for line in script.replace("\\\n", " ").splitlines():
            yield name, line.strip()


SCRIPTS = [pytest.param(script, id=f"{name}:{job}:{script.strip().splitlines()[0][:40]}")
           for name, job, script in _scripts()]
RENDER_LINES = [pytest.param(line, id=f"{name}:{line[:50]}") for name, line in _lines() if line.startswith("render ")]
WORKFLOW_FILES = [pytest.param(path, id=f"{path.parent.parent.parent.name}/{path.name}") for path in FILES]


# ------------------------------------------------------------------------------------ rule checks (pure)


def unpinned(text: str) -> list[str]:
    """`uses:` lines not pinned to a full commit SHA with its tag in a comment (local ./ actions aside)."""
    bad = []
    for line in text.splitlines():
        m = SHA_PIN.match(line)
        if not m or m["ref"].startswith("./"):
            continue
        if not re.fullmatch(r"[0-9a-f]{40}", m["pin"]) or not re.match(r"\s+#\s*\S", m["rest"]):
            bad.append(line.strip())
    return bad


def piped_downloads(script: str) -> list[str]:
    """Lines that pipe a download straight into tar or a shell."""
    return [line.strip() for line in script.replace("\\\n", " ").splitlines()
            if re.search(r"\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(tar|sh|bash|python3?)\b", line)]


def unchecked_downloads(script: str) -> list[str]:
    """Files downloaded with curl/wget that no later `sha256sum --check` line names."""
    lines = script.replace("\\\n", " ").splitlines()
    bad = []
    for i, line in enumerate(lines):
        if not re.search(r"\b(curl|wget)\b", line):
            continue
        m = re.search(r"(?:\s-o|\s-O|--output(?:-document)?)[\s=]+(\"[^\"]+\"|\S+)", line)
        out = m.group(1).strip('"') if m else None
        checked = out and any("sha256sum" in later and ("-c" in later or "--check" in later) and out in later
                              for later in lines[i + 1:])
        if not checked:
            bad.append(line.strip())
    return bad


def unquoted_substitutions(script: str) -> list[int]:
    """Offsets of `$(` outside double quotes (word splitting and globbing: ShellCheck's SC2046);
    arithmetic `$((` aside."""
    stack, bad, i = ["top"], [], 0
    while i < len(script):
        c, ctx = script[i], stack[-1]
        if ctx == "sq":
            if c == "'":
                stack.pop()
        elif c == "\\":
            i += 1
        elif ctx == "dq":
            if c == '"':
                stack.pop()
            elif script.startswith("$((", i):
                stack.append("paren")
                i += 2
            elif script.startswith("$(", i):
                stack.append("paren")
                i += 1
        else:  # top level or inside $( ... )
            if c == "#" and (i == 0 or script[i - 1] in " \t\n"):
                while i < len(script) and script[i] != "\n":
                    i += 1
                continue
            if c == "'":
                stack.append("sq")
            elif c == '"':
                stack.append("dq")
            elif script.startswith("$((", i):
                stack.append("paren")
                i += 2
            elif script.startswith("$(", i):
                bad.append(i)
                stack.append("paren")
                i += 1
            elif c == "(" and ctx == "paren":
                stack.append("paren")
            elif c == ")" and ctx == "paren":
                stack.pop()
        i += 1
    return bad


@pytest.mark.parametrize("check, text, flagged", [
    pytest.param(unpinned, "      - uses: actions/checkout@v4\n", True, id="uses-by-tag"),
    pytest.param(unpinned, "      - uses: actions/checkout@" + "a" * 40 + "\n", True, id="sha-without-tag-comment"),
    pytest.param(unpinned, "      - uses: actions/checkout@" + "a" * 40 + " # v4.2.2\n", False, id="sha-with-tag"),
    pytest.param(unpinned, "    uses: org/repo/.github/workflows/x.yml@main\n", True, id="reusable-by-branch"),
    pytest.param(unpinned, "      - uses: ./local-action\n", False, id="local-action"),
    pytest.param(piped_downloads, "curl -sSL https://x/c.tar.gz | tar xz conftest\n", True, id="curl-pipe-tar"),
    pytest.param(piped_downloads, "wget -qO- https://x/install | sudo sh\n", True, id="wget-pipe-sh"),
    pytest.param(piped_downloads, "curl -fsSL -o c.tar.gz https://x/c.tar.gz\n", False, id="curl-to-file"),
    pytest.param(unchecked_downloads, "curl -fsSL -o c.tar.gz https://x\ntar xzf c.tar.gz\n", True, id="unchecked"),
    pytest.param(unchecked_downloads, "curl -fsSL -o c.tar.gz https://x\necho \"$S  c.tar.gz\" | sha256sum --check -\n",
                 False, id="checked"),
    pytest.param(unchecked_downloads, "echo \"$S  c.tar.gz\" | sha256sum -c -\ncurl -o c.tar.gz https://x\n", True,
                 id="checked-before-download"),
    pytest.param(unquoted_substitutions, "conftest test $(find rendered -name '*.yaml')\n", True, id="unquoted"),
    pytest.param(unquoted_substitutions, "x=\"$(basename $(pwd))\"\n", True, id="unquoted-inside-quoted"),
    pytest.param(unquoted_substitutions, "echo \"n=$(printf '%s' \"$(id -u)\")\" # $(not code)\n", False,
                 id="quoted-nested"),
    pytest.param(unquoted_substitutions, "echo '$(literal)' \"$((1 + 2))\"\n", False, id="literal-and-arithmetic"),
])
def test_each_rule_flags_what_it_forbids_and_passes_what_it_allows(check, text, flagged):
    assert bool(check(text)) is flagged


# ------------------------------------------------------------------------------------ the workflows


def test_there_are_the_reusable_workflows_the_test_workflow_and_a_caller_example():
    names = {p.name for p in WORKFLOWS.glob("*.yml")}
    assert names == REUSABLE | {"test.yml"}  # environments-pr.yml ran on the renderer's own PRs: gone
    assert [p.name for p in EXAMPLE.glob("*.yml")] == ["plugins.yml"]


@pytest.mark.parametrize("path", WORKFLOW_FILES)
def test_every_action_is_pinned_by_a_full_commit_sha_with_its_tag(path):
    text = path.read_text()
    assert "uses:" in text
    assert unpinned(text) == []


@pytest.mark.parametrize("path", WORKFLOW_FILES)
def test_every_workflow_grants_contents_read_and_only_the_comment_job_writes_pull_requests(path):
    doc = _load(path)
    assert doc.get("permissions") == {"contents": "read"}, f"{path.name}: workflow-level permissions"
    for job_id, job in doc["jobs"].items():
        perms = job.get("permissions") or {}
        writes = {k for k, v in perms.items() if v == "write"}
        if job_id == "comment" or "uses" in job and "plugins-pr.yml@" in job["uses"]:
            assert writes <= {"pull-requests"}, f"{path.name}: {job_id} writes {writes}"
        else:
            assert not writes, f"{path.name}: {job_id} writes {writes}"


@pytest.mark.parametrize("path", [p for p in WORKFLOW_FILES if p.values[0].name in REUSABLE])
def test_reusable_workflows_are_called_with_workflow_call_only(path):
    on = _on(_load(path))
    assert list(on) == ["workflow_call"]
    assert "renderer-ref" in (on["workflow_call"].get("inputs") or {})


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_run_script_pipes_a_download_or_leaves_one_unchecked_or_a_substitution_unquoted(script):
    assert piped_downloads(script) == []
    assert unchecked_downloads(script) == []
    assert [script[i:i + 30] for i in unquoted_substitutions(script)] == []


def test_kubeconform_and_conftest_are_pinned_and_their_archives_sha256_checked():
    doc = _load(WORKFLOWS / "plugins-pr.yml")
    env = doc["env"]
    assert env["KUBECONFORM_VERSION"] == "0.7.0" and re.fullmatch(r"[0-9a-f]{64}", env["KUBECONFORM_SHA256"])
    assert env["CONFTEST_VERSION"] == "0.56.0" and re.fullmatch(r"[0-9a-f]{64}", env["CONFTEST_SHA256"])
    script = "\n".join(str(s.get("run", "")) for _, _, s in _steps(doc))
    assert 'echo "${KUBECONFORM_SHA256}  kubeconform.tar.gz" | sha256sum --check --strict -' in script
    assert 'echo "${CONFTEST_SHA256}  conftest.tar.gz" | sha256sum --check --strict -' in script
    assert "go install" not in script


def test_the_pr_comment_never_gates_build_and_validate():
    jobs = _load(WORKFLOWS / "plugins-pr.yml")["jobs"]
    gates = [j for j, job in jobs.items()
             if any(str(s.get("run", "")).startswith(("render build", "render validate")) for s in job["steps"])]
    assert gates == ["gates"]
    assert "needs" not in jobs["gates"] and "if" not in jobs["gates"]  # fork PRs (no secrets) run the gates too
    assert not any("secrets." in str(s.get("with", "")) for s in jobs["gates"]["steps"])
    comment = jobs["comment"]
    assert comment["continue-on-error"] is True and comment["needs"] == "diff"
    assert "head.repo.full_name == github.repository" in comment["if"]  # skipped without a write token
    assert "head.repo.full_name == github.repository" in jobs["diff"]["if"]
    assert not any(job_id in str(job.get("needs", "")) for job_id, job in jobs.items() if job_id != "comment")
    assert not any("uses" in s and "sticky" in s["uses"] for s in comment["steps"])  # no third-party writer
    assert any("gh pr comment" in str(s.get("run", "")) for s in comment["steps"])


@pytest.mark.parametrize("name, job", [pytest.param("plugins-commit.yml", "commit", id="merge"),
                                       pytest.param("plugins-shards.yml", "commit", id="shards")])
def test_a_merge_commits_one_run_at_a_time_with_its_source_commit(name, job):
    spec = _load(WORKFLOWS / name)["jobs"][job]
    assert spec["concurrency"]["cancel-in-progress"] is False
    assert "inputs.gitops-url" in spec["concurrency"]["group"]
    lines = [line for n, line in _lines() if n == name and line.startswith("render commit")]
    assert len(lines) == 1 and "--push" in lines[0] and '--source-commit "$GITHUB_SHA"' in lines[0]


def test_the_shard_workflow_builds_a_matrix_and_commits_the_shards_once():
    jobs = _load(WORKFLOWS / "plugins-shards.yml")["jobs"]
    assert jobs["build"]["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    lines = [line for n, line in _lines() if n == "plugins-shards.yml" and line.startswith("render ")]
    assert lines[0] == 'render build "$ENV_DIR" --out "shard-$SHARD" --shard "$SHARD/$SHARDS" --offline'
    assert '--from-shards "${dirs[@]}" --push' in lines[1]
    upload = next(s for s in jobs["build"]["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["include-hidden-files"] is True  # the .render-output marker
    assert jobs["commit"]["needs"] == "build"


def test_the_workflows_run_render_kubeconform_and_conftest():
    lines = [line for _, line in _lines()]
    assert any(line.startswith("render diff") and "--format markdown" in line for line in lines)
    assert any(line.startswith("render build") for line in lines)
    assert any("kubeconform -strict" in line and "RENDER_SCHEMA_LOCATION" in line for line in lines)
    assert any("conftest test --no-color --policy renderer/policies --combine" in line for line in lines)
    assert any("conftest verify --policy renderer/policies" in line for line in lines)


def test_the_test_workflow_installs_its_tools_on_ubuntu_24_04_and_runs_make_test():
    job = _load(WORKFLOWS / "test.yml")["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-24.04"
    runs = [s.get("run") for s in job["steps"] if "run" in s]
    assert runs == ["sudo bash scripts/install-tools.sh", "make test"]


def test_the_caller_example_pins_one_renderer_commit_for_workflows_and_install():
    doc = _load(EXAMPLE / "plugins.yml")
    assert set(_on(doc)) == {"pull_request", "push"}
    pins = {job["uses"].rsplit("@", 1)[1] for job in doc["jobs"].values()}
    refs = {job["with"]["renderer-ref"] for job in doc["jobs"].values()}
    assert len(pins) == 1 and pins == refs


# ------------------------------------------------------------------------------------ real tools


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_run_script_is_clean_under_shellcheck(script, tmp_path):
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: run scripts/install-tools.sh (make test does)"
    body = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", script)  # a GitHub expression is text to the shell
    path = tmp_path / "run.sh"
    path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)  # GitHub's `bash -e {0}` shell
    run = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_the_tool_installer_is_clean_under_shellcheck_and_pins_the_cosign_deb_it_may_download():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: run scripts/install-tools.sh (make test does)"
    script = ROOT / "scripts" / "install-tools.sh"
    run = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    text = script.read_text()
    assert re.search(r'^COSIGN_DEB_SHA256="[0-9a-f]{64}"$', text, re.M)
    assert 'fetch_checked "$deb" "$COSIGN_DEB_SHA256" "${COSIGN_DEB_URLS[@]}"' in text
    assert piped_downloads(text) == [] and unquoted_substitutions(text) == []


def test_shellcheck_reports_the_unquoted_find_the_old_workflow_had(tmp_path):
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: run scripts/install-tools.sh (make test does)"
    path = tmp_path / "old.sh"
    path.write_text("#!/usr/bin/env bash\n./conftest test --combine $(find rendered -name '*.yaml')\n")
    run = subprocess.run([shellcheck, "--shell=bash", str(path)], capture_output=True, text=True)
    assert "SC2046" in run.stdout


# ------------------------------------------------------------------------------------ the CLI


def _subparser(command: str):
    action = next(a for a in parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices[command]


def _argv(line: str) -> list[str]:
    """The line's words with sample values for its variables (arrays expand to their sample words)."""
    out = []
    for word in shlex.split(line.split(" > ")[0]):
        arr = re.fullmatch(r"\$\{(\w+)\[@\]\}", word)
        if arr:
            out += SAMPLE_ARRAYS[arr[1]]
            continue
        out.append(re.sub(r"\$\{?(\w+)\}?", lambda m: SAMPLE_VARS.get(m[1], m[1].lower()), word))
    return out[1:]


def _strip_known_new(argv: list[str]) -> tuple[list[str], list[str]]:
    """Removes the known-new flags the parser does not have yet (with their values)."""
    known = _subparser(argv[0])._option_string_actions
    out, stripped, i = [], [], 0
    while i < len(argv):
        arity = KNOWN_NEW.get((argv[0], argv[i]))
        if arity is None or argv[i] in known:
            out.append(argv[i])
            i += 1
            continue
        stripped.append(argv[i])
        i += 1
        if arity == "+":
            while i < len(argv) and not argv[i].startswith("--"):
                i += 1
        else:
            i += arity
    return out, stripped


@pytest.mark.parametrize("line", RENDER_LINES)
def test_every_render_command_in_a_workflow_parses_with_the_cli(line):
    argv, stripped = _strip_known_new(_argv(line))
    args = parser().parse_args(argv)  # a usage error raises SystemExit(2) and fails the test
    assert args.command == argv[0]
    for flag in stripped:  # accepted only while the parser lacks it
        assert flag not in _subparser(argv[0])._option_string_actions
