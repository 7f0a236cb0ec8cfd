#!/bin/bash
# test-helper.sh: developer smoke test for hutch-helper. Feeds hand-written
# plans (PLAN.md) to the helper and checks what the sandboxed command sees.
#
#   ./test-helper.sh              # as the current user; as root, then again
#                                 # as $HUTCH_TEST_USER (default hutchdev)
#   HELPER=/path/hutch-helper ./test-helper.sh
#
# Every check prints one line `ok   NAME`, `FAIL NAME` or `skip NAME: why`
# (test/lib/helpertier.mjs counts them). A check whose output holds a
# sanitizer report (ASan/UBSan build: build.sh --sanitize) fails.
#
# The real integration tests are the TypeScript ones; this only proves the
# helper itself works, privileged and unprivileged.
set -u
here=$(cd "$(dirname "$0")" && pwd)
HELPER=${HELPER:-$here/../build/hutch-helper}
[ -x "$HELPER" ] || { echo "no helper at $HELPER (run build.sh)" >&2; exit 2; }
HELPER=$(cd "$(dirname "$HELPER")" && pwd)/$(basename "$HELPER")

uid=$(id -u) gid=$(id -g) user=$(id -un)
T=$(mktemp -d /tmp/hutch-helper-test.XXXXXX)
chmod 755 "$T"
pass=0 failed=0 skipped=0

# the `cleanup` op removes what our sandboxes created as subordinate ids
trap 'chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T" 2>/dev/null' EXIT

