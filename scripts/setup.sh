#!/usr/bin/env bash
# Everything gridmap needs on a fresh Debian machine: PostgreSQL + PostGIS from Debian's
# packages when missing, a virtualenv with the Python packages, and the web assets from npm.
# With --browser it also installs what the tests drive: Debian's chromium (browser tests),
# fonts-noto-cjk (without a CJK font Chinese text is drawn as empty boxes) and gdal-bin
# (GDAL's OGC API client). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
[[ "${1:-}" == "--browser" ]] && want_browser=1

apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
      echo "gridmap setup: please install as root: apt-get install $*" >&2; exit 1; fi
  else SUDO=""; fi
  echo "gridmap setup: installing $* from Debian's packages"
  # wait for another apt (an unattended upgrade, a second set-up) rather than fail
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

# PostgreSQL server and PostGIS (the local cluster runs on these)
pgver=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)
if [[ -z "$pgver" || ! -x /usr/lib/postgresql/$pgver/bin/postgres ]]; then
  apt_install postgresql-15 postgresql-15-postgis-3
elif [[ ! -f /usr/share/postgresql/$pgver/extension/postgis.control ]]; then
  apt_install "postgresql-$pgver-postgis-3"
fi

if [[ $want_browser -eq 1 ]]; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v ogr2ogr >/dev/null || missing+=(gdal-bin)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
  if [[ ${#missing[@]} -gt 0 ]]; then apt_install "${missing[@]}"; fi
fi

# Python environment (pip >= 25.1 understands [dependency-groups])
stamp=.venv/.gridmap-installed
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -U "pip>=25.1"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e . --group dev
  touch "$stamp"
fi

# Web assets from the npm registry (web/package.json), served locally by gridmap
web=web
if [[ ! -d $web/node_modules/maplibre-gl || ! -d $web/node_modules/terra-draw || $web/package-lock.json -nt $web/node_modules ]]; then
  if ! command -v npm >/dev/null; then apt_install npm; fi
  npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
  touch "$web/node_modules"
fi
echo "gridmap setup: ready"
