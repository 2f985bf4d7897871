#!/usr/bin/env python3
"""Give the example environments real cosign signatures, so the demo verifies offline.

Where it sits: a maintainer's tool for ``environments/`` (the verify stage's offline input);
not part of the renderer. Uses the real tools (see ``scripts/install-tools.sh``).

For each ``environments/catalog/<plugin>/<version>/plugin.yaml`` whose ``signature.json`` is
missing or does not verify with its publisher's demo key (or all of them with ``--force``):

1. build a tiny deterministic OCI image with umoci (one file naming the plugin and version, so
   every version has its own digest);
2. push it with skopeo to a throwaway ``docker-registry`` on 127.0.0.1, under the repository
   path written in plugin.yaml;
3. sign it with cosign and the publisher's demo key, with ``--sign-container-identity`` set to
   the repository as written in plugin.yaml, so the payload names the real repository;
4. write ``cosign download signature`` output to ``signature.json`` beside plugin.yaml;
5. rewrite only the ``sha256:<hex>`` of the ``image:`` line of plugin.yaml to the pushed digest.

Demo keys: one per publisher, ``tests/keys/<publisher>.key`` (private, password in
``tests/keys/README.md``) and ``.pub``; a missing key pair is generated, and the publisher file's
``spec.cosign.publicKey`` block is rewritten when it does not hold the key's public half.

Usage: .venv/bin/python tests/tools/sign_examples.py [--env-dir environments] [--force]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO)]

import yaml  # noqa: E402

from tests.support import registry as rf  # noqa: E402
from renderer.core.errors import RenderError  # noqa: E402
from renderer.trust.registry import parse_image  # noqa: E402
from renderer.trust.signatures import trust_from_publisher_spec, verify_image  # noqa: E402

KEYS = REPO / "tests" / "keys"
FIXED_TIME = "2024-01-01T00:00:00Z"
PEM_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)-----BEGIN PUBLIC KEY-----\n(?:.*\n)*?(?P=indent)-----END PUBLIC KEY-----\n", re.M
)
IMAGE_LINE = re.compile(r"^(?P<head>\s*image:\s*\S+@)sha256:[0-9a-f]{64}(?P<tail>\s*(#.*)?)$", re.M)


def ensure_key(tools: rf.OciTools, publisher: str) -> str:
    """The publisher's demo public key PEM, generating the pair under tests/keys if missing."""
    key, pub = KEYS / f"{publisher}.key", KEYS / f"{publisher}.pub"
    if not (key.exists() and pub.exists()):
        KEYS.mkdir(parents=True, exist_ok=True)
        rf.run([tools.cosign, "generate-key-pair", "--output-key-prefix", publisher], env=tools.env, cwd=KEYS)
        print(f"generated demo key pair tests/keys/{publisher}.key/.pub")
    return pub.read_text()


def ensure_publisher_key(publisher_file: Path, pem: str) -> None:
    text = publisher_file.read_text()
    spec = yaml.safe_load(text)["spec"]
    current = (spec.get("cosign") or {}).get("publicKey", "")
    if current.strip() == pem.strip():
        return
    m = PEM_BLOCK.search(text)
    if not m:
        raise SystemExit(f"{publisher_file}: no PEM block under spec.cosign.publicKey to replace")
    block = "".join(f"{m['indent']}{line}\n" for line in pem.strip().splitlines())
    publisher_file.write_text(text[: m.start()] + block + text[m.end() :])
    print(f"wrote the demo public key into {publisher_file}")


def build_image(tools: rf.OciTools, work: Path, plugin: str, version: str) -> Path:
    layout = work / f"{plugin}-{version}"
    content = work / f"{plugin}-{version}.txt"
    content.write_text(f"demo image of plugin {plugin} {version}\n")
    import os

    os.utime(content, (1704067200, 1704067200))  # FIXED_TIME, so the layer is byte-identical
    env = tools.env
    rf.run([tools.umoci, "init", "--layout", str(layout)], env=env)
    rf.run([tools.umoci, "new", "--image", f"{layout}:{version}"], env=env)
    rf.run(
        [tools.umoci, "config", "--image", f"{layout}:{version}", "--created", FIXED_TIME,
         "--history.created", FIXED_TIME, "--config.cmd", "/plugin.txt"],
        env=env,
    )
    rf.run(
        [tools.umoci, "insert", "--image", f"{layout}:{version}", "--history.created", FIXED_TIME,
         "--history.created_by", f"sign_examples {plugin} {version}", str(content), "/plugin.txt"],
        env=env,
    )
    return layout