# one plan line: fields TAB-separated, % TAB LF CR escaped as PLAN.md says
op() {
	local a e out=()
	for a in "$@"; do
		e=${a//%/%25}; e=${e//$'\t'/%09}; e=${e//$'\n'/%0A}; e=${e//$'\r'/%0D}
		out+=("$e")
	done
	local IFS=$'\t'
	printf '%s\n' "${out[*]}"
}

bad() { failed=$((failed + 1)); echo "FAIL $1"; shift; printf '     %s\n' "$@"; sed 's/^/     | /' "$T/out" | head -40; }
ok() {
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer' "$T/out" 2>/dev/null; then
		bad "$1" "sanitizer report in the output"
		return 1
	fi
	pass=$((pass + 1)); echo "ok   $1"
}
skip() { skipped=$((skipped + 1)); echo "skip $1: $2"; }

# run_plan NAME [redirections...]: runs the plan in $T/plan; sets rc, output in $T/out
run_plan() {
	local name=$1; shift
	"$HELPER" run 3<"$T/plan" "$@" >"$T/out" 2>&1
	rc=$?
}
# expect NAME RC [STRING...]: rc and substrings of the output
expect() {
	local name=$1 want=$2; shift 2
	if [ "$rc" != "$want" ]; then bad "$name" "exit $rc, want $want"; return 1; fi
	for s in "$@"; do
		if ! grep -qF -- "$s" "$T/out"; then bad "$name" "output lacks: $s"; return 1; fi
	done
	ok "$name"
}

ident_self() { op uidmap 0 "$uid" 1; op gidmap 0 "$gid" 1; op userns; }
# the full range: newuidmap with /etc/subuid for a user, a privileged mapper for root
ident_sub() {
	if [ "$uid" = 0 ]; then
		op uidmap 0 0 1; op uidmap 1 200000 65536
		op gidmap 0 0 1; op gidmap 1 200000 65536
	else
		local su sg
		su=$(awk -F: -v u="$user" '$1 == u { print $2, $3; exit }' /etc/subuid)
		sg=$(awk -F: -v u="$user" '$1 == u { print $2, $3; exit }' /etc/subgid)
		op uidmap 0 "$uid" 1; op uidmap 1 ${su% *} ${su#* }
		op gidmap 0 "$gid" 1; op gidmap 1 ${sg% *} ${sg#* }
		op newuidmap /usr/bin/newuidmap; op newgidmap /usr/bin/newgidmap
	fi
	op userns
}
namespaces() { op unshare mount,ipc,uts,net; op unshare pid,cgroup,time; }
# a minimal root: /usr and /etc read-only from the host, fresh /proc, /dev, /tmp
rootfs() {
	op base /tmp
	op tmpfs /newroot 755
	op bind /oldroot/usr /newroot/usr ro,rec
	for d in bin lib lib64 sbin; do op symlink usr/$d /newroot/$d; done
	op bind /oldroot/etc /newroot/etc ro,rec
	op proc /newroot/proc
	op tmpfs /newroot/dev 755
	for d in null zero full random urandom tty; do op bind /oldroot/dev/$d /newroot/dev/$d rw,dev; done
	op devpts /newroot/dev/pts
	op symlink /proc/self/fd /newroot/dev/fd
	op tmpfs /newroot/dev/shm 1777
	op mqueue /newroot/dev/mqueue
	op sysfs /newroot/sys
	op tmpfs /newroot/tmp 1777
	op mask /newroot/proc/kcore
	op mask /newroot/proc/sys/kernel/core_pattern
	op mask /newroot/proc/scsi
	"$@"
	op hostname sbx
	op lo-up
	op pivot /newroot
	op clearenv
	op env PATH /usr/local/bin:/usr/bin:/bin
}
sandbox() { { ident_self; namespaces; rootfs "$@"; op setsid; op no-new-privs; } }

echo "# hutch-helper tests as $user (uid $uid), helper $HELPER"

# --- version ---------------------------------------------------------------
out=$("$HELPER" --version 2>&1); rc=$?; echo "$out" >"$T/out"
if [ "$rc" = 0 ] && [ "$out" = "hutch-helper 1" ]; then ok "--version"; else bad "--version" "got '$out' rc $rc"; fi

# --- a full sandbox: identity, namespaces, read-only binds, caps, status ---
{ sandbox; op caps -; op chdir /tmp
  op exec sh -c 'echo "id=$(id -u):$(id -g) pid=$$ host=$(hostname) cwd=$PWD"
    grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb)" /proc/self/status | tr -s "\t" " "
    touch /usr/hutch-x 2>/dev/null || echo usr-ro
    touch /tmp/x && echo tmp-rw
    [ -e /oldroot ] || [ -e /newroot ] || echo no-host-root
    cat /proc/sys/kernel/core_pattern | wc -c | sed "s/^/core_pattern=/"
    [ -c /dev/null ] && echo x >/dev/null && echo devnull-ok
    [ -e /dev/pts/ptmx ] && echo devpts-ok
    echo "lo=$(cat /sys/class/net/lo/flags) nets=$(ls /sys/class/net | tr "\n" " ")"
    grep NoNewPrivs /proc/self/status | tr -s "\t" " "
    exit 42'
  op end; } >"$T/plan"
run_plan sandbox
expect "sandbox: uid 0, pid 2, hostname, cwd, exit code" 42 "id=0:0 pid=2 host=sbx cwd=/tmp" &&
expect "caps -: every capability set empty" 42 "CapInh: 0000000000000000" "CapPrm: 0000000000000000" \
	"CapEff: 0000000000000000" "CapBnd: 0000000000000000" "CapAmb: 0000000000000000" &&
expect "read-only /usr, writable /tmp, host root gone" 42 usr-ro tmp-rw no-host-root &&
expect "mask, /dev/null, devpts" 42 "core_pattern=0" devnull-ok devpts-ok &&
expect "fresh sysfs in the new netns, lo up, no-new-privs" 42 "lo=0x9 nets=lo " "NoNewPrivs: 1"

# --- host netns (not ours): no fresh sysfs, no fallback; the host's /sys bound read-only by the plan ---
hostnet() { ident_self; op unshare mount,ipc,uts; op unshare pid
  op base /tmp; op tmpfs /newroot 755; op bind /oldroot/usr /newroot/usr ro,rec
  for d in bin lib lib64; do op symlink usr/$d /newroot/$d; done
  op proc /newroot/proc; }
{ op report; hostnet; op sysfs /newroot/sys; op caps -; op exec true; op end; } >"$T/plan"
run_plan sysfs-refused 4>"$T/report"; cat "$T/report" >>"$T/out"
expect "sysfs in a network namespace we do not own -> 125, no silent fallback" 125 "error 14 EPERM mount sysfs on /newroot/sys" "exit 125"
{ hostnet; op bind /oldroot/sys /newroot/sys ro,rec; op tmpfs /newroot/t 755; op mkdir /newroot/t/d 700; op remount-ro /newroot/t
  op pivot /newroot; op remount-root-ro; op caps -
  op exec sh -c 'ls /sys/class/net | grep -qv "^lo$" && echo host-nets; touch /sys/x 2>/dev/null || echo sys-ro
    touch /t/d/x 2>/dev/null || echo t-ro; mkdir /y 2>/dev/null || echo root-ro; stat -c %a /t/d'; op end; } >"$T/plan"
run_plan sysfs
expect "host /sys as a read-only bind; remount-ro; remount-root-ro; mkdir mode" 0 host-nets sys-ro t-ro root-ro 700

# --- a daemon that dies before mounting is fatal ---
mkdir -p "$T/dm"
{ ident_self; op unshare mount; op daemon "$T/dm" /bin/false; op exec true; op end; } >"$T/plan"
run_plan daemonfail
expect "daemon exiting before its mount -> 125" 125 "daemon /bin/false exited (status 1) before mounting"

# --- scratch: one tmpfs of SIZE bytes shared by binds of its directories; detached before cleanup ---
mkdir -p "$T/sc"
{ ident_self; op unshare mount,ipc,uts,net; op scratch "$T/sc" 8388608 upper; op unshare pid
  op base /tmp; op bind "/oldroot$T/sc" /R rw; op tmpfs /newroot 755; op bind /oldroot/usr /newroot/usr ro,rec
  for d in bin lib lib64; do op symlink usr/$d /newroot/$d; done
  op proc /newroot/proc
  for d in a b; do op mkdir /R/$d 1777; op mkdir /newroot/$d 755; op bind /R/$d /newroot/$d rw; done
  op bind /oldroot/dev/zero /newroot/dev/zero rw,dev; op bind /oldroot/dev/null /newroot/dev/null rw,dev; op unreachable 192.0.2.77; op unreachable 2001:db8::77
  op pivot /newroot; op caps -; op cleanup "$T/sc"
  op exec sh -c 'dd if=/dev/zero of=/a/f bs=1M count=6 2>/dev/null; dd if=/dev/zero of=/b/g bs=1M count=6 2>&1 | grep -o "No space left on device" | head -1
    echo "total=$(( ($(du -k /a/f | cut -f1) + $(du -k /b/g | cut -f1)) / 1024 ))M mode=$(stat -c %a /a)"
    grep 4D0200C0 /proc/net/route | tr -s "[:space:]" " " | cut -d" " -f4 | sed "s/^/v4-route flags=/"
    grep -c "20010db8000000000000000000000077" /proc/net/ipv6_route | sed "s/^/v6-routes=/"'
  op end; } >"$T/plan"
run_plan scratch
expect "scratch: 8 MiB shared by two binds (ENOSPC), unreachable v4 and v6 routes (RTF_UP|RTF_HOST|RTF_REJECT)" 0 \
	"No space left on device" "total=8M mode=1777" "v4-route flags=0205" "v6-routes=1"
if [ -e "$T/sc" ]; then bad "scratch: detached and removed by cleanup" "$T/sc still exists"; else ok "scratch: detached and removed by cleanup"; fi
{ ident_self; op unshare mount; op scratch /tmp 0; op exec true; op end; } >"$T/plan"
run_plan scratch0
expect "invalid plan: scratch SIZE 0" 125 "scratch DIR SIZE(bytes, > 0)"
{ ident_self; op unshare mount; op scratch /tmp 10 ../x; op exec true; op end; } >"$T/plan"
run_plan scratchdot
expect "invalid plan: scratch SUBDIR with a path" 125 "scratch SUBDIR must be one path component"
{ ident_self; op unshare net; op unreachable 300.1.2.3; op exec true; op end; } >"$T/plan"
run_plan unreach
expect "unreachable: a bad address -> 125" 125 "unreachable: 300.1.2.3 is not an IPv4 or IPv6 address"

# --- caps kept in four sets; ambient stays empty (a uid switch inside drops them) ---
{ sandbox; op caps CHOWN,NET_BIND_SERVICE; op exec sh -c 'grep -E "^Cap" /proc/self/status | tr -s "\t" " "'; op end; } >"$T/plan"
run_plan caps
expect "caps CHOWN,NET_BIND_SERVICE in inh/prm/eff/bnd, none ambient" 0 "CapInh: 0000000000000401" \
	"CapPrm: 0000000000000401" "CapEff: 0000000000000401" "CapBnd: 0000000000000401" "CapAmb: 0000000000000000"
# a `user` other than 0 keeps no capability but the bounding set (no inheritable ones either)
{ ident_sub; namespaces; rootfs; op setsid; op no-new-privs; op caps CHOWN,SETGID,SETUID; op user 1000:1000
  op exec sh -c 'id -u; grep -E "^Cap" /proc/self/status | tr -s "\t" " "'; op end; } >"$T/plan"
run_plan caps-user
expect "user 1000: no inh/prm/eff/amb capabilities, bounding set kept" 0 1000 "CapInh: 0000000000000000" \
	"CapPrm: 0000000000000000" "CapEff: 0000000000000000" "CapBnd: 00000000000000c1" "CapAmb: 0000000000000000"

# --- exec errors: 127 / 126, reported as such ---
{ ident_self; op report; namespaces; rootfs; op caps -; op exec no-such-command-xyz; op end; } >"$T/plan"
run_plan notfound 4>"$T/report"; cp "$T/out" "$T/stderr"; cat "$T/report" >>"$T/out"
expect "exec: not found -> 127, the message on the report pipe" 127 "error 0 - no-such-command-xyz: command not found" "exit 127" &&
	if [ -s "$T/stderr" ]; then bad "exec: nothing on stderr with a report pipe" "stderr: $(cat "$T/stderr")"
	else ok "exec: nothing on stderr with a report pipe (hutch prints it)"; fi
{ ident_self; namespaces; rootfs; op caps -; op exec no-such-command-xyz; op end; } >"$T/plan"
run_plan notfound-stderr
expect "exec: not found -> 127, message on stderr without a report pipe" 127 "hutch: no-such-command-xyz: command not found"
{ sandbox op file /newroot/tmp/noexec 644 'echo hi'; op caps -; op exec /tmp/noexec; op end; } >"$T/plan"
run_plan noexec
expect "exec: no x permission -> 126" 126 "hutch: /tmp/noexec: Permission denied"
{ sandbox op file /newroot/tmp/garbage 755 'garbage'; op caps -; op exec /tmp/garbage; op end; } >"$T/plan"
run_plan enoexec
expect "exec: bad format -> 126" 126 "hutch: /tmp/garbage: Exec format error"
{ ident_self; namespaces; op base /tmp; op tmpfs /newroot 755; op bind /oldroot/usr/bin /newroot/usr/bin ro
  op pivot /newroot; op caps -; op exec /usr/bin/true; op end; } >"$T/plan"
run_plan noloader
expect "exec: ELF loader missing -> 126 with a clear message" 126 "hutch: /usr/bin/true: cannot run: its #! interpreter or ELF loader"
{ sandbox; op caps -; op env PATH /nonexistent:/usr/bin; op exec true; op end; } >"$T/plan"
run_plan path
expect "exec: PATH lookup uses the sandbox's PATH" 0

# --- setup errors: 125 with the op line ---
{ sandbox; op bind /oldroot/no/such/dir /newroot/x ro; op caps -; op exec true; op end; } >"$T/plan"
run_plan badbind
expect "setup error -> 125 naming the op" 125 "hutch: bind source /oldroot/no/such/dir: No such file or directory (op " "bind /oldroot/no/such/dir /newroot/x ro)"
badline=$(grep -n "^bind	/oldroot/no/such/dir" "$T/plan" | cut -d: -f1)
{ op report; cat "$T/plan"; } >"$T/plan2" && mv "$T/plan2" "$T/plan"
run_plan badbind-report 4>"$T/report"; cp "$T/out" "$T/stderr"; cat "$T/report" >>"$T/out"
expect "setup error on the report pipe: error LINE ERRNO TEXT, facts only" 125 "error $((badline + 1)) ENOENT bind source /oldroot/no/such/dir" "exit 125" &&
	if [ -s "$T/stderr" ]; then bad "setup error: nothing on stderr with a report pipe" "stderr: $(cat "$T/stderr")"
	else ok "setup error: nothing on stderr with a report pipe (hutch prints it)"; fi
{ op report; sandbox; op file /tmp/f 644 x; op bind /usr /tmp/f/x ro; op caps -; op exec true; op end; } >"$T/plan"
run_plan baddest 4>"$T/report"; cat "$T/report" >>"$T/out"
expect "bind destination failure: its own step word, errno name, no advice" 125 "ENOTDIR bind destination /tmp/f/x"
if grep -qiE "sandbox|use rec|hint|\(" "$T/report"; then bad "no advice in the helper's error lines" "$(grep error "$T/report")"; else ok "no advice in the helper's error lines"; fi
{ sandbox; op bind /oldroot/no/such/dir /newroot/x ro,try; op caps -; op exec true; op end; } >"$T/plan"
run_plan trybind
expect "bind try: missing source skipped" 0
{ sandbox; op chdir /nowhere; op exec true; op end; } >"$T/plan"
run_plan badchdir
expect "chdir missing -> 125" 125 "hutch: chdir /nowhere: No such file or directory"
{ op uidmap 0 "$uid" 1; op frobnicate x; op exec true; op end; } >"$T/plan"
run_plan badop
expect "invalid plan: unknown op -> 125 with line" 125 "invalid plan: unknown operation (op 2: frobnicate x)"
{ op exec true; } >"$T/plan"
run_plan noend
expect "invalid plan: missing end" 125 "without an \`end\` line"
printf 'exec\ta%%zzb\nend\n' >"$T/plan"
"$HELPER" check 3<"$T/plan" >"$T/out" 2>&1; rc=$?
expect "check: bad escape rejected" 125 "bad %-escape"
{ sandbox op file /newroot/tmp/f 644 $'a\tb\nc%'; op caps -; op exec sh -c 'od -c /tmp/f | head -1'; op end; } >"$T/plan"
run_plan escapes
expect "file op with %-escapes" 0 "a  \\t   b  \\n   c   %"

# --- check: every numeric field refuses malformed numbers ---
# check_plan: `hutch-helper check` on $T/plan; sets rc, output in $T/out
check_plan() { "$HELPER" check 3<"$T/plan" >"$T/out" 2>&1; rc=$?; }
# numeric_plan FIELD VALUE: a plan that is valid but for VALUE in FIELD (line 6 or 9)
numeric_plan() {
	local f=$1 v=$2 m=(0 "$uid" 1 0 "$gid" 1 755 4096 700 644 7 0 0)
	case $f in
	uid-inside) m[0]=$v ;; uid-outside) m[1]=$v ;; uid-count) m[2]=$v ;;
	gid-inside) m[3]=$v ;; gid-outside) m[4]=$v ;; gid-count) m[5]=$v ;;
	tmpfs-mode) m[6]=$v ;; tmpfs-size) m[7]=$v ;; mkdir-mode) m[8]=$v ;; file-mode) m[9]=$v ;;
	keep-fd) m[10]=$v ;; user-uid) m[11]=$v ;; user-gid) m[12]=$v ;;
	esac
	{ op "# numeric fields"; op uidmap "${m[0]}" "${m[1]}" "${m[2]}"; op gidmap "${m[3]}" "${m[4]}" "${m[5]}"; op userns
	  op base /tmp; op tmpfs /newroot "${m[6]}" "${m[7]}"; op mkdir /newroot/d "${m[8]}"; op file /newroot/f "${m[9]}" x
	  op pivot /newroot; op keep-fd "${m[10]}"; op user "${m[11]}:${m[12]}"; op exec true; op end; } >"$T/plan"
}
numeric_plan none 0; check_plan
expect "check: the plan for the numeric checks is valid" 0
# not digits, signs, spaces, hex, exponent, overflow of 64 bits
malformed=("" x 1x -1 +1 " 1" "1 " 0x10 1e3 99999999999999999999999)
for spec in uid-inside:2 uid-outside:2 uid-count:2 gid-inside:3 gid-outside:3 gid-count:3 \
	tmpfs-mode:6 tmpfs-size:6 mkdir-mode:7 file-mode:8 keep-fd:10 user-uid:11 user-gid:11; do
	f=${spec%:*} line=${spec#*:}
	case $f in
	uid-*|gid-*) vals=("${malformed[@]}" 4294967296) ;;             # 32 bits
	*-mode) vals=("${malformed[@]}" 8 9 18 10000) ;;                 # octal, at most 7777
	keep-fd) vals=("${malformed[@]}" 0 2 1048577) ;;                 # 3 .. 2^20
	user-*) vals=(4294967295 4294967296 99999999999999999999999) ;;  # else a name
	*) vals=("${malformed[@]}") ;;
	esac
	why=""
	for v in "${vals[@]}"; do
		numeric_plan "$f" "$v"; check_plan
		if [ "$rc" != 125 ] || ! grep -qF "invalid plan:" "$T/out" || ! grep -qF "(op $line: " "$T/out"; then
			why="value '$v': exit $rc, want 125 with 'invalid plan:' and '(op $line: '"; break
		fi
	done
	if [ -z "$why" ]; then ok "check refuses malformed $f (${#vals[@]} values)"; else bad "check refuses malformed $f" "$why"; fi
