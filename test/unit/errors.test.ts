// Helper failures as sentences (src/sandbox/errors.ts): the plan records
// which flag or profile field made each op (origins), the helper names the
// failing op by its plan line, and the sentence names what the user asked
// for. Also the policy that moved out of C: /sys under --network host, the
// overlay's userxattr, the user-namespace hint.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadProfile } from '../../src/profile/index';
import { resolveSpec, type SpecOverrides } from '../../src/spec/resolve';
import { assemblePlan } from '../../src/sandbox/assemble';
import { checkHelperResult, describeErrno, failureError } from '../../src/sandbox/errors';
import { formatPlan, opIndexOfLine, opLine, type Plan } from '../../src/helper/plan';
import { parseFailure } from '../../src/helper/spawn';
import type { Op } from '../../src/helper/ops';
import { overlayDriver } from '../../src/rootfs/overlay';
import { usernsRefusalHint } from '../../src/doctor/probe-userns';
import { hostFs, type HostFacts } from '../../src/host/facts';
import { HutchError } from '../../src/util/errors';
import { FAKE_CWD, FAKE_ENV, FAKE_HELPER, fakeHostTop, fakeIds, fakePaths, fakeResolveContext, noOverrides } from './lib/fake-host';

function facts(o: Partial<HostFacts> = {}): HostFacts {
  return {
    env: { ...FAKE_ENV },
    cwd: FAKE_CWD,
    arch: process.arch,
    ids: fakeIds(),
    homes: { own: ['/home/u'], all: ['/home', '/root', '/home/u'] },
    protectedDirs: [],
    procMounts: ['/proc'],
    totalMemory: 8 * 1024 ** 3,
    paths: fakePaths(),
    helper: FAKE_HELPER,
    protectedFiles: [],
    hasTimeNamespace: true,
    hostTop: fakeHostTop(),
    fs: hostFs,
    ...o,
  };
}

async function planFor(o: Partial<SpecOverrides>, profile = 'default', f: Partial<HostFacts> = {}): Promise<Plan> {
  const p = await loadProfile(profile, { cwd: FAKE_CWD, env: { ...FAKE_ENV } });
  const spec = resolveSpec(p, noOverrides({ network: 'none', name: 't', ...o }), fakeResolveContext());
  return assemblePlan(spec, facts(f), { sandboxDir: '/run/user/1000/hutch/t', storage: overlayDriver, syncBeforeStart: true });
}

/** The 1-based line of the first op matching `pred` in the text the helper reads (what it reports). */
function lineOf(plan: Plan, pred: (o: Op) => boolean): number {
  const text = formatPlan(plan, false).split('\n');
  const i = plan.ops.findIndex(pred);
  assert.ok(i >= 0, 'op not in the plan');
  const line = i + 2;
  assert.ok(text[line - 1].startsWith(`${plan.ops[i].op}`), `line ${line} is the op: ${text[line - 1]}`);
  return line;
}

function sentence(plan: Plan, line: number, errno: string | undefined, text: string): HutchError {
  return failureError(plan, { line, errno, text });
}

test('parseFailure reads error LINE ERRNO TEXT; a line without the fields is a whole message', () => {
  assert.equal(parseFailure('131 ENOENT chdir /nonexistent'), { line: 131, errno: 'ENOENT', text: 'chdir /nonexistent' });
  assert.equal(parseFailure('0 - ls: command not found'), { line: 0, errno: undefined, text: 'ls: command not found' });
  assert.equal(parseFailure('12 113 bind source /x y'), { line: 12, errno: '113', text: 'bind source /x y' });
  assert.equal(parseFailure('garbage'), { line: 0, text: 'garbage' });
});

test('describeErrno: the system text for a name, the number when unknown', () => {
  assert.is(describeErrno('ENOENT'), 'no such file or directory');
  assert.is(describeErrno('EACCES'), 'permission denied');
  assert.is(describeErrno('EROFS'), 'read-only file system');
  assert.is(describeErrno('4242'), 'error 4242');
});

