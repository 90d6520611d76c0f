#!/usr/bin/env bash
# Installs the Debian package on this machine, checks what a user of it gets, then removes and
# purges it and checks that nothing is left. .ci/run runs it after scripts/build-deb.sh.
#
#   tests/deb/check-installed.sh [DEB]   (default: the newest target/debian/gpu-carbon-exporter_*.deb)
#
# Needs root (dpkg). Refuses to run where the package is already installed (or removed but not
# purged), so it never touches a real installation. Works whether or not systemd is PID 1 (CI
# containers): the postinst only starts the service where systemd runs, and this script runs the
# installed binary itself, as an unprivileged user (as DynamicUser= would), on a free port.
# Any failure prints `check-installed: FAIL: …` and exits 1; the package is purged either way.
set -euo pipefail
cd "$(dirname "$0")/../.."

pkg=gpu-carbon-exporter
bin=/usr/bin/$pkg
conffile=/etc/default/$pkg
man_page=/usr/share/man/man1/$pkg.1.gz
bash_completion=/usr/share/bash-completion/completions/$pkg
zsh_completion=/usr/share/zsh/vendor-completions/_$pkg
fish_completion=/usr/share/fish/vendor_completions.d/$pkg.fish
wants=/etc/systemd/system/multi-user.target.wants/$pkg.service
# Where systemd keeps StateDirectory= of a DynamicUser= service, and the link it makes to it.
state_private=/var/lib/private/$pkg
state_link=/var/lib/$pkg

fail() {
  echo "check-installed: FAIL: $*" >&2
  exit 1
}
ok() { echo "check-installed: ok: $*"; }

deb=${1:-$(ls -t target/debian/"$pkg"_*.deb 2>/dev/null | head -n 1)}
[ -n "$deb" ] && [ -f "$deb" ] || fail "no .deb (run scripts/build-deb.sh first)"
[ "$(id -u)" = 0 ] || fail "needs root for dpkg"
status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
case $status in
  "" | not-installed) ;;
  *) fail "$pkg is already on this machine ($status); refusing to touch it" ;;
esac
[ ! -e "$state_private" ] && [ ! -e "$state_link" ] || fail "$state_link exists already"
[ -d /var/lib/private ] && made_private=false || made_private=true

work=$(mktemp -d)
exporter=
cleanup() {
  [ -z "$exporter" ] || kill "$exporter" 2>/dev/null || true
  dpkg --purge "$pkg" >/dev/null 2>&1 || true
  rm -rf "$work" "$state_private" "$state_link"
  if $made_private; then rmdir /var/lib/private 2>/dev/null || true; fi
}
trap cleanup EXIT

# --- The archive -------------------------------------------------------------------------------
version=$(dpkg-deb -f "$deb" Version)
crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ "$version" = "$crate_version-1" ] || fail "package version $version, crate $crate_version"
depends=$(dpkg-deb -f "$deb" Depends)
# glibc only (docs/deployment.md): NVML is loaded at run time, nothing else is linked.
[[ $depends =~ ^libc6(\ \(>=\ [0-9.]+\))?$ ]] || fail "Depends: '$depends' is not libc6 alone"
dpkg-deb -I "$deb" conffiles | grep -qx "$conffile" \
  || fail "$conffile is not a conffile"
ok "$deb: $pkg $version, Depends: $depends, conffile $conffile"

# --- Install -----------------------------------------------------------------------------------
dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log" >&2; fail "dpkg -i"; }
[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg")" = installed ] || fail "not installed"
if [ ! -d /run/systemd/system ] && command -v pgrep >/dev/null && pgrep -f "^$bin( |\$)" >/dev/null; then
  fail "the postinst started $bin where systemd does not run"
fi
ok "dpkg -i"

# The binary: stripped (profile.release strip = true) and the long version of Prometheus' tools.
[ -x "$bin" ] || fail "$bin missing"
readelf -S "$bin" | grep -q '\.symtab' && fail "$bin is not stripped"
"$bin" --version >"$work/version"
for want in "$pkg $crate_version (revision: " "build date:" "rustc version: rustc " "platform:"; do
  grep -qF "$want" "$work/version" || fail "--version lacks '$want':$(cat "$work/version")"
done
ok "$bin stripped ($(stat -c %s "$bin") bytes); $(head -n 1 "$work/version")"

# The unit: the one of deploy/debian/, valid for systemd, enabled, pointing at what was installed.
unit=$(dpkg -L "$pkg" | grep -E "/systemd/system/$pkg\.service$" | head -n 1)
[ -n "$unit" ] || fail "no systemd unit installed"
cmp -s "$unit" deploy/debian/$pkg.service || fail "$unit is not deploy/debian/$pkg.service"
grep -qx "ExecStart=$bin" "$unit" || fail "$unit does not start $bin"
grep -qx "EnvironmentFile=-$conffile" "$unit" || fail "$unit does not read $conffile"
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify printed: $verify"
exposure=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN {exit !(e <= 2.0)}' \
  || fail "systemd-analyze security: exposure '$exposure' (want <= 2.0)"
[ -L "$wants" ] || fail "not enabled: no $wants"
if [ -d /run/systemd/system ]; then
  [ "$(systemctl is-enabled "$pkg")" = enabled ] || fail "systemctl is-enabled $pkg"
fi
ok "$unit: systemd-analyze verify clean, exposure $exposure, enabled"