done

# --- seccomp: at most 128 names per op (duplicates count), checked by check ---
names=acct,add_key,bpf,delete_module,finit_module,init_module,kexec_load,keyctl,perf_event_open,reboot,swapon,swapoff,personality
seccomp_names() { local i out=$1; for ((i = 1; i < $2; i++)); do out+=,$1; done; printf '%s' "$out"; }
{ op no-new-privs; op seccomp "$(seccomp_names reboot 128)"; op exec true; op end; } >"$T/plan"
check_plan
expect "check: seccomp with 128 names (duplicates) accepted" 0
{ op no-new-privs; op seccomp "$(seccomp_names reboot 129)"; op exec true; op end; } >"$T/plan"
check_plan
expect "check: seccomp with 129 names refused, naming the line" 125 "invalid plan: seccomp: more than 128 names (op 2: seccomp reboot,reboot"
{ op no-new-privs; op seccomp "$(seccomp_names "$names" 9)"; op exec true; op end; } >"$T/plan"
check_plan
expect "check: seccomp with 117 names (repeated lists) accepted" 0
# applied: personality(2) answers EPERM, everything else still works
{ sandbox; op caps -; op exec sh -c 'setarch "$(uname -m)" -R true && echo personality-ok'; op end; } >"$T/plan"
run_plan seccomp-control
if expect "seccomp control: personality works without a filter" 0 personality-ok; then
	{ sandbox; op caps -; op seccomp "$(seccomp_names "$names" 9)"
	  op exec sh -c 'setarch "$(uname -m)" -R true 2>&1 || echo personality-denied'; op end; } >"$T/plan"
	run_plan seccomp
	expect "seccomp (repeated names) applied: personality -> EPERM, the command runs" 0 \
		"Operation not permitted" personality-denied