test('line -> origin: the op on each reported line carries what the user asked for', async () => {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'hutch-unit-'));
  const plan = await planFor({ workdir: '/srv', volumes: [`${src}:/data`], tmpfs: ['/scratch'], user: '1000', readOnly: true });
  const text = formatPlan(plan, false).split('\n');
  // every origin's op is on line index+2 of the text the helper reads (a header line, then one op per line)
  for (const [i] of plan.origins) assert.is(text[i + 1], opLine(plan.ops[i]));
  const originAt = (pred: (o: Op) => boolean) => plan.origins.get(opIndexOfLine(lineOf(plan, pred)))?.what;
  assert.is(
    originAt((o) => o.op === 'chdir'),
    '-w /srv',
  );
  assert.is(
    originAt((o) => o.op === 'bind' && o.dest === '/newroot/data'),
    `-v ${src}:/data`,
  );
  assert.is(
    originAt((o) => o.op === 'mkdir' && o.path === '/newroot/scratch'),
    '--tmpfs /scratch',
  );
  // unsized: a directory of the RAM budget bound there
  assert.is(
    originAt((o) => o.op === 'bind' && o.dest === '/newroot/scratch'),
    '--tmpfs /scratch',
  );
  assert.is(
    originAt((o) => o.op === 'user'),
    '-u 1000',
  );
  assert.is(
    originAt((o) => o.op === 'remount-root-ro'),
    '--read-only',
  );
  assert.is(
    originAt((o) => o.op === 'remount-ro' && o.dest === '/newroot/usr'),
    '--read-only',
  );
  // and the sentence for a failure on such a line starts with it
  assert.match(
    sentence(
      plan,
      lineOf(plan, (o) => o.op === 'bind' && o.dest === '/newroot/scratch'),
      'ENOSPC',
      'bind /R/tmpfs1 on /newroot/scratch',
    ).message,
    /^--tmpfs \/scratch: /,
  );
  // the system parts carry none: /proc, /sys, /dev, the identity and namespace ops
  const system = new Set(['proc', 'sysfs', 'devpts', 'mqueue', 'userns', 'uidmap', 'gidmap', 'unshare', 'base', 'pivot', 'hostname', 'exec']);
  for (const [i] of plan.origins) assert.not.ok(system.has(plan.ops[i].op), `${opLine(plan.ops[i])} has an origin`);
  fs.rmSync(src, { recursive: true });
});

test('-w /nonexistent: no such directory in the sandbox', async () => {
  const plan = await planFor({ workdir: '/nonexistent' });
  const e = sentence(
    plan,
    lineOf(plan, (o) => o.op === 'chdir'),
    'ENOENT',
    'chdir /nonexistent',
  );
  assert.is(e.message, '-w /nonexistent: no such directory in the sandbox');
  assert.ok(e.hint);
  assert.is(e.exitCode, 125);
  assert.not.match(e.format(), /\(op \d+/);
});

test('-v SRC:DST: the mount point under a parent owned outside the sandbox, or on a read-only place', async () => {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'hutch-unit-'));
  const plan = await planFor({ volumes: [`${src}:/usr/x`] });
  const line = lineOf(plan, (o) => o.op === 'bind' && o.dest === '/newroot/usr/x');
  const denied = sentence(plan, line, 'EACCES', 'bind destination /newroot/usr/x');
  assert.is(
    denied.message,
    `-v ${src}:/usr/x: cannot create the mount point /usr/x: permission denied (its parent directory belongs to a user outside the sandbox)`,
  );
  assert.match(denied.hint!, /under a new top-level one such as \/work/);
  const ro = sentence(plan, line, 'EROFS', 'bind destination /newroot/usr/x');
  assert.is(ro.message, `-v ${src}:/usr/x: cannot create the mount point /usr/x: it is on a read-only file system`);
  const gone = sentence(plan, line, 'ENOENT', `bind source /oldroot${src}`);
  assert.is(gone.message, `-v ${src}:/usr/x: ${src} does not exist`);
  const other = sentence(plan, line, 'EPERM', `bind /oldroot${src} on /newroot/usr/x`);
  assert.is(other.message, `-v ${src}:/usr/x: operation not permitted`);
  fs.rmSync(src, { recursive: true });
});

test("a profile's mount is named by its field and file:line:col", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hutch-unit-'));
  const file = path.join(dir, 'p.yaml');
  fs.writeFileSync(file, `extends: default\nmounts:\n  - ${dir}:/opt/data\nworkdir: /opt/nowhere\n`);
  const plan = await planFor({}, file);
  const e = sentence(
    plan,
    lineOf(plan, (o) => o.op === 'bind' && o.dest === '/newroot/opt/data'),
    'EACCES',
    'bind destination /newroot/opt/data',
  );
  assert.match(e.format(), new RegExp(`^${file.replace(/[.]/g, '\\.')}:3:\\d+: mounts\\[0\\]: cannot create the mount point /opt/data: permission denied`));
  const w = sentence(
    plan,
    lineOf(plan, (o) => o.op === 'chdir'),
    'ENOENT',
    'chdir /opt/nowhere',
  );
  assert.match(w.format(), new RegExp(`^${file.replace(/[.]/g, '\\.')}:4:\\d+: workdir /opt/nowhere: no such directory in the sandbox`));
  fs.rmSync(dir, { recursive: true });
});

test('ops no one asked for name the system part, with the hint that moved out of C', async () => {
  const plan = await planFor({});
  const proc = sentence(
    plan,
    lineOf(plan, (o) => o.op === 'proc'),
    'EPERM',
    'mount proc on /newroot/proc',
  );
  assert.is(proc.message, 'mounting /proc: operation not permitted');
  assert.match(proc.hint!, /fresh procfs needs a pid namespace/);
  const dev = sentence(
    plan,
    lineOf(plan, (o) => o.op === 'bind' && o.dest === '/newroot/dev/null'),
    'ENOENT',
    'bind source /oldroot/dev/null',
  );
  assert.is(dev.message, 'mounting /dev/null on /dev/null: /dev/null does not exist');
  const ns = sentence(
    plan,
    lineOf(plan, (o) => o.op === 'userns'),
    'EPERM',
    'unshare(CLONE_NEWUSER)',
  );
  assert.is(ns.message, 'creating the user namespace: unshare(CLONE_NEWUSER): operation not permitted');
  assert.ok(ns.hint && /hutch doctor/.test(ns.hint));
  const mapper = sentence(
    plan,
    lineOf(plan, (o) => o.op === 'userns'),
    undefined,
    'newuidmap failed: newuidmap: uid range not allowed',
  );
  assert.is(mapper.message, 'creating the user namespace: newuidmap failed: newuidmap: uid range not allowed');
});

