"""Real git servers and signed environments for the GitOps tests (``renderer.gitops``).

Where it sits: test support for the last stage of the flow (... -> write -> **gitops**).
Import its fixtures by name from ``tests.support.git`` (the tests
folder is on ``sys.path`` under pytest's default rootdir-based import mode); the test modules
also import the helpers by name, which works without registration.

What it provides:

* ``GitDaemon``: the real ``git daemon --enable=receive-pack`` on 127.0.0.1 and a free port,
  serving bare repositories from a folder, so pushes go over the network (``git://``);
* ``signed_environments(dest)``: a copy of the project's example ``environments/`` whose
  publishers carry a key made for the test session and whose every catalog version carries a
  ``signature.json`` in cosign's offline form (simple-signing payload, ECDSA P-256 over its
  exact bytes) -- real signatures that the verify stage checks like any other;
* ``add_catalog_version`` / ``set_install``: edit that copy the way a platform engineer would
  (publish a version, upgrade an install), signing what they add;
* ``render_cli(...)``: run ``python -m renderer.cli`` (the real entry point) in a subprocess.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from contextlib import redirect_stderr, redirect_stdout
from typing import Optional

import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ENVIRONMENTS = REPO_ROOT / "environments"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(cwd: Path, *args: str, check: bool = True, env: Optional[dict] = None) -> str:
    """Run the real git in ``cwd`` under a neutral identity; return stdout."""
    full_env = {**os.environ, **_GIT_ENV, **(env or {})}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Person", "GIT_AUTHOR_EMAIL": "person@example.invalid",
    "GIT_COMMITTER_NAME": "Test Person", "GIT_COMMITTER_EMAIL": "person@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


# ------------------------------------------------------------------------------------ git daemon


@dataclass
class GitDaemon:
    """``git daemon`` serving ``root`` on 127.0.0.1:``port``, receive-pack enabled."""

    root: Path
    port: int
    proc: subprocess.Popen

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def create(self, name: str, *, default_branch: str = "main") -> Path:
        """A new empty bare repository served as ``url(name)``."""
        path = self.root / name
        git(self.root, "init", "-q", "--bare", f"--initial-branch={default_branch}", str(path))
        return path

    @classmethod
    def start(cls, root: Path) -> "GitDaemon":
        root.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            port = free_port()
            proc = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--informative-errors",
                 f"--base-path={root}", "--listen=127.0.0.1", f"--port={port}", str(root)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        return cls(root, port, proc)
                except OSError:
                    time.sleep(0.05)
            proc.kill()
            proc.wait()
        pytest.fail("git daemon did not start on 127.0.0.1 (is git's daemon installed? `apt-get install git`)",
                    pytrace=False)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def git_daemon(tmp_path_factory) -> GitDaemon:
    daemon = GitDaemon.start(tmp_path_factory.mktemp("git-daemon"))
    yield daemon
    daemon.stop()


# ------------------------------------------------------------------------------------ signing


@dataclass(frozen=True)
class SigningKey:
    private: ec.EllipticCurvePrivateKey

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def signature_json(self, image: str) -> bytes:
        """What ``cosign download signature IMAGE`` prints for a key-signed image: one JSON line."""
        name, digest = image.rsplit("@", 1)
        repo = name
        last = name.rsplit("/", 1)[-1]
        if ":" in last:  # drop the tag: cosign names the repository without it
            repo = name[: len(name) - len(last)] + last.split(":", 1)[0]
        payload = json.dumps({
            "critical": {"identity": {"docker-reference": repo}, "image": {"docker-manifest-digest": digest},
                         "type": "cosign container image signature"},
            "optional": None,
        }, separators=(",", ":")).encode()
        sig = self.private.sign(payload, ec.ECDSA(hashes.SHA256()))
        entry = {"Base64Signature": base64.b64encode(sig).decode(), "Payload": base64.b64encode(payload).decode(),
                 "Cert": None, "Chain": None, "Bundle": None, "RFC3161Timestamp": None}
        return (json.dumps(entry) + "\n").encode()


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()))


def sign_catalog_version(version_dir: Path, key: SigningKey) -> None:
    plugin = yaml.safe_load((version_dir / "plugin.yaml").read_text())
    (version_dir / "signature.json").write_bytes(key.signature_json(plugin["spec"]["image"]))


def signed_environments(dest: Path, key: SigningKey) -> Path:
    """A copy of the example environments repo, re-keyed to ``key`` and fully signed."""
    shutil.copytree(EXAMPLE_ENVIRONMENTS, dest)
    for pub in sorted((dest / "publishers").glob("*.yaml")):
        doc = yaml.safe_load(pub.read_text())
        doc["spec"]["cosign"] = {"publicKey": key.public_pem}
        pub.write_text(yaml.safe_dump(doc, sort_keys=False))
    for version_dir in sorted((dest / "catalog").glob("*/*")):
        if (version_dir / "plugin.yaml").is_file():
            sign_catalog_version(version_dir, key)
    return dest


def add_catalog_version(env_dir: Path, plugin: str, from_version: str, version: str, key: SigningKey,
                        change=None) -> Path:
    """Publish ``plugin@version`` as a copy of ``from_version`` with a new image digest,
    ``change(spec)`` applied to its spec, and a signature."""
    src = env_dir / "catalog" / plugin / from_version
    dst = env_dir / "catalog" / plugin / version
    shutil.copytree(src, dst)
    (dst / "signature.json").unlink(missing_ok=True)
    doc = yaml.safe_load((dst / "plugin.yaml").read_text())
    doc["metadata"]["version"] = version
    name = doc["spec"]["image"].split("@", 1)[0].rsplit(":", 1)[0]
    doc["spec"]["image"] = f"{name}:{version}@sha256:{hashlib.sha256(f'{plugin}@{version}'.encode()).hexdigest()}"
    if change:
        change(doc["spec"])
    (dst / "plugin.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    sign_catalog_version(dst, key)
    return dst


def install_path(env_dir: Path, env: str, tenant: str, plugin: str) -> Path:
    return env_dir / env / "tenants" / tenant / "plugins" / f"{plugin}.yaml"


def set_install(env_dir: Path, env: str, tenant: str, plugin: str, version: str, overrides: Optional[dict] = None) -> None:
    doc = {"apiVersion": "plugins.adapstory.io/v1", "kind": "PluginInstall", "metadata": {"name": plugin},
           "spec": {"version": version, **({"overrides": overrides} if overrides else {})}}
    path = install_path(env_dir, env, tenant, plugin)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def remove_install(env_dir: Path, env: str, tenant: str, plugin: str) -> None:
    install_path(env_dir, env, tenant, plugin).unlink()


def edit_install(env_dir: Path, env: str, tenant: str, plugin: str, *, version: Optional[str] = None,
                 requests_per_second: Optional[int] = None) -> None:
    """Change an existing install the way a platform engineer would: a version, a budget override."""
    path = install_path(env_dir, env, tenant, plugin)
    doc = yaml.safe_load(path.read_text())
    if version is not None:
        doc["spec"]["version"] = version
    if requests_per_second is not None:
        overrides = doc["spec"].setdefault("overrides", {})
        overrides.setdefault("budgets", {})["requestsPerSecond"] = requests_per_second
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture
def env_dir(tmp_path, signing_key) -> Path:
    """A signed copy of the example environments repo, private to the test."""
    return signed_environments(tmp_path / "environments", signing_key)


# ------------------------------------------------------------------------------------ the CLI


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def cli_env(tmp: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "RENDER_"))}
    env.update({
        "RENDER_CACHE_DIR": str(tmp / "render-cache"),
        "HOME": str(tmp / "home"),  # no user git config leaks in
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONPATH": str(REPO_ROOT),
    })
    (tmp / "home").mkdir(exist_ok=True)
    env.update(extra)
    return env


# The commands under test. ``renderer.gitops_cli`` registers them on a ``render`` parser of its own;
# once ``renderer.cli`` registers them too, this may name "renderer.cli".
CLI_MODULE = "renderer.cli"


def render_argv(*args: str) -> list[str]:
    """The command line of ``render ARGS`` as a separate process."""
    return [PYTHON, "-m", CLI_MODULE, *args]


def render_process(tmp: Path, *args: str, env: Optional[dict] = None, timeout: float = 120) -> Run:
    """``render ARGS`` in its own process, as CI would run it."""
    proc = subprocess.run(render_argv(*args), capture_output=True, text=True, env=env or cli_env(tmp), cwd=tmp,
                          timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def render(tmp_path, monkeypatch):
    """``render ARGS`` in this process (the same entry point, without a Python start-up per call),
    with the environment CI gives it: schemas, a private cache, no user git configuration."""
    import importlib

    for key in list(os.environ):
        if key.startswith(("GIT_", "RENDER_")):
            monkeypatch.delenv(key)
    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(CLI_MODULE).main

    def run(*args: str, **env: str) -> Run:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = exc.code
        for key in env:
            monkeypatch.delenv(key)
        return Run(code, out.getvalue(), err.getvalue())

    return run
