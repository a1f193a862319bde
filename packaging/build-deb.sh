#!/usr/bin/env bash
# Builds meshedflow_<version>_amd64.deb from this source tree.
#
#   packaging/build-deb.sh [--from-build DIR] [OUTPUT_DIR]   (default: the source root)
#
# The package holds what `meson install` installs with --prefix=/usr
# --sysconfdir=/etc (mf-edge, mf-ingress, mf-sign when the tree has it, the
# systemd units, the sysctl drop-in, the example configurations as conffiles,
# the Prometheus rules and the Grafana dashboard), except the perf/ tools
# (mf-load, mf-echo: benchmarking from a source tree), plus man pages made
# from each program's --help, the operator documentation and the Debian
# metadata of packaging/debian/. It builds in build-deb/ (MF_DEB_BUILD_DIR),
# configured once (release, hardened, no tests) and rebuilt incrementally;
# with ccache installed and CXX unset, compilations go through it.
# With --from-build DIR it packages the programs of an existing build
# directory instead (configured with --prefix=/usr --sysconfdir=/etc, as the
# test command's build-tests/ is): the package test then checks the binaries
# under test without compiling the tree a second time. A release package is
# made without it.
# Needs dpkg-dev (dpkg-shlibdeps, dpkg-buildflags), meson, ninja, python3.
set -euo pipefail

die() { echo "build-deb: $*" >&2; exit 1; }

root="$(cd "$(dirname "$0")/.." && pwd)"
from_build=""
if [ "${1:-}" = --from-build ]; then
  [ -n "${2:-}" ] || die "--from-build needs a build directory"
  from_build="$2"; shift 2
fi
out="${1:-$root}"
build="${from_build:-${MF_DEB_BUILD_DIR:-$root/build-deb}}"
[ -d "$out" ] || die "no such output directory: $out"
out="$(cd "$out" && pwd)"
for tool in meson ninja dpkg-deb dpkg-shlibdeps dpkg-buildflags python3 strip gzip; do
  command -v "$tool" >/dev/null || die "$tool is missing (./install-deps.sh installs what the package build needs)"
done
[ "$(dpkg --print-architecture)" = amd64 ] || die "this script builds amd64 packages on an amd64 host"

# Debian's hardening flags (PIE, relro/now, fortify, stack protector), given
# as meson options (a space-separated list) so that a reused build directory
# gets them again.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cpp_args=()
for flag in $(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS); do
  case "$flag" in -O*|-g|-ffile-prefix-map=*) ;; *) cpp_args+=("$flag") ;; esac
done
link_args=($(dpkg-buildflags --get LDFLAGS))
options=(--prefix=/usr --sysconfdir=/etc -Dbuildtype=release -Db_ndebug=true -Db_pie=true
         -Dtests=disabled -Dbenchmarks=disabled -Dfuzzers=false -Dtest_hooks=false
         "-Dcpp_args=${cpp_args[*]}" "-Dcpp_link_args=${link_args[*]}")

if [ -n "$from_build" ]; then
  [ -f "$build/build.ninja" ] || die "--from-build $build: not a configured meson build directory"
  # The installed paths are compiled into the units and decide where meson
  # installs: a build configured for another prefix cannot be packaged.
  paths="$(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
options = {o["name"]: o["value"] for o in json.load(sys.stdin)}
print(options["prefix"], options["sysconfdir"])')"
  [ "$paths" = "/usr /etc" ] \
    || die "--from-build $build: configured with prefix and sysconfdir '$paths', the package needs '/usr /etc' (meson configure $build --prefix=/usr --sysconfdir=/etc)"
elif [ ! -f "$build/build.ninja" ]; then
  if [ -z "${CXX:-}" ] && command -v ccache >/dev/null; then export CXX="ccache g++"; fi
  meson setup "$build" "$root" "${options[@]}" >/dev/null || die "meson setup $build failed"
else
  meson configure "$build" "${options[@]}" >/dev/null || die "meson configure $build failed"
fi