else
	skip "seccomp (repeated names) applied" "the control failed, setarch cannot show the filter here"
fi

# --- no-setid: no mode with S_ISUID/S_ISGID, ordinary modes still work ---
{ op no-setid; op exec true; op end; } >"$T/plan"
"$HELPER" check 3<"$T/plan" >"$T/out" 2>&1; rc=$?
expect "check: no-setid needs no-new-privs before it" 125 "no-setid needs no-new-privs before it"
{ sandbox op tmpfs /newroot/w 1777; op caps -; op no-setid
  op exec sh -c 'touch /w/f; chmod 644 /w/f && echo plain-ok; chmod u+s /w/f 2>/dev/null || echo suid-denied
    chmod g+s /w/f 2>/dev/null || echo sgid-denied; install -m 4755 /bin/true /w/t 2>/dev/null || echo install-denied
    stat -c %a /w/f'; op end; } >"$T/plan"
run_plan no-setid
expect "no-setid: chmod u+s, g+s, install -m 4755 refused; chmod 644 works" 0 plain-ok suid-denied sgid-denied install-denied 644

# --- pid 1 after setup: no capabilities, not dumpable, own session, no terminal ---
{ sandbox; op exec sh -c 'grep -E "^Cap(Prm|Eff|Bnd)" /proc/1/status | tr -s "\t" " "
    cut -d" " -f6,7 /proc/1/stat | sed "s/^/session-tty=/"
    cat /proc/1/environ 2>/dev/null | tr "\0" "\n" | grep -c HUTCH_T_SECRET | sed "s/^/secret=/"
    grep CapEff /proc/self/status | tr -s "\t" " "'; op end; } >"$T/plan"
HUTCH_T_SECRET=x run_plan pid1
expect "pid 1: no capabilities once the command runs (the command keeps its own)" 0 "CapPrm: 0000000000000000" \
	"CapEff: 0000000000000000" "CapBnd: 0000000000000000" "session-tty=1 0" "secret=0"
if grep -q "^CapEff: 0000000000000000" <(sed -n '/session-tty/,$p' "$T/out"); then
	bad "pid 1 drop leaves the command alone" "the command lost its capabilities"
else
	ok "pid 1 drop leaves the command alone"
fi

# --- signals: forwarded monitor -> init -> command ---
{ sandbox; op caps -; op exec sh -c 'trap "echo got-TERM; exit 7" TERM; echo ready; sleep 20 & wait'; op end; } >"$T/plan"
"$HELPER" run 3<"$T/plan" >"$T/out" 2>&1 &
hp=$!
for i in $(seq 50); do grep -q ready "$T/out" && break; sleep 0.1; done
kill -TERM $hp; wait $hp; rc=$?
expect "SIGTERM forwarded to the command, its exit code returned" 7 got-TERM
{ sandbox; op caps -; op exec sh -c 'echo ready; exec sleep 20'; op end; } >"$T/plan"
"$HELPER" run 3<"$T/plan" >"$T/out" 2>&1 &
hp=$!
for i in $(seq 50); do grep -q ready "$T/out" && break; sleep 0.1; done
kill -INT $hp; wait $hp; rc=$?
expect "command killed by SIGINT -> 130" 130

# --- pid 1 reaps orphans ---
{ sandbox; op caps -; op exec sh -c 'sh -c "sleep 0.2 & sleep 0.1 & exit 0"; sleep 0.8
    n=0; for s in /proc/[0-9]*/stat; do case $(cut -d" " -f3 $s 2>/dev/null) in Z) n=$((n+1));; esac; done; echo zombies=$n'; op end; } >"$T/plan"
run_plan zombies
expect "orphaned zombies reaped by pid 1" 0 zombies=0

# --- report + sync ---
{ ident_self; op report; op unshare mount,ipc,uts,net; op sync; op unshare pid; rootfs; op caps -; op exec true; op end; } >"$T/plan"
run_plan sync 4>"$T/report" 5< <(sleep 0.2; printf x); cat "$T/report" >>"$T/out"
expect "report: pid, init, exit lines; sync waits for the go byte" 0 "pid " "init " "exit 0"
run_plan syncabort 4>"$T/report" 5</dev/null; cat "$T/report" >>"$T/out"
expect "sync: go pipe closed -> 125" 125 "error 6 - sync: hutch closed the go pipe" "exit 125"
# sync-exec: a second go byte right before the command; the init stays
# dumpable until then (the NAT joins through /proc/INITPID/ns), not after.
{ ident_self; op report; op unshare mount,ipc,uts,net; op sync; op unshare pid; rootfs; op sync-exec; op caps -; op exec sh -c 'echo command-ran'; op end; } >"$T/plan"
run_plan syncexec 4>"$T/report" 5< <(printf x; sleep 0.2; printf y); cat "$T/report" >>"$T/out"
expect "sync-exec: the command starts after the second go byte" 0 "command-ran" "exit 0"
run_plan syncexecabort 4>"$T/report" 5< <(printf x); cat "$T/report" >>"$T/out"
if grep -q command-ran "$T/out"; then bad "sync-exec: no second byte -> the command never starts" "it ran"; else
	expect "sync-exec: no second byte -> the command never starts" 125 "sync-exec: hutch closed the go pipe" "exit 125"; fi
{ ident_self; op report; op unshare mount,ipc,uts,net; op sync; rootfs; op sync-exec; op exec sleep 5; op end; } >"$T/plan"; check_plan
expect "check: sync-exec after sync is accepted" 0
{ ident_self; op unshare mount,ipc,uts,net; rootfs; op sync-exec; op exec true; op end; } >"$T/plan"; check_plan
expect "check: sync-exec without report is refused" 125 "sync-exec needs a report op before it"
# sync-exec alone (no sync): hutch starts the NAT at the `init` line, one go byte
{ ident_self; op report; op unshare mount,ipc,uts,net; op unshare pid; rootfs; op sync-exec; op caps -; op exec sh -c 'echo command-ran'; op end; } >"$T/plan"
run_plan syncexeconly 4>"$T/report" 5< <(sleep 0.2; printf y); cat "$T/report" >>"$T/out"
expect "sync-exec without sync: the command starts after the one go byte" 0 "init " "command-ran" "exit 0"
if grep -q '^pid ' "$T/report"; then bad "sync-exec without sync: no pid line" "$(cat "$T/report")"; fi
run_plan syncexeconlyabort 4>"$T/report" 5</dev/null; cat "$T/report" >>"$T/out"
if grep -q command-ran "$T/out"; then bad "sync-exec without sync: go pipe closed -> the command never starts" "it ran"; else
	expect "sync-exec without sync: go pipe closed -> the command never starts" 125 "sync-exec: hutch closed the go pipe" "exit 125"; fi
if [ "$uid" != 0 ]; then
	# as a user: the init's namespaces are open to us before sync-exec, closed after
	rm -f "$T/go"; mkfifo "$T/go"
	{ ident_self; op report; op unshare mount,ipc,uts,net; op sync; op unshare pid; rootfs; op sync-exec; op caps -; op exec sleep 2; op end; } >"$T/plan"
	"$HELPER" run 3<"$T/plan" 4>"$T/report" 5<"$T/go" >"$T/out" 2>&1 &
	hp=$!
	exec 7>"$T/go"
	printf x >&7
	for _ in $(seq 100); do grep -q '^init ' "$T/report" && break; sleep 0.05; done
	ipid=$(sed -n 's/^init //p' "$T/report")
	before=$(readlink "/proc/$ipid/ns/net" 2>/dev/null)
	printf y >&7
	exec 7>&-
	sleep 0.5
	after=$(readlink "/proc/$ipid/ns/net" 2>/dev/null || { [ -e "/proc/$ipid/stat" ] && echo denied; })
	wait "$hp"
	rc=$?
	echo "before=$before after=$after" >>"$T/out"
	case "$before:$after" in
	net:*:denied) expect "sync-exec: the init's /proc/PID/ns opens before, not after" 0 ;;
	*) bad "sync-exec: the init's /proc/PID/ns opens before, not after" "before=$before after=$after" ;;
	esac