def verifies(plugin_yaml: Path, image: str, publisher_spec: dict) -> bool:
    sig = plugin_yaml.parent / "signature.json"
    if not sig.exists():
        return False
    try:
        verify_image(image, trust_from_publisher_spec(publisher_spec, "publisher"), sig, offline=True)
        return True
    except RenderError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--env-dir", type=Path, default=REPO / "environments")
    ap.add_argument("--force", action="store_true", help="re-sign even what already verifies")
    args = ap.parse_args(argv)
    env_dir: Path = args.env_dir.resolve()

    try:
        with tempfile.TemporaryDirectory(prefix="sign-examples-") as tmp:
            work = Path(tmp)
            tools = rf.OciTools(work)
            tools.env["COSIGN_PASSWORD"] = rf.COSIGN_PASSWORD
            registry = None
            signed = skipped = 0
            try:
                for plugin_yaml in sorted(env_dir.glob("catalog/*/*/plugin.yaml")):
                    doc = yaml.safe_load(plugin_yaml.read_text())
                    plugin, version = doc["metadata"]["name"], str(doc["metadata"]["version"])
                    publisher = doc["metadata"]["publisher"]
                    publisher_file = env_dir / "publishers" / f"{publisher}.yaml"
                    pem = ensure_key(tools, publisher)
                    ensure_publisher_key(publisher_file, pem)
                    publisher_spec = yaml.safe_load(publisher_file.read_text())["spec"]
                    image = doc["spec"]["image"]
                    rel = plugin_yaml.relative_to(env_dir)
                    if not args.force and verifies(plugin_yaml, image, publisher_spec):
                        print(f"{rel}: signature.json verifies; kept")
                        skipped += 1
                        continue
                    ref = parse_image(image)
                    if registry is None:
                        registry = rf.RegistryServer(work / "registry", work / "registry" / "storage").start()
                    layout = build_image(tools, work, plugin, version)
                    digest_file = work / f"{plugin}-{version}.digest"
                    rf.run(
                        [tools.skopeo, "copy", "-q", "--dest-tls-verify=false", "--digestfile", str(digest_file),
                         f"oci:{layout}:{version}", f"docker://{registry.host}/{ref.path}:{version}"],
                        env=tools.env,
                    )
                    digest = digest_file.read_text().strip()
                    local = f"{registry.host}/{ref.path}@{digest}"
                    key = rf.KeyPair(publisher, KEYS / f"{publisher}.key", pem)
                    tools.sign(local, key, identity=ref.repository)
                    (plugin_yaml.parent / "signature.json").write_bytes(tools.download_signature(local))
                    text = plugin_yaml.read_text()
                    new_text, n = IMAGE_LINE.subn(lambda m: f"{m['head']}{digest}{m['tail']}", text, count=1)
                    if n != 1:
                        raise SystemExit(f"{rel}: no `image: ...@sha256:<hex>` line to rewrite")
                    plugin_yaml.write_text(new_text)
                    new_image = yaml.safe_load(new_text)["spec"]["image"]
                    verify_image(
                        new_image, trust_from_publisher_spec(publisher_spec, str(publisher_file)),
                        plugin_yaml.parent / "signature.json", offline=True,
                    )
                    print(f"{rel}: signed {ref.repository}@{digest} with tests/keys/{publisher}.key")
                    signed += 1
            finally:
                if registry is not None:
                    registry.stop()
    except BaseException as exc:  # pytest.fail from rf.tool() is a BaseException
        if type(exc).__name__ == "Failed":
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise
    print(f"{signed} signed, {skipped} kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