# Build only what is installed (no corpus replays, no unit tests), as the
# build files list it once regenerated for the tree's current meson.build.
ninja -C "$build" build.ninja >/dev/null || die "meson could not regenerate $build"
mapfile -t targets < <(meson introspect "$build" --targets | python3 -c '
import json, os, sys
for target in json.load(sys.stdin):
    if target.get("installed"):
        for output in target["filename"]:
            print(os.path.relpath(output, sys.argv[1]))' "$(cd "$build" && pwd)")
ninja -C "$build" "${targets[@]}" >/dev/null || die "ninja -C $build failed (run it by hand for the errors)"

version="$(meson introspect "$build" --projectinfo | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')"
changelog_version="$(sed -n '1s/^meshedflow (\([^)]*\)).*/\1/p' "$root/packaging/debian/changelog")"
[ "$changelog_version" = "$version" ] \
  || die "packaging/debian/changelog starts with $changelog_version, meson.build says $version: add an entry"

work="$(mktemp -d "${TMPDIR:-/tmp}/meshedflow-deb.XXXXXX")"
trap 'rm -rf "$work"' EXIT
stage="$work/meshedflow"
umask 022
meson install -C "$build" --no-rebuild --destdir "$stage" >/dev/null || die "meson install failed"

# The perf/ tools stay with the source tree.
for tool in mf-load mf-echo; do
  [ -f "$stage/usr/bin/$tool" ] || die "expected /usr/bin/$tool from meson install (perf/meson.build changed?)"
  rm "$stage/usr/bin/$tool"
done
if [ -f "$root/origin/meson.build" ] && [ ! -f "$stage/usr/bin/mf-sign" ]; then
  die "the tree has origin/ but meson install gave no /usr/bin/mf-sign"
fi

# Programs: stripped as dh_strip does; a man page each from --help.
declare -A descriptions=(
  [mf-edge]="MeshedFlow signaling edge (TLS WebSocket, SDK protocol)"
  [mf-ingress]="MeshedFlow TLS ingress balancing to the edges"
  [mf-sign]="MeshedFlow segment manifest signer"
)
mkdir -p "$stage/usr/share/man/man1"
for program in "$stage"/usr/bin/*; do
  name="$(basename "$program")"
  [ -n "${descriptions[$name]:-}" ] || die "no man page description for /usr/bin/$name: add it to packaging/build-deb.sh"
  strip --remove-section=.comment --remove-section=.note "$program"
  "$program" --help > "$work/$name.help" || die "$name --help failed"
  python3 "$root/packaging/help_to_man.py" "$name" "${descriptions[$name]}" "$version" \
    < "$work/$name.help" > "$stage/usr/share/man/man1/$name.1"
  gzip -9n "$stage/usr/share/man/man1/$name.1"
done

# Documentation: what an operator reads, compressed above 4 KiB (policy 12.3).
doc="$stage/usr/share/doc/meshedflow"
mkdir -p "$doc"
install -m 0644 "$root/README.md" "$root"/docs/{deploy,edge,ingress,cluster,security,protocol}.md "$doc/"
[ -f "$root/docs/origin.md" ] && install -m 0644 "$root/docs/origin.md" "$doc/"
for file in "$doc"/*.md; do
  if [ "$(stat -c %s "$file")" -gt 4096 ]; then gzip -9n "$file"; fi
done
install -m 0644 "$root/packaging/debian/copyright" "$doc/copyright"
gzip -9n < "$root/packaging/debian/changelog" > "$doc/changelog.gz"

# Control files.
mkdir -p "$stage/DEBIAN"
install -m 0755 "$root/packaging/debian/postinst" "$root/packaging/debian/postrm" "$stage/DEBIAN/"
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') > "$stage/DEBIAN/conffiles"
mkdir -p "$work/shlibs/debian"
printf 'Source: meshedflow\n\nPackage: meshedflow\nArchitecture: amd64\n' > "$work/shlibs/debian/control"
shlibs="$(cd "$work/shlibs" && dpkg-shlibdeps -O "$stage"/usr/bin/* 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependencies"
installed_size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" \
  "$root/packaging/debian/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

if [ -z "${SOURCE_DATE_EPOCH:-}" ] && git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  SOURCE_DATE_EPOCH="$(git -C "$root" log -1 --format=%ct)"
  export SOURCE_DATE_EPOCH
fi
package="$out/meshedflow_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$package" >/dev/null || die "dpkg-deb --build failed"
echo "$package"
