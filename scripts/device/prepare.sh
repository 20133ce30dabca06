#!/usr/bin/env bash
# Prepares, here (a machine with the npm registry and Debian's packages),
# everything scripts/device/gpu_check.sh needs on a borrowed GPU machine,
# which has no Deno and no network. All of it goes into git-ignored folders
# that the device tool carries:
#   .deno/deno.xz      the pinned deno binary (from node_modules), xz-compressed
#   .gl/*.deb          the Vulkan and GL loaders (unpacked to / there, if missing)
#   .device/node_modules   the npm packages the GPU tests and bench:channels
#                      import (fast-check, commander, cli-table3 and theirs),
#                      copied out of node_modules: ≈ 2.5 MB, not its 126 MB
#   .device/debs/*.deb liblz4, libzstd, libxxhash and the zstd tool (unpacked
#                      under /tmp/hakobu-libs there, if missing)
# Then it prints the device call to make. Run from the repository's root after
# `npx --yes deno@2.9.6 install`:
#   bash scripts/device/prepare.sh
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
# the binary npm's deno package ships (in Deno's own node_modules layout)
bin=$(ls node_modules/.deno/deno@*/node_modules/deno/deno \
  node_modules/.deno/@deno+linux-x64-glibc@*/node_modules/@deno/linux-x64-glibc/deno 2>/dev/null | head -1)
[ -n "$bin" ] && [ -x "$bin" ] || { echo "no deno binary in node_modules: run npx --yes deno@2.9.6 install first" >&2; exit 1; }
mkdir -p .deno .gl .device/debs /tmp/amd64/partial
[ -s .deno/deno.xz ] || xz -T2 -6 -c "$bin" > .deno/deno.xz

# Debian packages, downloaded (not installed) for amd64.
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1 || ! ls .device/debs/zstd_*.deb >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null
fi
# shellcheck disable=SC2086
ls .gl/libvulkan1_*.deb >/dev/null 2>&1 ||
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
# shellcheck disable=SC2086
ls .device/debs/zstd_*.deb >/dev/null 2>&1 ||
  (cd .device/debs && apt-get $o download liblz4-1 libzstd1 libxxhash0 zstd >/dev/null)

# The npm packages the device run imports, at the versions this checkout
# resolved (as `deno info` lists them: npm:/NAME@VERSION, a peer suffix after
# "_"), copied out of Deno's layout (node_modules/.deno/NAME@VERSION/
# node_modules/NAME) as plain folders for --node-modules-dir=manual.
deno=$bin
rm -rf .device/node_modules
mkdir -p .device/node_modules
for entry in scripts/bench_channels.ts engine/codecs/_codec_testing.ts; do
  "$deno" info "$entry" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' |
    grep -oE 'npm:/(@[a-z0-9._-]+/)?[a-z0-9._-]+@[0-9][^ _]*' | sed 's|^npm:/||'
done | sort -u | while read -r id; do
  name=${id%@*}
  src=node_modules/.deno/${id/\//+}/node_modules/$name
  [ -d "$src" ] || { echo "no $src: run npx --yes deno@2.9.6 install first" >&2; exit 1; }
  mkdir -p ".device/node_modules/$(dirname "$name")"
  cp -rL "$src" ".device/node_modules/$name"
done
du -sh .deno .gl .device
cat <<'CALL'
Device call (one run, about 8 minutes; then give_back):
  run(carry=[".deno", ".gl", ".device"], timeout_s=570,
      command="bash scripts/device/gpu_check.sh")
What it wrote comes back from $OUT: system.txt, gpu-tests.txt, bench-gpu.txt,
bench-gpu.json, bench-channels.txt, bench-channels.json, log.txt.
CALL