fi

# --- relay, tty, join (relay.c, join.c) ---
{ op relay 0,3; op exec true; op end; } >"$T/plan"; check_plan
expect "check: relay FDS only 0, 1, 2" 125 "relay FDS: a comma list of 0, 1, 2"
{ ident_self; op tty stdin; op exec true; op end; } >"$T/plan"; check_plan
expect "check: tty needs devpts and pivot" 125 "tty: one tty op"
{ op join 5 -; op exec true; op end; } >"$T/plan"; "$HELPER" run 3<"$T/plan" >"$T/out" 2>&1; rc=$?
expect "run: join is refused (exec mode only)" 125 "join\` is for hutch-helper exec"
{ op join 5 -; op tmpfs /x 755; op exec true; op end; } >"$T/plan"; check_plan
expect "check: join takes no filesystem op" 125 "not allowed with join"
{ ident_self; op relay 1,2; namespaces; rootfs; op setsid; op no-new-privs; op caps -; op exec sh -c 'readlink /proc/self/fd/1; echo to-stderr >&2'; op end; } >"$T/plan"
run_plan relay
expect "relay: the command's stdout is a pipe, its output reaches ours" 0 "pipe:[" "to-stderr"
{ ident_self; op report; namespaces; rootfs; op setsid; op no-new-privs; op caps -; op exec sh -c 'echo ready; exec sleep 20'; op end; } >"$T/plan"
"$HELPER" run 3<"$T/plan" 4>"$T/report" >"$T/sbx" 2>&1 &
hp=$!
for i in $(seq 50); do grep -q ready "$T/sbx" && break; sleep 0.1; done
ipid=$(sed -n 's/^init //p' "$T/report")
# pid 1 is not dumpable and its memory belongs to the host's user namespace, so
# an unprivileged caller joins through the command pid 1 started (as hutch exec does)
jpid=$ipid
for c in $(pgrep -P "$ipid"); do [ -r "/proc/$c/ns/user" ] && readlink "/proc/$c/ns/user" >/dev/null 2>&1 && jpid=$c && break; done
{ op join "$jpid" -; op clearenv; op env PATH /usr/bin:/bin; op no-new-privs; op caps -; op exec sh -c 'echo "host=$(hostname) comm2=$(cat /proc/2/comm) $(grep CapEff /proc/self/status)"'; op end; } >"$T/plan"
"$HELPER" exec 3<"$T/plan" >"$T/out" 2>&1; rc=$?
expect "exec mode: joins the sandbox (hostname, its pid 2), caps - applied" 0 "host=sbx comm2=sleep CapEff:	0000000000000000"
{ op join "$jpid" -; op exec sh -c 'exit 6'; op end; } >"$T/plan"
"$HELPER" exec 3<"$T/plan" >"$T/out" 2>&1; rc=$?
expect "exec mode: the command's exit status" 6
kill -KILL $hp; wait $hp 2>/dev/null

