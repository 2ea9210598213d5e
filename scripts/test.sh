#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs (restic from Debian for the
# interop tests, npm packages incl. the native addons), builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v restic >/dev/null 2>&1 || need_apt+=(restic)
command -v getfattr >/dev/null 2>&1 || need_apt+=(attr)
# S3 tests run against a throw-away Ceph RGW, REST tests against `rclone serve restic`;
# GNU time is for the benchmarks, curl/openssl for the test servers' set-up (bucket, TLS certificate)
command -v radosgw >/dev/null 2>&1 || need_apt+=(radosgw)
command -v ceph-mon >/dev/null 2>&1 || need_apt+=(ceph-mon)
command -v ceph-osd >/dev/null 2>&1 || need_apt+=(ceph-osd)
command -v rclone >/dev/null 2>&1 || need_apt+=(rclone)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${need_apt[*]} from Debian"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "missing ${need_apt[*]}: install them (apt-get install ${need_apt[*]}) or run as root" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# npm ci runs our install script; make sure the addon really exists (the fallback is tested too).
[ -f native/build/Release/cairn_native.node ] || npm run install --silent

npm run build --silent
npm run build:tests --silent

mapfile -t files < <(find build -name '*.test.js' | sort)
echo "running ${#files[@]} test files"
node --test --test-concurrency=2 "${files[@]}"
