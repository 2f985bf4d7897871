"""Registry credentials, scoped to one host (issue 9, class 5).

``registry.RegistryClient`` asks ``credentials_for(host)`` when a registry challenges it; the
answer applies to that host only (and to its token realm on the same host name): never a
credential given for another host, and never one a variable gives without naming its host.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

DOCKER_HUB = "docker.io"
HELPER_TIMEOUT = 10.0  # seconds for a docker-credential-<name> helper


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def _config_files(environ: Mapping[str, str]) -> list[Path]:
    files = []
    if environ.get("DOCKER_CONFIG"):
        files.append(Path(environ["DOCKER_CONFIG"]) / "config.json")
    home = environ.get("HOME")
    if home:
        files.append(Path(home) / ".docker" / "config.json")
    if environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(environ["REGISTRY_AUTH_FILE"]))
    if environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    return files


def _auth_key_host(key: str) -> str:
    """``https://host/v1/`` or ``host/some/repo`` -> ``host``."""
    if "://" in key:
        key = key.split("://", 1)[1]
    host = key.split("/", 1)[0].lower()
    return DOCKER_HUB if host in ("index.docker.io", "registry-1.docker.io") else host


def _from_helper(helper: str, host: str, timeout: float) -> Optional[Credentials]:
    try:
        out = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=host.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        data = json.loads(out.stdout)
        return Credentials(str(data["Username"]), str(data["Secret"]))
    except (ValueError, KeyError, TypeError):
        return None


def credentials_for(host: str, environ: Optional[Mapping[str, str]] = None) -> Optional[Credentials]:
    """Credentials for a registry host, or None (anonymous).

    ``RENDER_REGISTRY_USERNAME``/``RENDER_REGISTRY_PASSWORD`` win for the one host named by
    ``RENDER_REGISTRY_HOST`` (``host[:port]``, exactly); then the first docker/containers config
    file that knows the host (``auths.<host>.auth`` or ``username``/``password``, then
    ``credHelpers.<host>``, then ``credsStore``). A host alias of Docker Hub matches docker.io.
    Credentials never apply to a host they were not given for.
    """
    env = os.environ if environ is None else environ
    want = _auth_key_host(host)
    if (env.get("RENDER_REGISTRY_USERNAME") and env.get("RENDER_REGISTRY_PASSWORD") is not None
            and env.get("RENDER_REGISTRY_HOST") and _auth_key_host(env["RENDER_REGISTRY_HOST"].strip()) == want):
        return Credentials(env["RENDER_REGISTRY_USERNAME"], env.get("RENDER_REGISTRY_PASSWORD", ""))
    for path in _config_files(env):
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(config, dict):
            continue
        auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
        for key, entry in auths.items():
            if _auth_key_host(key) != want or not isinstance(entry, dict):
                continue
            if entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                    return Credentials(user, password)
                except (ValueError, UnicodeDecodeError):
                    continue
            if entry.get("username") and entry.get("password") is not None:
                return Credentials(str(entry["username"]), str(entry["password"]))
        helpers = config.get("credHelpers") if isinstance(config.get("credHelpers"), dict) else {}
        for key, helper in helpers.items():
            if _auth_key_host(key) == want and isinstance(helper, str):
                found = _from_helper(helper, host, HELPER_TIMEOUT)
                if found:
                    return found
        if isinstance(config.get("credsStore"), str):
            found = _from_helper(config["credsStore"], host, HELPER_TIMEOUT)
            if found:
                return found
    return None