# --- lifeline: hutch (the plan writer) dies -> sandbox killed, cleanup runs ---
mkdir -p "$T/life/sub" && touch "$T/life/sub/f"
{ sandbox; op caps -; op cleanup "$T/life"; op exec sleep 30; op end; } >"$T/plan"
start=$(date +%s)
{ cat "$T/plan"; sleep 1; } | "$HELPER" run 3<&0 </dev/null >"$T/out" 2>&1; rc=$?
el=$(( $(date +%s) - start ))
if [ "$rc" = 137 ] && [ "$el" -lt 10 ] && [ ! -e "$T/life" ]; then ok "lifeline EOF -> SIGKILL, cleanup, exit 137"
else bad "lifeline" "rc=$rc elapsed=${el}s exists=$([ -e "$T/life" ] && echo yes || echo no)"; fi

# --- detached sandboxes: log, exit-file, timeout, detach, hold, remove-cgroup (log.c, monitor.c) ---
mkdir -p "$T/rec"
ident_sandbox_ops() { ident_self; op report; op detach; op log "$T/rec/log" "$1"; [ -n "${2:-}" ] && op timeout "$2"; namespaces; rootfs; op setsid; op no-new-privs; op caps -; op exit-file "$T/rec/exit"; }
{ ident_sandbox_ops 4096; op exec sh -c 'echo out-line; echo err-line >&2; printf partial; exit 7'; op end; } >"$T/plan"
run_plan log 4>"$T/report"
if [ "$rc" = 7 ] && grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z stdout F out-line$' "$T/rec/log" &&
	grep -q ' stderr F err-line$' "$T/rec/log" && grep -q ' stdout P partial$' "$T/rec/log" &&
	grep -qE '^7 [0-9-]{10}T[0-9:.]{12}Z$' "$T/rec/exit" && ! grep -q out-line "$T/out" && grep -qx running "$T/report"; then
	ok "log: k8s-file lines (F, P, stream), not on the helper's stdout; exit-file CODE TIME; report running"
else bad "log" "rc=$rc" "$(cat "$T/rec/log" "$T/rec/exit" "$T/report" 2>&1)"; fi
rm -f "$T/rec/"*
{ ident_sandbox_ops 8192; op exec sh -c 'i=0; while [ $i -lt 3000 ]; do echo "line $i of the log"; i=$((i+1)); done'; op end; } >"$T/plan"
run_plan log-rotation 4>/dev/null
s0=$(stat -c %s "$T/rec/log" 2>/dev/null || echo 0); s1=$(stat -c %s "$T/rec/log.1" 2>/dev/null || echo 0)
if [ "$rc" = 0 ] && [ "$s1" -gt 4096 ] && [ "$s1" -le 8192 ] && [ "$s0" -le 8192 ] && tail -n 1 "$T/rec/log" | grep -q 'F line 2999 of the log$'; then
	ok "log: rotated to log.1 at MAXSIZE, both bounded ($s0, $s1 bytes), the last line in log"
else bad "log rotation" "rc=$rc log=$s0 log.1=$s1" "$(ls -l "$T/rec")"; fi
rm -f "$T/rec/"*
{ ident_sandbox_ops 4096 300; op exec sleep 30; op end; } >"$T/plan"
start=$(date +%s); run_plan timeout 4>/dev/null; el=$(( $(date +%s) - start ))
if [ "$rc" = 124 ] && [ "$el" -lt 10 ] && grep -q 'stderr F hutch: warning: killed: timeout 300 ms reached' "$T/rec/log" && grep -q '^124 ' "$T/rec/exit"; then
	ok "timeout: SIGKILL after MS, exit 124, said in the log"
else bad "timeout" "rc=$rc elapsed=${el}s" "$(cat "$T/rec/log" "$T/rec/exit" 2>&1)"; fi
rm -f "$T/rec/"*
{ ident_sandbox_ops 4096; op cleanup "$T/life2"; op exec sh -c 'sleep 1; echo still-here; exit 3'; op end; } >"$T/plan"
mkdir -p "$T/life2"
{ cat "$T/plan"; sleep 0.5; printf d; } | "$HELPER" run 3<&0 4>/dev/null </dev/null >"$T/out" 2>&1; rc=$?
if [ "$rc" = 3 ] && grep -q 'F still-here$' "$T/rec/log" && grep -q '^3 ' "$T/rec/exit" && [ ! -e "$T/life2" ]; then
	ok "detach: a d on the lifeline releases it; the sandbox runs on, cleanup and exit-file follow"
