#!/bin/sh
# Install hutch for the current user.
#
#   ./install.sh                    from a checkout: build if needed, install
#   ./install.sh --binary FILE      install this single executable instead of building
#   ./install.sh --prefix DIR       install to DIR/bin/hutch (default: ~/.local)
#   ./install.sh --no-packages      do not install prerequisites with the package manager
#   ./install.sh --uninstall        remove what an earlier run installed, and nothing else
#
# Steps: prerequisites through apt/dnf/pacman/zypper when root or with sudo
# (uidmap/shadow-utils, fuse-overlayfs, slirp4netns, passt where packaged;
# only the missing ones); build dist/hutch when it is missing or older than
# the sources; copy it to PREFIX/bin/hutch; add /etc/subuid and /etc/subgid
# ranges for the user when running as root and the user has none; finally
# `hutch doctor`. Running it again changes nothing that is already done.
#
# Every file and line it adds is recorded in a manifest
# ($XDG_DATA_HOME/hutch/install-manifest, default ~/.local/share/...):
# --uninstall removes exactly those (packages it installed are left alone:
# other programs may use them; the manifest lists them).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix="$HOME/.local"
binary=""
uninstall=0
packages=1
user=$(id -un)
uid=$(id -u)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
manifest="$data_home/hutch/install-manifest"

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#--prefix=}; shift ;;
	--binary) [ $# -ge 2 ] || die "--binary needs a file"; binary=$2; shift 2 ;;
	--binary=*) binary=${1#--binary=}; shift ;;
	--uninstall) uninstall=1; shift ;;
	--no-packages) packages=0; shift ;;
	-h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
done
case "$prefix" in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
target="$prefix/bin/hutch"

# ---------------------------------------------------------------- manifest
# Lines: `file PATH`, `dir PATH` (created, removed if empty), `line FILE TEXT`
# (a line appended to FILE), `package NAME`.
record() {
	if [ ! -f "$manifest" ]; then
		# The directories made for the manifest itself are ours too.
		top=$(dirname "$manifest")
		while [ ! -d "$top" ]; do top=$(dirname "$top"); done
		mkdir -p "$(dirname "$manifest")"
		: >"$manifest"
		x=$(dirname "$manifest")
		while [ "$x" != "$top" ]; do printf 'dir %s\n' "$x" >>"$manifest"; x=$(dirname "$x"); done
	fi
	grep -qxF "$*" "$manifest" || printf '%s\n' "$*" >>"$manifest"
}

if [ "$uninstall" = 1 ]; then
	[ -f "$manifest" ] || { say "nothing to uninstall (no $manifest)"; exit 0; }
	while IFS= read -r entry; do
		case "$entry" in
		file\ *)
			f=${entry#file }
			if [ -e "$f" ] || [ -L "$f" ]; then rm -f "$f" && say "removed $f"; fi ;;
		line\ *)
			rest=${entry#line }
			f=${rest%% *}
			text=${rest#* }
			if [ -f "$f" ] && grep -qxF "$text" "$f"; then
				# Rewrite in place (same inode and mode): only that exact line goes.
				tmp=$(mktemp)
				grep -vxF "$text" "$f" >"$tmp" || true
				cat "$tmp" >"$f"
				rm -f "$tmp"
				say "removed '$text' from $f"
			fi ;;
		dir\ *) ;; # after the files: see below
		package\ *) say "left package ${entry#package } installed (other programs may need it)" ;;
		esac
	done <"$manifest"
	# Directories it created, deepest first, only when empty.
	dirs=$(grep '^dir ' "$manifest" | sed 's/^dir //' | sort -r)
	rm -f "$manifest"
	printf '%s\n' "$dirs" | while IFS= read -r d; do [ -n "$d" ] && rmdir "$d" 2>/dev/null && say "removed $d/"; done
	say "kept hutch's own cache and data (${XDG_CACHE_HOME:-$HOME/.cache}/hutch, $data_home/hutch) if any: remove them with rm -rf if you want"
	exit 0
fi

# ---------------------------------------------------------------- prerequisites
as_root=""
if [ "$uid" = 0 ]; then
	as_root=" "
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root="sudo"
fi

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

# The package that provides a tool, per package manager (the same table as
# src/host/fixes.ts, which `hutch doctor` prints its fixes from).
package_for() { # PM TOOL
	case "$1:$2" in
	apt:newuidmap) echo uidmap ;;
	dnf:newuidmap) echo shadow-utils ;;
	*:newuidmap) echo shadow ;;
	apt:fuse-overlayfs) echo "fuse-overlayfs fuse3" ;;
	*:pasta) echo passt ;;
	*) echo "$2" ;;
	esac
}

