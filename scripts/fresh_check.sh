#!/usr/bin/env bash
# The README's two commands on a fresh Debian 12: builds a minimal Debian 12 root with
# debootstrap, copies a clean clone of this repository's HEAD into it, and inside it, as root,
# runs `scripts/test` and then `scripts/run smoke` (which must also write the plot). Prints the
# time of each step; exits 1 if a step fails, 0 if all pass, and 0 with "SKIPPED" when the
# package registry cannot be reached at all. Nothing is cached between runs.
#
#   scripts/fresh_check.sh [--keep]      --keep: leave the root in place (its path is printed)
#
# The root uses this machine's package sources and apt settings (mirror, proxy, date checks) and
# nothing else from it: no package, no environment variable. FRESH_CHECK_MIRROR=URI overrides the
# mirror debootstrap uses. Uncommitted changes are not in the clone. Needs root (debootstrap,
# chroot, mount) and about 3 GB under ${TMPDIR:-/var/tmp}.
set -euo pipefail

ROOT_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keep=0
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh_check: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh_check: must run as root (debootstrap, chroot, mount)" >&2; exit 2; }

started=$SECONDS
step_start=0
log() { printf '[fresh_check %4ds] %s\n' "$((SECONDS - started))" "$*"; }
step() { step_start=$SECONDS; log "$1 ..."; }
step_done() { log "$1: $2 in $((SECONDS - step_start)) s"; }
skip() { log "SKIPPED: $*"; exit 0; }

# --- the mirror this machine uses for Debian 12 (bookworm), from its own apt sources ---------
# One-line format: "deb [options] URI bookworm main"; deb822: "URIs:" and "Suites:" fields.
mirror_uri() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                       if ($(i + 1) == "bookworm") { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; ok = 0
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/) { split($i, w, /[ \t]+/); uri = w[2] }
             if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) ok = 1
           }
           if (ok && uri != "") { print uri; exit } }' "$f"
  done
}
mirror="${FRESH_CHECK_MIRROR:-$(mirror_uri | head -n 1)}"
[ -n "$mirror" ] || { echo "fresh_check: no Debian 12 (bookworm) source in /etc/apt" >&2; exit 2; }

# apt's proxy, if it has one, for debootstrap and for apt inside the root (which copies the
# apt settings anyway).
proxy="$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)"
[ -n "$proxy" ] && [ "$proxy" != "DIRECT" ] && export http_proxy="$proxy"

# --- can the registry be reached at all? (a TCP connection to the mirror or the proxy) -------
reach="${http_proxy:-$mirror}"
hostport="${reach#*://}"
hostport="${hostport%%/*}"
hostport="${hostport##*@}"
host="${hostport%%:*}"
port=80
[[ "$reach" == https://* ]] && port=443
[[ "$hostport" == *:* ]] && port="${hostport##*:}"
if ! timeout 15 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
  skip "the package registry cannot be reached (no TCP connection to $host:$port)"
fi

if ! command -v debootstrap >/dev/null; then
  step "installing debootstrap on this machine"
  apt-get update -qq || skip "apt-get update failed: the package registry cannot be reached"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
    >/dev/null
  step_done "install" "done"
fi

# --- the root, and a cleanup that never deletes through a mount --------------------------------
work="$(mktemp -d "${TMPDIR:-/var/tmp}/convbp-fresh.XXXXXX")"
target="$work/root"
mounted=()

mounts_under() {  # mount points at or below $1, deepest first
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

cleanup() {
  local rc=$? m
  set +e
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}"
  done
  # Anything still mounted below the root (a mount made inside it) goes too, deepest first.
  for m in $(mounts_under "$target"); do umount "$m" 2>/dev/null || umount -l "$m"; done
  if [ -n "$(mounts_under "$work")" ]; then
    log "not removing $work: still mounted: $(mounts_under "$work" | tr '\n' ' ')"
  elif [ "$keep" -eq 1 ]; then
    log "root kept at $target"
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "debootstrap bookworm (minbase) from $mirror"
if ! debootstrap --variant=minbase bookworm "$target" "$mirror" >"$work/debootstrap.log" 2>&1; then
  if grep -qE "Failed getting release file|Temporary failure|Could not resolve|Connection refused|Network is unreachable" "$work/debootstrap.log"; then
    skip "debootstrap could not download from $mirror ($(grep -m1 -E 'E:|W:' "$work/debootstrap.log"))"
  fi
  tail -n 20 "$work/debootstrap.log" >&2
  log "FAILED: debootstrap (log above)"
  exit 1
fi
step_done "debootstrap" "done"

# This machine's package sources and apt settings, its name resolution; nothing else.
rm -f "$target/etc/apt/sources.list"
cp -a /etc/apt/sources.list.d/. "$target/etc/apt/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$target/etc/apt/sources.list"
find "$target/etc/apt/sources.list.d" -type f ! -name '*.list' ! -name '*.sources' -delete
cp -a /etc/apt/apt.conf.d/. "$target/etc/apt/apt.conf.d/"
cp -a /etc/apt/trusted.gpg.d/. "$target/etc/apt/trusted.gpg.d/" 2>/dev/null || true
cp -L /etc/resolv.conf "$target/etc/resolv.conf" 2>/dev/null || true

for m in proc sys dev dev/pts; do
  mkdir -p "$target/$m"
  case "$m" in
    proc) mount -t proc proc "$target/proc" ;;
    sys) mount -t sysfs sysfs "$target/sys" ;;
    dev | dev/pts) mount --bind "/$m" "$target/$m" ;;
  esac
  mounted+=("$target/$m")
done

step "clean clone of $(git -C "$ROOT_REPO" rev-parse --short HEAD)"
git clone -q --no-hardlinks "$ROOT_REPO" "$target/root/convbp"
step_done "clone" "done"

in_root() {  # a login-like root shell with a clean environment
  chroot "$target" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    ${http_proxy:+http_proxy=$http_proxy} /bin/bash -c "cd /root/convbp && $1"
}

failed=0
step "scripts/test"
if in_root "scripts/test"; then step_done "scripts/test" "passed"; else
  step_done "scripts/test" "FAILED"; failed=1; fi

step "scripts/run smoke"
if in_root "scripts/run smoke -q -o results/fresh.json && test -s results/fresh.png"; then
  step_done "scripts/run smoke" "passed (report and plot written)"
else
  step_done "scripts/run smoke" "FAILED"; failed=1
fi

if [ "$failed" -ne 0 ]; then
  log "FAILED: the README's commands do not work on a fresh Debian 12"
  exit 1
fi
log "PASSED: scripts/test and scripts/run smoke on a fresh Debian 12 root"
