#!/usr/bin/env bash
# The main job on an embedded default: a local repository on disk. Installs, builds, then
# init → backup a sample directory → snapshots → restore → verify the restore byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RESTIC_REPOSITORY="$work/repo" RESTIC_PASSWORD="demo-password"
cairn() { node dist/cli.js "$@"; }

# a sample directory with the things backups get wrong: links, modes, odd names, sparse-ish data
src="$work/sample"
mkdir -p "$src/docs/nested" "$src/empty-dir"
printf 'hello cairn\n' > "$src/docs/hello.txt"
head -c 3000000 /dev/urandom > "$src/docs/random.bin"
seq 1 200000 > "$src/docs/nested/numbers.txt"
ln -s ../docs/hello.txt "$src/docs/nested/link-to-hello"
ln "$src/docs/hello.txt" "$src/hardlink.txt"
printf 'odd' > "$src/docs/name with spaces & <brackets>.txt"
chmod 0750 "$src/docs/nested"; chmod 0600 "$src/docs/random.bin"
touch -d '2020-02-29 12:34:56.123456789' "$src/docs/hello.txt"

cairn init
cairn backup "$src" --tag demo
cairn snapshots
cairn restore latest --target "$work/restore" --verify
diff -r --no-dereference "$src" "$work/restore$src" && echo "demo: restore is identical to the source"
