"""Generate an environments repo with N bundles for benchmarks: the example catalog and
publishers (with their real signatures), one environment `bench`, N/3 tenants x 3 plugins."""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSTALLS = [("quiz-generator", "1.3.0"), ("lesson-summarizer", "2.0.0"), ("grade-sync", "0.9.0")]


def tenant_id(i: int) -> str:
    h = hashlib.sha256(str(i).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def generate(dest: Path, bundles: int) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree(REPO / "environments" / "publishers", dest / "publishers")
    shutil.copytree(REPO / "environments" / "catalog", dest / "catalog")
    env = dest / "bench"
    env.mkdir()
    platform = (REPO / "environments" / "dev" / "platform.yaml").read_text().replace("name: dev", "name: bench")
    (env / "platform.yaml").write_text(platform)
    made, i = 0, 0
    while made < bundles:
        tid = tenant_id(i)
        tdir = env / "tenants" / tid
        (tdir / "plugins").mkdir(parents=True)
        (tdir / "tenant.yaml").write_text(
            "apiVersion: plugins.adapstory.io/v1\nkind: Tenant\nmetadata:\n"
            f"  name: {tid}\nspec:\n  tier: standard\n"
            '  ceilings: {cpu: "16", memory: 32Gi, storage: 100Gi, llmTokensPerDay: 10000000, requestsPerSecond: 1000}\n')
        for plugin, version in INSTALLS:
            if made == bundles:
                break
            (tdir / "plugins" / f"{plugin}.yaml").write_text(
                f"apiVersion: plugins.adapstory.io/v1\nkind: PluginInstall\nmetadata:\n  name: {plugin}\n"
                f"spec:\n  version: {version}\n")
            made += 1
        i += 1
    return dest


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("dest", type=Path)
    ap.add_argument("--bundles", type=int, default=10000)
    a = ap.parse_args()
    print(generate(a.dest, a.bundles))
