#!/usr/bin/env bash
# The .deb, built and used the way an operator would: cpack makes it from
# this build; dpkg-deb checks its fields, conffiles and maintainer scripts;
# dpkg installs it into a clean root of its own (DPKG_ROOT: the scripts
# touch nothing on this machine), the installed binary checks the
# installed configuration, an upgrade over itself keeps the operator's
# changed configuration, removal keeps it, purge removes it.
#   tests/package.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/palaver-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "package: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$work"/out/palaver_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no palaver_*.deb made"

# Fields.
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libsqlite3-0 libjansson4 liburcu8 libsystemd0 libc6 init-system-helpers; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
[[ $depends != *libcivetweb* ]] || fail "Depends names libcivetweb (CivetWeb is built in): $depends"
[ "$(dpkg-deb -f "$deb" Section)" = net ] || fail "Section is not net"
[ "$(dpkg-deb -f "$deb" Package)" = palaver ] || fail "Package is not palaver"

# Control files: the conffile, and the maintainer scripts (executable, valid sh).
mkdir -p "$work/ctrl"
dpkg-deb -e "$deb" "$work/ctrl"
grep -qx /etc/palaver/palaverd.conf "$work/ctrl/conffiles" || fail "palaverd.conf is not a conffile"
for s in postinst prerm postrm; do
  [ -x "$work/ctrl/$s" ] || fail "no executable $s"
  sh -n "$work/ctrl/$s" || fail "$s is not valid sh"
done

# Contents.
contents=$(dpkg-deb -c "$deb")
for f in ./usr/sbin/palaverd ./usr/lib/systemd/system/palaverd.service ./etc/palaver/palaverd.conf \
  ./usr/share/man/man8/palaverd.8 ./usr/share/man/man5/palaverd.conf.5 \
  ./usr/share/palaver/htdocs/index.html ./usr/share/palaver/tls/haproxy.cfg \
  ./usr/sbin/palaver-cert ./usr/sbin/palaver-tls-setup; do
  grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done

# Install into a clean root.
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
: >"$root/var/lib/dpkg/status"
dpkg_root() {
  DPKG_ROOT=$root dpkg --root="$root" --log=/dev/null --force-script-chrootless \
    --force-depends --force-not-root "$@" >"$work/dpkg.log" 2>&1 ||
    { cat "$work/dpkg.log" >&2; fail "dpkg $* failed"; }
}
dpkg_root -i "$deb"
[ -x "$root/usr/sbin/palaverd" ] || fail "palaverd not installed"
"$root/usr/sbin/palaverd" --config "$root/etc/palaver/palaverd.conf" --check-config >"$work/check.log" ||
  { cat "$work/check.log" >&2; fail "the installed palaverd refused the installed configuration"; }
grep -q "configuration OK" "$work/check.log" || fail "no 'configuration OK' from --check-config"
[ -L "$root/etc/systemd/system/multi-user.target.wants/palaverd.service" ] ||
  fail "the postinst did not enable palaverd.service"
grep -q "^ExecStart=/usr/sbin/palaverd --config /etc/palaver/palaverd.conf" \
  "$root/usr/lib/systemd/system/palaverd.service" || fail "the unit does not run the installed paths"

# The operator changes the configuration; an upgrade over itself keeps it.
echo "max-clients = 321" >>"$root/etc/palaver/palaverd.conf"
dpkg_root -i "$deb"
grep -qx "max-clients = 321" "$root/etc/palaver/palaverd.conf" || fail "the upgrade overwrote the configuration"
"$root/usr/sbin/palaverd" --config "$root/etc/palaver/palaverd.conf" --check-config | grep -q "max-clients 321" ||
  fail "the kept configuration is not the one palaverd reads"

# Removal keeps the configuration; purge removes it.
dpkg_root -r palaver
[ ! -e "$root/usr/sbin/palaverd" ] || fail "remove left palaverd"
[ -e "$root/etc/palaver/palaverd.conf" ] || fail "remove took the configuration"
dpkg_root -P palaver
[ ! -e "$root/etc/palaver/palaverd.conf" ] || fail "purge left the configuration"
[ ! -L "$root/etc/systemd/system/multi-user.target.wants/palaverd.service" ] ||
  fail "purge left the service enabled"
echo "package: $(basename "$deb"): Depends $depends; conffile kept across an upgrade; removed and purged cleanly"