# The man page and completions, generated from the clap definition.
[ -f "$man_page" ] || fail "$man_page missing"
zcat "$man_page" | grep -qF 'web.listen\-address' || fail "$man_page lacks --web.listen-address"
if command -v man >/dev/null; then
  MANWIDTH=200 man -l "$man_page" 2>/dev/null >"$work/man.txt"
  for want in GPU_CARBON_EXPORTER_WEB_LISTEN_ADDRESS --carbon.zone "$conffile"; do
    grep -qF -- "$want" "$work/man.txt" || fail "man $pkg lacks $want"
  done
fi
complete=$(bash -c "source $bash_completion && complete -p $pkg") || fail "bash completion does not load"
[[ $complete == *" $pkg" ]] || fail "bash completion: $complete"
grep -qx "#compdef $pkg" "$zsh_completion" || fail "$zsh_completion is not a zsh completion for $pkg"
grep -qF -- "complete -c $pkg" "$fish_completion" || fail "$fish_completion is not a fish completion"
grep -q "Apache" /usr/share/doc/$pkg/copyright || fail "no Apache licence in the copyright file"
ok "man page, bash/zsh/fish completions, copyright"

# --- Run the installed binary as the service would ----------------------------------------------
# Environment from the installed options file (all examples commented out: the defaults), an
# unprivileged user, the ledger in the state directory the unit names (here a temp dir).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
chown 65534:65534 "$work"
(
  set -a
  # shellcheck disable=SC1090
  . "$conffile"
  exec setpriv --reuid=65534 --regid=65534 --clear-groups "$bin" --demo \
    --web.listen-address="127.0.0.1:$port" --state.file="$work/state.json"
) >"$work/exporter.log" 2>&1 &
exporter=$!
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break
  kill -0 "$exporter" 2>/dev/null || { cat "$work/exporter.log" >&2; fail "exporter exited"; }
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null || { cat "$work/exporter.log" >&2; fail "not ready"; }
curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics" || fail "scrape of /metrics"
gpus=$(grep -c '^gpu_info{' "$work/metrics" || true)
[ "$gpus" = 4 ] || fail "want the demo's 4 GPUs in gpu_info, got $gpus"
grep -q "^gpu_carbon_exporter_build_info{.*version=\"$crate_version\"" "$work/metrics" \
  || fail "no build_info with version $crate_version"
grep -q '^gpu_energy_kwh_total{' "$work/metrics" || fail "no gpu_energy_kwh_total"
if command -v promtool >/dev/null; then
  promtool check metrics <"$work/metrics" || fail "promtool check metrics"
elif [ -n "${CI:-}" ]; then
  fail "promtool is required under CI (apt-get install prometheus)"
fi
kill -TERM "$exporter"
code=0
wait "$exporter" || code=$?
exporter=
[ "$code" = 0 ] || { cat "$work/exporter.log" >&2; fail "exporter exited $code on SIGTERM"; }
[ -s "$work/state.json" ] || fail "no ledger written"
grep -q 'level=error' "$work/exporter.log" && { cat "$work/exporter.log" >&2; fail "errors logged"; }
ok "installed binary served $gpus demo GPUs on 127.0.0.1:$port as uid 65534, stopped cleanly"

# --- Reinstall (the upgrade path: postinst configure with the old version) keeps edited options -----
echo "# edited by check-installed" >>"$conffile"
dpkg -i "$deb" </dev/null >"$work/dpkg-u.log" 2>&1 || { cat "$work/dpkg-u.log" >&2; fail "dpkg -i again"; }
tail -n 1 "$conffile" | grep -qx "# edited by check-installed" || fail "reinstall replaced the edited $conffile"
[ -L "$wants" ] || fail "reinstall lost the enablement"
ok "reinstall over itself keeps the edited $conffile and the enablement"

# --- Remove, then purge --------------------------------------------------------------------------
# What systemd leaves after the service ran: the ledger in the private state directory.
mkdir -p -m 0700 /var/lib/private
mkdir -p "$state_private"
cp "$work/state.json" "$state_private/state.json"
[ -L "$state_link" ] || ln -s "private/$pkg" "$state_link"

dpkg -r "$pkg" >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log" >&2; fail "dpkg -r"; }
# The enablement link stays until purge (as with every Debian service), so a reinstall keeps it.
for gone in "$bin" "$unit" "$man_page" "$bash_completion"; do
  [ ! -e "$gone" ] && [ ! -L "$gone" ] || fail "after dpkg -r, $gone is still there"
done
[ -f "$conffile" ] || fail "dpkg -r removed the conffile $conffile"
[ -f "$state_link/state.json" ] || fail "dpkg -r removed the ledger"
ok "dpkg -r: files gone, $conffile and the ledger kept"

dpkg --purge "$pkg" >"$work/dpkg-p.log" 2>&1 || { cat "$work/dpkg-p.log" >&2; fail "dpkg --purge"; }
status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
case $status in "" | not-installed) ;; *) fail "after purge: $status" ;; esac
for gone in "$conffile" "$state_private" "$state_link" "$wants"; do
  [ ! -e "$gone" ] && [ ! -L "$gone" ] || fail "after purge, $gone is still there"
done
left=$(find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled \
  /var/lib/systemd/deb-systemd-helper-masked -name "*$pkg*" 2>/dev/null || true)
[ -z "$left" ] || fail "after purge, left behind: $left"
ok "dpkg --purge: conffile, ledger and systemd links gone"
echo "check-installed: $pkg $version passed"