else bad "detach" "rc=$rc" "$(cat "$T/rec/log" "$T/rec/exit" 2>&1)"; fi
{ cat "$T/plan" | sed '/^detach$/d'; sleep 0.5; printf d; } | "$HELPER" run 3<&0 4>/dev/null </dev/null >"$T/out" 2>&1; rc=$?
expect "without detach a d changes nothing: EOF of the lifeline kills (137)" 137
# --- handover: an `a` on the lifeline, then the parent execs `hutch-helper await` (monitor.c, await.c) ---
# handover_run SCRIPT: a shell starts the helper on a fifo lifeline, writes the plan, then `a`, and execs await in
# its own pid (so the monitor stays its child, as hutch does with process.execve); SCRIPT runs beside it.
handover_run() {
	rm -f "$T/life3" "$T/await.pid"; mkfifo "$T/life3"
	HELPER="$HELPER" T="$T" sh -c '"$HELPER" run 3<"$T/life3" 4>/dev/null </dev/null >"$T/out" 2>&1 & m=$!
		exec 5>"$T/life3"; cat "$T/plan" >&5; sleep 0.3; printf a >&5; exec 5>&-; echo $$ >"$T/await.pid"
		exec "$HELPER" await "$m" "$m" - - 0 -' &
	ap=$!
	eval "$1"
	wait "$ap"; rc=$?
}
mkdir -p "$T/life3d"
{ ident_self; namespaces; rootfs; op cleanup "$T/life3d"; op exec sh -c 'sleep 1; exit 3'; op end; } >"$T/plan"
handover_run :
if [ "$rc" = 3 ] && [ ! -e "$T/life3d" ]; then ok "handover: after an a the lifeline's EOF is no loss; await exits with the command's status, cleanup ran"
else bad "handover" "rc=$rc exists=$([ -e "$T/life3d" ] && echo yes || echo no)"; fi
mkdir -p "$T/life3d"
{ ident_self; namespaces; rootfs; op cleanup "$T/life3d"; op exec sleep 30; op end; } >"$T/plan"
start=$(date +%s)
handover_run 'sleep 1; kill -TERM "$(cat "$T/await.pid")"'
if [ "$rc" = 143 ] && [ "$(( $(date +%s) - start ))" -lt 10 ] && [ ! -e "$T/life3d" ]; then ok "handover: await forwards SIGTERM (143)"
else bad "handover SIGTERM" "rc=$rc"; fi
mkdir -p "$T/life3d"
start=$(date +%s)
handover_run 'sleep 1; kill -KILL "$(cat "$T/await.pid")"; for i in $(seq 50); do [ -e "$T/life3d" ] || break; sleep 0.1; done'
if [ "$rc" = 137 ] && [ "$(( $(date +%s) - start ))" -lt 10 ] && [ ! -e "$T/life3d" ]; then ok "handover: SIGKILL of await = the lifeline lost (pidfd): sandbox killed, cleanup ran"
else bad "handover SIGKILL" "rc=$rc exists=$([ -e "$T/life3d" ] && echo yes || echo no)"; fi

rm -f "$T/rec/"* "$T/hold"; mkfifo "$T/hold"
{ ident_self; op hold 6; namespaces; rootfs; op caps -; op exec sh -c 'echo "fds: $(ls /proc/self/fd | tr "\n" " ")"; sleep 30'; op end; } >"$T/plan"
"$HELPER" run 3<"$T/plan" 6>"$T/hold" >"$T/out" 2>&1 &
hp=$!
mkdir "$T/cg.$hp" 2>/dev/null
exec {hr}<"$T/hold"
for i in $(seq 50); do grep -q fds: "$T/out" && break; sleep 0.1; done
killed=no; kill -KILL $hp && killed=yes; wait $hp 2>/dev/null
if [ $killed = yes ] && timeout 5 cat <&$hr >/dev/null && grep -q '^fds: 0 1 2 3 $' "$T/out"; then ok "hold: the peer of fd 6 sees EOF when the monitor is SIGKILLed; the command has no fd 6"
else bad "hold" "$(cat "$T/out")"; fi
exec {hr}<&-
{ ident_self; namespaces; rootfs; op caps -; op remove-cgroup "$T/cg"; op exec sleep 0.5; op end; } >"$T/plan"
"$HELPER" run 3<"$T/plan" >"$T/out" 2>&1 &
hp=$!; mkdir "$T/cg.$hp"; mkdir -p "$T/cg.other"; wait $hp; rc=$?
if [ "$rc" = 0 ] && [ ! -e "$T/cg.$hp" ] && [ -d "$T/cg.other" ]; then ok "remove-cgroup PREFIX: removes PREFIX.MONITORPID only"
else bad "remove-cgroup" "rc=$rc" "$(ls "$T")"; fi
{ ident_self; op detach; op relay 1; op exec true; op end; } >"$T/plan"; check_plan
expect "check: detach not with relay" 125 "detach: not with tty or relay"
{ ident_self; op log /tmp/x 4096; op relay 2; op exec true; op end; } >"$T/plan"; check_plan
expect "check: log not with a relay of fd 1 or 2" 125 "relay of fd 1 or 2 with a log op"
{ ident_self; op log /tmp/x 100; op exec true; op end; } >"$T/plan"; check_plan
expect "check: log MAXSIZE at least 4096" 125 "log PATH MAXSIZE"
{ ident_self; op hold 4; op exec true; op end; } >"$T/plan"; check_plan
expect "check: hold FD >= 6" 125 "hold FD must be a number >= 6"

# --- keep-fd and closing of everything else ---
echo kept-content >"$T/kept"
{ ident_self; op report; namespaces; rootfs; op caps -; op keep-fd 7; op exec sh -c 'cat <&7; ls /proc/self/fd | tr "\n" " "; echo'; op end; } >"$T/plan"
run_plan keepfd 4>"$T/report" 7<"$T/kept" 8<"$T/kept"
if [ "$rc" = 0 ] && grep -q kept-content "$T/out" && grep -qx "0 1 2 3 7 " "$T/out"; then ok "keep-fd passes fd 7, closes 4 and 8"
else bad "keep-fd" "rc=$rc"; fi

# --- symlinks inside the sandbox cannot redirect writes/mounts to the host ---
mkdir -p "$T/escape"
{ ident_self; namespaces
  op base /tmp; op tmpfs /newroot 755
  op symlink "$T/escape" /newroot/evil
  op mkdir "/newroot$T/escape" 755
  op file /newroot/evil/pwned 644 inside
  op symlink "$T/escape" /newroot/evil2
  op mkdir "/newroot$T/escape/sub" 755
  op bind /oldroot/usr /newroot/evil2/sub ro,rec
  op bind /oldroot/usr /newroot/usr ro,rec; op symlink usr/bin /newroot/bin; op symlink usr/lib /newroot/lib; op symlink usr/lib64 /newroot/lib64
  op pivot /newroot; op caps -
  op exec /bin/sh -c "cat $T/escape/pwned; ls $T/escape/sub | head -1"; op end; } >"$T/plan"
run_plan escape
if [ "$rc" = 0 ] && grep -q inside "$T/out" && [ ! -e "$T/escape/pwned" ] && [ -z "$(ls -A "$T/escape")" ]; then
	ok "symlinks resolve inside /newroot (file, bind): host untouched"
else bad "symlink escape" "rc=$rc host: $(ls -A "$T/escape")"; fi

