#!/usr/bin/env bash
# The whole GPU check for a borrowed GPU machine, in one device run: what the
# machine is, its WebGPU adapter, the GPU tests on it, bench:gpu, and
# bench:channels' curve on all its cores (the machine has no Deno and no
# network: scripts/device/prepare.sh readies what travels, and prints the call:
#   run(carry=[".deno", ".gl", ".device"], timeout_s=570,
#       command="bash scripts/device/gpu_check.sh")
# Everything it writes goes to $OUT (7 files; the device tool brings them
# back): system.txt, gpu-tests.txt, bench-gpu.txt, bench-gpu.json,
# bench-channels.txt, bench-channels.json, log.txt. Each step has its own time
# limit, 510 s in all, so a hung one leaves the others' results.
#
# Sizes: GPU_MIB (bench:gpu's memory, default 1024) and CHANNELS_MEM
# (bench:channels' --mem, default 1GiB); smaller ones make a dry run on a
# machine without a GPU (Mesa's llvmpipe) quick.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${OUT:-/tmp/hakobu-device-out}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
gpu_mib=${GPU_MIB:-1024}
channels_mem=${CHANNELS_MEM:-1GiB}
say() { echo "== $(date -u +%H:%M:%S) $*"; }

say "deno"
if [ -s .deno/deno.xz ]; then
  xz -dc .deno/deno.xz > /tmp/deno 2>/dev/null ||
    python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.deno/deno.xz'),open('/tmp/deno','wb'))"
  chmod +x /tmp/deno
  deno=/tmp/deno
else
  deno=$(command -v deno || ls node_modules/.deno/deno@*/node_modules/deno/deno 2>/dev/null | head -1)
fi
[ -n "$deno" ] && "$deno" --version || { echo "no deno: run scripts/device/prepare.sh and carry .deno"; exit 1; }

say "libraries"
# The Vulkan loader (carried .debs, unpacked to / as the device tool says).
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# liblz4, libzstd, libxxhash and the zstd tool: under /tmp, never over /.
need=""
for lib in liblz4.so.1 libzstd.so.1 libxxhash.so.0; do
  ldconfig -p | grep -q "$lib" || need=1
done
command -v zstd >/dev/null || need=1
if [ -n "$need" ]; then
  for f in .device/debs/*.deb; do dpkg -x "$f" /tmp/hakobu-libs; done
  libs=/tmp/hakobu-libs/usr/lib/x86_64-linux-gnu
  export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PATH=/tmp/hakobu-libs/usr/bin:$PATH
  export HAKOBU_LIBLZ4=$libs/liblz4.so.1 HAKOBU_LIBZSTD=$libs/libzstd.so.1 HAKOBU_LIBXXHASH=$libs/libxxhash.so.0
  echo "compression libraries from .device/debs under /tmp/hakobu-libs"
fi
# The npm packages the tests and bench:channels import (node_modules does not travel).
[ -e node_modules ] || ln -s .device/node_modules node_modules
export XDG_RUNTIME_DIR=/tmp/xdg DENO_DIR=/tmp/deno-dir NO_COLOR=1
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
npm_flags=(--node-modules-dir=manual --cached-only --no-check)

say "the machine"
probe='const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
const i = a?.info;
console.log(i ? [i.vendor, i.architecture, i.device, i.description].join(" / ") : "no WebGPU adapter");'
{
  date -u
  uname -a
  echo "cores: $(nproc)"
  lscpu | grep -E 'Model name|^CPU\(s\)|Thread|Core|Socket'
  free -g | head -2
  nvidia-smi 2>&1 | head -20
  "$deno" --version
  echo "adapter: $("$deno" eval --no-config "$probe" 2>&1)"
} > "$out/system.txt" 2>&1
if ! grep -qi nvidia "$out/system.txt" ||
  ! grep -i '^adapter' "$out/system.txt" | grep -qi nvidia; then
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$icd" ]; then
    export VK_DRIVER_FILES=$icd
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    echo "adapter with VK_DRIVER_FILES=$icd: $("$deno" eval --no-config "$probe" 2>&1)" >> "$out/system.txt"
  fi
fi
cat "$out/system.txt"

say "GPU tests"
timeout 150 "$deno" test -A "${npm_flags[@]}" engine/gpu/ engine/receiver_gpu_test.ts \
  > "$out/gpu-tests.txt" 2>&1
echo "GPU tests exit $?"
tail -3 "$out/gpu-tests.txt"

say "bench:gpu, ${gpu_mib} MiB"
timeout 120 "$deno" run -A --no-config scripts/bench_gpu.ts --memory-mib "$gpu_mib" --batch 4096 \
  > "$out/bench-gpu.txt" 2>&1
echo "bench:gpu exit $?"
cp out/bench-gpu.json "$out/bench-gpu.json" 2>/dev/null
cat "$out/bench-gpu.txt"

say "bench:channels, ${channels_mem}, 1 to $(nproc) channels"
timeout 240 "$deno" run -A "${npm_flags[@]}" scripts/bench_channels.ts \
  --mem "$channels_mem" --runs 3 --out "$out/bench-channels.json" > "$out/bench-channels.txt" 2>&1
echo "bench:channels exit $?"
grep -v '^run \|^verified ' "$out/bench-channels.txt"
say "done"
