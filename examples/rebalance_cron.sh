#!/bin/sh
# `hakobu rebalance` from the system's cron: one pass each time, never two at
# once (flock), with the move history kept for cooldowns and the inventory
# written back (atomically) for the next pass.
#
# crontab -e (every 10 minutes):
#
#   */10 * * * * /srv/hakobu/examples/rebalance_cron.sh >> /var/log/hakobu-rebalance.log 2>&1
#
# Settings (environment; the defaults suit a /etc/hakobu + /var/lib/hakobu layout):
#   HAKOBU_HOSTS      live libvirt hosts instead of the JSON, e.g.
#                     "libvirt:qemu+ssh://root@kvm1/system,libvirt:qemu+ssh://root@kvm2/system"
#   HAKOBU_INVENTORY  inventory JSON            (/etc/hakobu/inventory.json)
#   HAKOBU_POLICY     policy file               (/etc/hakobu/policy.ts)
#   HAKOBU_STATE      move history, cooldowns   (/var/lib/hakobu/rebalance-state.json)
#   HAKOBU_COOLDOWN   no VM moves twice within  (30m)
#   HAKOBU_ARGS       more flags, split on spaces, e.g. "--exclude db-* --exclude-tag pinned"
#   DENO              the deno binary           (deno)
#
# Exit code: hakobu's (0 balanced and every move checked on its destination,
# 1 a move failed, 2 a host cannot be brought under its target); 0 when the
# previous pass still runs and this one is skipped.
set -eu

HAKOBU_DIR=${HAKOBU_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
DENO=${DENO:-deno}
INVENTORY=${HAKOBU_INVENTORY:-/etc/hakobu/inventory.json}
POLICY=${HAKOBU_POLICY:-/etc/hakobu/policy.ts}
STATE=${HAKOBU_STATE:-/var/lib/hakobu/rebalance-state.json}
COOLDOWN=${HAKOBU_COOLDOWN:-30m}

# Where the inventory comes from: live libvirt hosts (read, moved through the
# libvirt backend, read back: nothing to write), else a JSON file, written
# back after the moves.
if [ -n "${HAKOBU_HOSTS:-}" ]; then
  set -- --hosts "$HAKOBU_HOSTS"
else
  set -- --inventory "$INVENTORY" --write-inventory "$INVENTORY"
fi

mkdir -p "$(dirname "$STATE")"
exec 9>"$STATE.lock"
if ! flock -n 9; then
  echo "[$(date -u +%Y-%m-%dT%H:%M:%SZ)] the previous rebalance still runs: skipped"
  exit 0
fi

echo "[$(date -u +%Y-%m-%dT%H:%M:%SZ)] hakobu rebalance"
cd "$HAKOBU_DIR"
# HAKOBU_ARGS is split on spaces on purpose (several flags in one variable),
# and not glob-expanded (set -f), so that "--exclude db-*" reaches hakobu.
set -f
# shellcheck disable=SC2086
exec "$DENO" run -A scripts/hakobu.ts rebalance "$@" \
  --policy "$POLICY" --state "$STATE" --cooldown "$COOLDOWN" \
  --max-concurrent 2 --timeout 5m ${HAKOBU_ARGS:-}
