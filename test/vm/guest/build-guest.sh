#!/bin/sh
# Build (or reuse) the cgroup-v2 test guest: Debian's stock kernel, downloaded
# (never installed) with apt-get download, plus a busybox initramfs whose
# /init is ./init. Adapted from ../shared/recipes/cgroup-v2-guest.
#
# Usage: build-guest.sh CACHEDIR
#   CACHEDIR/vmlinux             uncompressed kernel (qemu boots it via PVH: ~3 s faster under TCG)
#   CACHEDIR/initramfs.cpio.gz   busybox + the modules for 9p, virtio-pci, virtio-blk, overlayfs, fuse
# Reuses what is there: the kernel when its package version is unchanged,
# the initramfs when ./init and this script are unchanged (a stamp file
# holds their checksum). Needs: busybox-static, xz-utils, apt lists.
set -eu
W=${1:?usage: build-guest.sh CACHEDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W/deb"
cd "$W"
BB=$(command -v busybox || true)
[ -n "$BB" ] || { echo "build-guest: busybox not found (apt-get install busybox-static)" >&2; exit 2; }
case "$(file -b "$BB" 2>/dev/null || echo static)" in *dynamic*) echo "build-guest: $BB is dynamically linked; install busybox-static" >&2; exit 2 ;; esac
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || KPKG=$(cat kpkg/.pkg 2>/dev/null || true)
[ -n "$KPKG" ] || { echo "build-guest: cannot tell which kernel package to use (run apt-get update)" >&2; exit 2; }
if [ "$(cat kpkg/.pkg 2>/dev/null || true)" != "$KPKG" ]; then
  ls deb/${KPKG}_*.deb >/dev/null 2>&1 || (cd deb && apt-get download "$KPKG")
  rm -rf kpkg vmlinux initramfs.cpio.gz stamp && mkdir kpkg
  dpkg-deb -x deb/${KPKG}_*.deb kpkg
  echo "$KPKG" > kpkg/.pkg
fi
KVER=$(ls kpkg/lib/modules | head -1)
if [ ! -s vmlinux ]; then
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' kpkg/boot/vmlinuz-$KVER | head -1 | cut -d: -f1)
  tail -c +$((off + 1)) kpkg/boot/vmlinuz-$KVER | xz --single-stream -dc > vmlinux.tmp
  mv vmlinux.tmp vmlinux
fi
SUM=$(cat "$HERE/init" "$HERE/build-guest.sh" "$BB" | md5sum | cut -d' ' -f1)
if [ -s initramfs.cpio.gz ] && [ "$(cat stamp 2>/dev/null || true)" = "$SUM $KVER" ]; then
  echo "guest: reusing $W ($KVER)"
  exit 0
fi
MODSRC=kpkg/lib/modules/$KVER
R=$W/rootfs
rm -rf "$R"
mkdir -p "$R"/bin "$R"/sbin "$R"/etc "$R"/proc "$R"/sys "$R"/dev "$R"/tmp "$R"/run "$R"/lib/modules/$KVER
cp "$BB" "$R"/bin/busybox
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
# Debian builds these as modules: virtio-pci transport, 9p over virtio, virtio-blk, overlayfs,
# fuse (/dev/fuse: the fuse-overlayfs storage driver, as on a usual host)
[ -e $MODSRC/modules.dep ] || "$BB" depmod -b kpkg "$KVER"
need=""
for m in virtio_pci 9pnet_virtio 9p virtio_blk overlay fuse; do
  line=$(grep -E "/$m\.ko(\.xz)?:" $MODSRC/modules.dep)
  need="$need ${line%%:*} ${line#*:}"
done
for f in $need; do
  mkdir -p "$R/lib/modules/$KVER/$(dirname $f)"
  cp $MODSRC/$f "$R/lib/modules/$KVER/$f"
done
"$BB" depmod -b "$R" "$KVER"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
install -m 755 "$HERE/init" "$R/init"
(cd "$R" && find . | "$BB" cpio -o -H newc 2>/dev/null | gzip -1) > initramfs.cpio.gz.tmp
mv initramfs.cpio.gz.tmp initramfs.cpio.gz
rm -rf "$R"
echo "$SUM $KVER" > stamp
echo "guest: built $W (kernel $KVER, initramfs $(du -h initramfs.cpio.gz | cut -f1))"
