#!/usr/bin/env bash
# Installs the third-party tools the tests run for real, on Debian 12 (here) and Ubuntu 24.04 (GitHub's
# ubuntu-24.04 runners):
#   docker-registry (CNCF distribution), umoci, skopeo  -- the distribution's packages, via apt-get
#   ShellCheck                                          -- the distribution's package (the workflow test)
#   postgresql                                          -- the distribution's package: the server binaries
#                                                          only; no service is started (policy-rc.d)
#   cosign                                              -- the distribution's package where it has one;
#                                                          else Debian 13 (trixie)'s, unpacked into .tools/bin
# Debian 12 and Ubuntu 24.04 have no cosign package; trixie's statically linked binary runs on both.
#   Debian: fetched with `apt-get download` through a throwaway apt configuration whose source list is
#           built at run time from the Debian mirror URI this machine already uses (deb822
#           /etc/apt/sources.list.d/debian.sources, or /etc/apt/sources.list), so the signed index vouches for it.
#   Ubuntu: its mirrors hold no Debian package: the one .deb is downloaded from the explicit URL list
#           below and checked against the sha256 that trixie's signed index records for it.
# Idempotent: a tool already present is left alone. Must run as root for apt-get install.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_bin="$repo/.tools/bin"
mkdir -p "$tools_bin"

say() { printf 'install-tools: %s\n' "$*"; }

# trixie's cosign .deb (Version, Filename and SHA256 of its record in trixie's signed Packages index)
COSIGN_DEB_VERSION="2.5.0-2+b5"
COSIGN_DEB_SHA256="3b6eadd27f3c4c00bfa7eab5c2397a6a15a763630c7a1d40d06ff60d24799eef"
COSIGN_DEB_URLS=(
  "https://deb.debian.org/debian/pool/main/c/cosign/cosign_2.5.0-2+b5_amd64.deb"
  "https://snapshot.debian.org/archive/debian/20261127T000000Z/pool/main/c/cosign/cosign_2.5.0-2+b5_amd64.deb"
)

# INSTALL_TOOLS_DISTRO overrides the detection (to try the Ubuntu path on Debian)
# shellcheck source=/dev/null
distro="${INSTALL_TOOLS_DISTRO:-$(. /etc/os-release 2>/dev/null && printf '%s' "${ID:-unknown}")}"
case "$distro" in
  debian|ubuntu) ;;
  *) say "warning: untested distribution '$distro'; treating it as Debian" >&2; distro=debian ;;
esac

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    say "error: installing $1 needs root (apt-get); run: sudo $0" >&2
    exit 1
  fi
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
}

# While packages install, policy-rc.d says "do not start services" (Debian policy, honoured by
# invoke-rc.d and deb-systemd-invoke): the tests start their own registry and PostgreSQL servers.
policy_rc=/usr/sbin/policy-rc.d
own_policy_rc=0
no_services() {
  if [ "$own_policy_rc" -eq 0 ] && [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
    chmod 0755 "$policy_rc"
    own_policy_rc=1
  fi
}
cleanup() {
  if [ "$own_policy_rc" -eq 1 ]; then rm -f "$policy_rc"; fi
  if [ -n "${work:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

apt_get_install() {  # apt_get_install <package>
  need_root "$1"
  apt_update_once
  no_services
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}

apt_install() {  # apt_install <binary> <package>
  if command -v "$1" >/dev/null 2>&1; then
    say "$2 already installed ($(command -v "$1"))"
    return
  fi
  apt_get_install "$2"
  say "installed $2 ($(command -v "$1"))"
}

has_candidate() {  # has_candidate <package>: the configured archives offer it
  apt_update_once
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {found = ($2 != "(none)")} END {exit !found}'
}

postgres_bin() {  # the newest installed PostgreSQL server binary, if any
  find /usr/lib/postgresql -maxdepth 3 -path '*/bin/postgres' -type f 2>/dev/null | sort -V | tail -1
}

apt_install docker-registry docker-registry
apt_install umoci umoci
apt_install skopeo skopeo
apt_install shellcheck shellcheck

if [ -n "$(postgres_bin)" ]; then
  say "postgresql already installed ($(postgres_bin))"
else
  apt_get_install postgresql
  say "installed postgresql ($(postgres_bin)); no service started"
fi

# The Debian package starts a system registry on :5000; the tests start their own, so stop it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
  systemctl disable docker-registry >/dev/null 2>&1 || true
  say "stopped the docker-registry system service (the tests start their own)"
fi

install_cosign_deb() {  # install_cosign_deb <file.deb>: unpack its binary into .tools/bin
  dpkg-deb -x "$1" "$work/root"
  install -m 0755 "$work/root/usr/bin/cosign" "$tools_bin/cosign"
  # the Debian build reports GitVersion "devel": keep the package version beside it
  dpkg-deb -f "$1" Version >"$tools_bin/cosign.version"
  say "installed cosign from $(basename "$1") into $tools_bin/cosign"
}

fetch_checked() {  # fetch_checked <out> <sha256> <url>...: the first URL whose bytes match
  local out="$1" want="$2" url got
  shift 2
  for url in "$@"; do
    say "fetching $url"
    if ! curl -fsSL --retry 3 --connect-timeout 20 -o "$out" "$url"; then
      say "warning: could not fetch $url" >&2
      continue
    fi
    got="$(sha256sum "$out" | awk '{print $1}')"
    if [ "$got" = "$want" ]; then
      return 0
    fi
    say "warning: $url has sha256 $got, not $want; discarded" >&2
    rm -f "$out"
  done
  return 1
}

if [ -x "$tools_bin/cosign" ]; then
  say "cosign already installed ($tools_bin/cosign)"
elif command -v cosign >/dev/null 2>&1; then
  say "cosign already installed ($(command -v cosign))"
elif [ "$distro" = ubuntu ] && has_candidate cosign; then
  apt_get_install cosign
  say "installed cosign ($(command -v cosign))"
elif [ "$distro" = ubuntu ]; then
  work="$(mktemp -d)"
  deb="$work/cosign_${COSIGN_DEB_VERSION}_amd64.deb"
  if [ "$(dpkg --print-architecture)" != amd64 ]; then
    say "error: no cosign package for $(dpkg --print-architecture) on this Ubuntu; install cosign and re-run" >&2
    exit 1
  fi
  if ! fetch_checked "$deb" "$COSIGN_DEB_SHA256" "${COSIGN_DEB_URLS[@]}"; then
    say "error: no URL served cosign_${COSIGN_DEB_VERSION}_amd64.deb with sha256 $COSIGN_DEB_SHA256" >&2
    exit 1
  fi
  install_cosign_deb "$deb"
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
  deb="$(find "$work" -maxdepth 1 -name 'cosign_*.deb' | head -1)"
  install_cosign_deb "$deb"
fi

export PATH="$tools_bin:$PATH"
say "versions:"
printf '  docker-registry: %s\n' "$(docker-registry --version 2>&1 | head -1)"
printf '  umoci: %s\n' "$(umoci --version 2>&1 | head -1)"
printf '  skopeo: %s\n' "$(skopeo --version 2>&1 | head -1)"
cosign_version="$(cat "$tools_bin/cosign.version" 2>/dev/null || cosign version 2>&1 | awk -F: '/GitVersion/ {gsub(/ /,"",$2); print $2}')"
printf '  cosign: %s (%s)\n' "$cosign_version" "$(command -v cosign)"
printf '  shellcheck: %s\n' "$(shellcheck --version 2>&1 | awk '/^version:/ {print $2}')"
printf '  postgresql: %s\n' "$("$(postgres_bin)" --version 2>&1 | head -1)"