# --- kernel overlayfs with the upper dir on the host ---
mkdir -p "$T/ovl/up" "$T/ovl/work"
{ sandbox op overlay /newroot/usr /oldroot/usr "/oldroot$T/ovl/up" "/oldroot$T/ovl/work" userxattr
  op caps -; op exec sh -c 'echo hi >/usr/hutch-file && cat /usr/hutch-file && test -x /usr/bin/env && echo lower-ok
    grep " /usr " /proc/self/mountinfo | grep -q userxattr && echo has-userxattr'; op end; } >"$T/plan"
run_plan overlay
if expect "overlay with its userxattr field over /usr: writes go to the upper dir, option set" 0 hi lower-ok has-userxattr; then
	[ -f "$T/ovl/up/hutch-file" ] && ok "overlay upper dir holds the new file" || bad "overlay upper" "no $T/ovl/up/hutch-file"
fi

{ op base /tmp; op overlay /newroot /oldroot/usr /up/u /up/w xattr; op exec true; op end; } >"$T/plan"
check_plan
expect "check: overlay's fifth field can only be userxattr" 125 "invalid plan: overlay DEST LOWERS UPPER WORK [userxattr] (op 2: "

# --- subordinate ids (newuidmap/newgidmap), files owned by them, cleanup ---
mkdir -p "$T/data"
{ ident_sub; namespaces; rootfs op bind "/oldroot$T/data" /newroot/data rw
  op caps CHOWN,DAC_OVERRIDE,FOWNER; op cleanup "$T/data/d"
  op exec sh -c 'cat /proc/self/uid_map | tr -s " " | tr "\n" ";"; echo
    mkdir -p /data/d/e && echo x >/data/d/e/f && chown -R 1000:1000 /data/d && chmod 500 /data/d/e /data/d && echo chowned'
  op end; } >"$T/plan"
run_plan subids
if expect "newuidmap/newgidmap: full subordinate range mapped, chown to 1000 works" 0 " 0 $uid 1;" " 1 " chowned; then
	[ ! -e "$T/data/d" ] && ok "cleanup removes subordinate-owned read-only dirs" || bad "cleanup subids" "$T/data/d still there: $(ls -la "$T/data/d")"
fi

# --- chown: the path itself (never a symlink's target), mapped ids only ---
owned_home() { op tmpfs /newroot/h 700; op chown /newroot/h 1000 1000; op symlink /h /newroot/l; op chown /newroot/l 1000 1000; }
{ ident_sub; namespaces; rootfs owned_home
  op caps -; op exec sh -c 'stat -c "%u:%g:%a" /h; stat -c "%u:%g" /tmp; stat -c "link=%u:%g" /l'
  op end; } >"$T/plan"
run_plan chown
expect "chown: a tmpfs owned by uid 1000, a symlink itself" 0 "1000:1000:700" "0:0" "link=1000:1000"
{ ident_self; namespaces; rootfs owned_home; op exec true; op end; } >"$T/plan"
run_plan chown-unmapped
expect "chown to an unmapped id -> 125 naming it" 125 "chown /newroot/h 1000:1000 (an id the user namespace does not map)"

# --- cleanup never follows symlinks ---
mkdir -p "$T/victim" "$T/c/ro/deep" && touch "$T/victim/keep" "$T/c/ro/deep/f"
ln -s "$T/victim" "$T/c/link"; ln -s "$T/victim/keep" "$T/c/filelink"; chmod 000 "$T/c/ro/deep"; chmod 500 "$T/c/ro"
{ op cleanup "$T/c"; op exec true; op end; } >"$T/plan"
run_plan cleanup
if [ "$rc" = 0 ] && [ ! -e "$T/c" ] && [ -f "$T/victim/keep" ]; then ok "cleanup: read-only dirs removed, symlink targets kept"
else bad "cleanup" "rc=$rc c exists: $([ -e "$T/c" ] && echo yes) victim: $(ls "$T/victim")"; fi

# --- cleanup refuses a path through a symlink, and a parent others can write ---
mkdir -p "$T/real/v" "$T/open/v" && touch "$T/real/v/keep" "$T/open/v/keep" && ln -s "$T/real" "$T/via" && chmod 777 "$T/open"
{ op cleanup "$T/via/v"; op cleanup "$T/open/v"; op exec true; op end; } >"$T/plan"
run_plan cleanup-unsafe
if [ "$rc" = 0 ] && [ -f "$T/real/v/keep" ] && [ -f "$T/open/v/keep" ] && grep -q "symbolic link" "$T/out" && grep -q "not private" "$T/out"; then
	ok "cleanup: nothing removed through a symlinked parent or below a parent others can write"
else bad "cleanup unsafe parents" "rc=$rc real: $(ls "$T/real/v") open: $(ls "$T/open/v")"; fi
chmod 755 "$T/open"

# --- fuse-overlayfs as a daemon in the monitor's mount namespace ---
if [ -x /usr/bin/fuse-overlayfs ] && [ -r /dev/fuse ] && [ -w /dev/fuse ]; then
	mkdir -p "$T/f/lower" "$T/f/up" "$T/f/work" "$T/f/merged" && echo from-lower >"$T/f/lower/l"
	{ ident_self; op unshare mount
	  op daemon "$T/f/merged" /usr/bin/fuse-overlayfs -f -o "lowerdir=$T/f/lower,upperdir=$T/f/up,workdir=$T/f/work" "$T/f/merged"
	  op unshare ipc,uts,net; op unshare pid
	  rootfs op bind "/oldroot$T/f/merged" /newroot/m rw
	  op caps -; op exec sh -c 'cat /m/l; echo new >/m/n'; op end; } >"$T/plan"
	run_plan fuse
	if expect "daemon: fuse-overlayfs mounted before the init, visible inside" 0 from-lower; then
		[ "$(cat "$T/f/up/n" 2>/dev/null)" = new ] && ok "fuse-overlayfs upper dir got the write; daemon stopped" ||
			bad "fuse upper" "no $T/f/up/n"
	fi
else
	why="no /usr/bin/fuse-overlayfs or no access to /dev/fuse"
	skip "daemon: fuse-overlayfs mounted before the init" "$why"
	skip "fuse-overlayfs upper dir got the write" "$why"
fi

echo "# $user: $pass passed, $failed failed, $skipped skipped"
result=$failed

# as root, run the whole thing again as the unprivileged test user
if [ "$uid" = 0 ] && [ -z "${HUTCH_TEST_INNER:-}" ]; then
	tu=${HUTCH_TEST_USER:-hutchdev}
	if id "$tu" >/dev/null 2>&1; then
		cp "$HELPER" "$T/hutch-helper" && cp "$0" "$T/test-helper.sh" && chmod 755 "$T/hutch-helper" "$T/test-helper.sh"
		# the sanitizer settings explicitly: runuser need not keep the environment
		runuser -u "$tu" -- env HUTCH_TEST_INNER=1 HELPER="$T/hutch-helper" \
			ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
			bash "$T/test-helper.sh" || result=$((result + 1))
	else
		skip "unprivileged run" "no user $tu (HUTCH_TEST_USER)"
	fi
fi
[ "$result" = 0 ]
