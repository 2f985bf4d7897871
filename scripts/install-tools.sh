#!/usr/bin/env bash
# Installs the third-party tools the signature tests run for real:
#   docker-registry (CNCF distribution), umoci, skopeo  -- Debian packages, via apt-get
#   cosign                                              -- from Debian 13 (trixie), unpacked into .tools/bin
# Debian 12 has no cosign package; trixie's statically linked binary runs on Debian 12. It is fetched with
# `apt-get download` through a throwaway apt configuration whose source list is built at run time
# from the Debian mirror URI this machine already uses (/etc/apt/sources.list.d/debian.sources).
# Idempotent: a tool already present is left alone. Must run as root for apt-get install.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_bin="$repo/.tools/bin"
mkdir -p "$tools_bin"

say() { printf 'install-tools: %s\n' "$*"; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    say "error: installing $1 needs root (apt-get); run: sudo $0" >&2
    exit 1
  fi
}

apt_updated=0
apt_install() {  # apt_install <binary> <package>
  if command -v "$1" >/dev/null 2>&1; then
    say "$2 already installed ($(command -v "$1"))"
    return
  fi
  need_root "$2"
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  say "installed $2 ($(command -v "$1"))"
}

apt_install docker-registry docker-registry
apt_install umoci umoci
apt_install skopeo skopeo

# PostgreSQL server binaries for the migration tests (tests/test_migrations_pg.py); Debian keeps
# initdb and pg_ctl under /usr/lib/postgresql/<major>/bin, off PATH.
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "postgresql already installed ($(ls -d /usr/lib/postgresql/*/bin | tail -1))"
else
  need_root postgresql
  [ "$apt_updated" -eq 1 ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  say "installed postgresql ($(ls -d /usr/lib/postgresql/*/bin | tail -1))"
fi
# The Debian package starts a system cluster on :5432; the tests start their own, so stop it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet postgresql 2>/dev/null; then
  systemctl stop postgresql || true
  systemctl disable postgresql >/dev/null 2>&1 || true
fi

# The Debian package starts a system registry on :5000; the tests start their own, so stop it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
  systemctl disable docker-registry >/dev/null 2>&1 || true
  say "stopped the docker-registry system service (the tests start their own)"
fi

if [ -x "$tools_bin/cosign" ]; then
  say "cosign already installed ($tools_bin/cosign)"
elif command -v cosign >/dev/null 2>&1; then
  say "cosign already installed ($(command -v cosign))"
else
  sources=/etc/apt/sources.list.d/debian.sources
  uri=""
  if [ -r "$sources" ]; then
    # first URIs: line of a stanza that is not the security archive
    uri="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$sources")"
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri="$(awk '/^deb / && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' /etc/apt/sources.list)"
  fi
  if [ -z "$uri" ]; then
    say "error: no Debian mirror URI found in $sources or /etc/apt/sources.list" >&2
    exit 1
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/prefs"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  cat >"$work/trixie.sources" <<SRC
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: $keyring
SRC
  apt_opts=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$work/parts"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$work/prefs"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o "Dir::State::status=/dev/null"
    -o "APT::Architecture=$(dpkg --print-architecture)"
    -o "APT::Sandbox::User=root"
  )
  cp "$work/trixie.sources" "$work/parts/trixie.sources"
  say "fetching the cosign package index for trixie from $uri"
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work" && apt-get "${apt_opts[@]}" download -qq cosign)
  deb="$(ls "$work"/cosign_*.deb)"
  dpkg-deb -x "$deb" "$work/root"
  install -m 0755 "$work/root/usr/bin/cosign" "$tools_bin/cosign"
  # the Debian build reports GitVersion "devel": keep the package version beside it
  dpkg-deb -f "$deb" Version >"$tools_bin/cosign.version"
  say "installed cosign from $(basename "$deb") into $tools_bin/cosign"
fi

export PATH="$tools_bin:$PATH"
say "versions:"
printf '  docker-registry: %s\n' "$(docker-registry --version 2>&1 | head -1)"
printf '  umoci: %s\n' "$(umoci --version 2>&1 | head -1)"
printf '  skopeo: %s\n' "$(skopeo --version 2>&1 | head -1)"
cosign_version="$(cat "$tools_bin/cosign.version" 2>/dev/null || cosign version 2>&1 | awk -F: '/GitVersion/ {gsub(/ /,"",$2); print $2}')"
printf '  cosign: %s (%s)\n' "$cosign_version" "$(command -v cosign)"