test('checkHelperResult: a setup failure throws its sentence; an exec failure is printed as is, status kept', async () => {
  const plan = await planFor({ workdir: '/nonexistent' });
  const line = lineOf(plan, (o) => o.op === 'chdir');
  const printed: string[] = [];
  try {
    checkHelperResult(plan, { exitCode: 125, errors: [{ line, errno: 'ENOENT', text: 'chdir /nonexistent' }] }, (l) => printed.push(l));
    assert.unreachable('no throw');
  } catch (e) {
    assert.instance(e, HutchError);
    assert.is((e as HutchError).message, '-w /nonexistent: no such directory in the sandbox');
  }
  const r = checkHelperResult(plan, { exitCode: 127, errors: [{ line: 0, text: 'nope: command not found' }] }, (l) => printed.push(l));
  assert.is(r.exitCode, 127);
  assert.equal(printed, ['nope: command not found']);
  // the command's own status 125 with nothing reported is the command's
  assert.is(checkHelperResult(plan, { exitCode: 125, errors: [] }, (l) => printed.push(l)).exitCode, 125);
});

test('-u ID not mapped: the id and where ids come from', async () => {
  const plan = await planFor({ user: '3999999999' });
  const e = sentence(
    plan,
    lineOf(plan, (o) => o.op === 'user'),
    'EINVAL',
    'switch to user 3999999999',
  );
  assert.is(e.message, '-u 3999999999: user 3999999999 is not mapped in the sandbox: ids other than 0 need subordinate ids in /etc/subuid');
  assert.match(e.hint!, /subordinate ids/);
});

test("/sys: a fresh sysfs in its own network namespace, the host's read-only with --network host", async () => {
  const own = await planFor({ network: 'none' });
  assert.ok(own.ops.some((o) => o.op === 'sysfs' && o.dest === '/newroot/sys'));
  assert.not.ok(own.ops.some((o) => o.op === 'bind' && o.src === '/oldroot/sys'));
  const host = await planFor({ network: 'host' });
  assert.not.ok(host.ops.some((o) => o.op === 'sysfs'));
  const bind = host.ops.find((o) => o.op === 'bind' && o.src === '/oldroot/sys');
  assert.equal(bind, { op: 'bind', src: '/oldroot/sys', dest: '/newroot/sys', flags: { ro: true, rec: true } });
});

test('overlay: userxattr is a field of the op, given inside a user namespace', async () => {
  const plan = await planFor({});
  const overlays = plan.ops.filter((o) => o.op === 'overlay');
  assert.ok(overlays.length > 0);
  for (const o of overlays) assert.is((o as { userxattr: boolean }).userxattr, true);
  assert.match(formatPlan(plan), /^overlay\t\/newroot\/usr\t\/oldroot\/usr\t\/R\/up\/upper\/usr\t\/R\/up\/work\/usr\tuserxattr$/m);
  // the initial namespace's map (0 0 4294967295) is no child namespace: no userxattr
  const full = [{ inside: 0, outside: 0, count: 4294967295 }];
  const initial = await planFor({}, 'default', { ids: fakeIds({ uidMap: full, gidMap: full }) });
  for (const o of initial.ops.filter((o) => o.op === 'overlay')) assert.is((o as { userxattr: boolean }).userxattr, false);
  assert.not.match(formatPlan(initial), /userxattr/);
});

test('the report op comes first, so that the identity ops are reported too', async () => {
  const plan = await planFor({});
  const first = plan.ops.findIndex((o) => o.op === 'report');
  assert.ok(first >= 0 && first < plan.ops.findIndex((o) => o.op === 'userns'));
  assert.is(plan.ops.filter((o) => o.op === 'report').length, 1);
});

test('usernsRefusalHint: the most specific sysctl first', () => {
  const at = (v: Record<string, string>) => (name: string) => v[name];
  assert.match(usernsRefusalHint(at({ 'kernel.unprivileged_userns_clone': '0', 'user.max_user_namespaces': '0' })), /kernel\.unprivileged_userns_clone=1/);
  assert.match(usernsRefusalHint(at({ 'user.max_user_namespaces': '0' })), /user\.max_user_namespaces is 0/);
  assert.match(usernsRefusalHint(at({ 'kernel.apparmor_restrict_unprivileged_userns': '1', 'user.max_user_namespaces': '1000' })), /AppArmor/);
  assert.match(usernsRefusalHint(at({})), /hutch doctor checks/);
});

test.run();