install_packages() {
	need=""
	pm=""
	for candidate in apt-get:apt dnf:dnf pacman:pacman zypper:zypper; do
		if command -v "${candidate%%:*}" >/dev/null 2>&1; then pm=${candidate#*:}; break; fi
	done
	if [ -z "$pm" ]; then
		say "no apt-get, dnf, pacman or zypper: install newuidmap, fuse-overlayfs, slirp4netns and pasta yourself"
		return 0
	fi
	for tool in newuidmap fuse-overlayfs slirp4netns pasta; do
		have "$tool" || need="$need $(package_for "$pm" "$tool")"
	done
	if [ -z "$need" ]; then
		say "prerequisites: all present"
		return 0
	fi
	if [ -z "$as_root" ]; then
		say "missing prerequisites:$need (not root and no password-less sudo: install them with $pm, then run me again)"
		return 0
	fi
	say "installing with $pm:$need"
	run=${as_root# }
	# One package at a time where a name may not exist (passt is not packaged everywhere).
	case "$pm" in
	apt)
		$run env DEBIAN_FRONTEND=noninteractive apt-get update -q || true
		for p in $need; do $run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$p" && record "package $p" || say "could not install $p"; done ;;
	dnf) for p in $need; do $run dnf install -y "$p" && record "package $p" || say "could not install $p"; done ;;
	pacman) for p in $need; do $run pacman -S --needed --noconfirm "$p" && record "package $p" || say "could not install $p"; done ;;
	zypper) for p in $need; do $run zypper --non-interactive install "$p" && record "package $p" || say "could not install $p"; done ;;
	esac
}

if [ "$packages" = 1 ]; then install_packages; else say "prerequisites: skipped (--no-packages)"; fi

# ---------------------------------------------------------------- the binary
if [ -z "$binary" ]; then
	[ -f "$here/package.json" ] && [ -f "$here/build.mjs" ] || die "not a hutch checkout ($here): give --binary FILE"
	binary="$here/dist/hutch"
	stale=0
	if [ ! -x "$binary" ]; then
		stale=1
	elif [ -n "$(find "$here/src" "$here/helper-c" "$here/sandbox-profiles" "$here/build.mjs" "$here/package-lock.json" -newer "$binary" -type f 2>/dev/null | head -n 1)" ]; then
		stale=1
	fi
	if [ "$stale" = 1 ]; then
		command -v node >/dev/null 2>&1 || die "building needs node >= 20 and npm (or give --binary FILE)"
		if [ ! -d "$here/node_modules" ]; then
			say "npm ci"
			(cd "$here" && npm ci --no-audit --no-fund)
		fi
		say "building dist/hutch"
		(cd "$here" && node build.mjs)
	else
		say "dist/hutch is up to date"
	fi
fi
[ -f "$binary" ] || die "$binary does not exist"
"$binary" --version >/dev/null 2>&1 || die "$binary does not run (is it a hutch single executable for this machine?)"

for d in "$prefix" "$prefix/bin"; do
	[ -d "$d" ] || { mkdir "$d" && record "dir $d"; }
done
if [ -f "$target" ] && cmp -s "$binary" "$target"; then
	say "$target is already this version"
else
	tmp="$target.tmp.$$"
	cp "$binary" "$tmp"
	chmod 0755 "$tmp"
	mv -f "$tmp" "$target"
	say "installed $target ($("$target" --version))"
fi
record "file $target"

# ---------------------------------------------------------------- subordinate ids
# Root adds ranges for the user who asked (SUDO_USER) or itself, when that
# user has none: the first free 65536-aligned block after every existing range.
if [ "$uid" = 0 ]; then
	who=${SUDO_USER:-$user}
	who_uid=$(id -u "$who")
	for f in /etc/subuid /etc/subgid; do [ -e "$f" ] || { touch "$f" && chmod 0644 "$f"; }; done
	if grep -qE "^($who|$who_uid):" /etc/subuid && grep -qE "^($who|$who_uid):" /etc/subgid; then
		say "subordinate ids: $who already has ranges"
	else
		start=$(cat /etc/subuid /etc/subgid | awk -F: 'BEGIN{e=100000} NF>=3 && $2+$3>e {e=$2+$3} END{print int((e+65535)/65536)*65536}')
		for f in /etc/subuid /etc/subgid; do
			if ! grep -qE "^($who|$who_uid):" "$f"; then
				line="$who:$start:65536"
				printf '%s\n' "$line" >>"$f"
				record "line $f $line"
				say "added $line to $f"
			fi
		done
	fi
fi

# ---------------------------------------------------------------- check
case ":$PATH:" in
*":$prefix/bin:"*) ;;
*) say "note: $prefix/bin is not on your PATH; add it: echo 'export PATH=\"$prefix/bin:\$PATH\"' >>~/.profile" ;;
esac
say "running hutch doctor"
"$target" doctor
