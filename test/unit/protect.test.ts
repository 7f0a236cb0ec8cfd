// hutch's own files inside read-write binds (src/sandbox/assemble.ts), and
// the warnings of capability grants (src/spec/cap-warnings.ts).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PlanBuilder } from '../../src/helper/plan';
import { ownPathsUnder, protectOwnFiles } from '../../src/sandbox/assemble';
import { capabilityWarnings } from '../../src/spec/cap-warnings';
import { CAPABILITIES } from '../../src/util/caps';

const OWN = ['/home/u/.local/bin/hutch', '/home/u/.local/share/hutch', '/home/u/.cache/hutch', '/home/u/.config/hutch', '/run/user/1000/hutch'];

function binds(source: string, target: string): string[] {
  const b = new PlanBuilder();
  protectOwnFiles(b, source, target, OWN);
  return b.build().ops.map((o) => (o.op === 'bind' ? `${o.src} ${o.dest} ${o.flags.ro ? 'ro' : 'rw'}` : o.op));
}

test('-v /:/host: the protected paths are under /host/ (the missing "/" of the old protectOwnFiles)', () => {
  const ops = binds('/', '/host');
  assert.ok(ops.includes('/oldroot/home/u/.cache/hutch /newroot/host/home/u/.cache/hutch ro'), ops.join('\n'));
  assert.ok(ops.includes('/oldroot/home/u/.local/bin/hutch /newroot/host/home/u/.local/bin/hutch ro'), ops.join('\n'));
  assert.ok(
    ops.every((o) => !o.includes('/newroot/hosthome')),
    ops.join('\n'),
  );
});

test('-v ~:/h: parents pinned once each, a parent before what is under it, all before the read-only binds', () => {
  const ops = binds('/home/u', '/h');
  const rw = ops.filter((o) => o.endsWith(' rw')).map((o) => o.split(' ')[1]);
  const ro = ops.filter((o) => o.endsWith(' ro')).map((o) => o.split(' ')[1]);
  assert.equal(
    [...rw].sort(),
    ['/newroot/h/.cache', '/newroot/h/.config', '/newroot/h/.local', '/newroot/h/.local/bin', '/newroot/h/.local/share'],
    ops.join('\n'),
  );
  assert.equal([...ro].sort(), ['/newroot/h/.cache/hutch', '/newroot/h/.config/hutch', '/newroot/h/.local/bin/hutch', '/newroot/h/.local/share/hutch']);
  assert.equal(
    ops.slice(0, rw.length).every((o) => o.endsWith(' rw')),
    true,
    'pins first',
  );
  assert.ok(rw.indexOf('/newroot/h/.local') < rw.indexOf('/newroot/h/.local/share'), 'a parent pinned before its child (else it would cover it)');
});

test('-v ~/.cache:/root/.cache: the hutch directory read-only, nothing to pin; unrelated binds untouched', () => {
  assert.equal(binds('/home/u/.cache', '/root/.cache'), ['/oldroot/home/u/.cache/hutch /newroot/root/.cache/hutch ro']);
  assert.equal(binds('/home/u/src', '/work'), []);
  assert.equal(binds('/home/u/.cache/hutch', '/x'), [], 'the bind of a protected dir itself is refused elsewhere (refuseOwnSource)');
});

test('ownPathsUnder: shallowest first, nothing inside another, not the source itself, no prefix confusion', () => {
  assert.equal(ownPathsUnder('/a', ['/a/b/c', '/a/b', '/a', '/ab/x', '/a/d']), ['/a/b', '/a/d']);
  assert.equal(ownPathsUnder('/', ['/x/y', '/x']), ['/x']);
});

test('capability warnings: SYS_ADMIN, SYS_PTRACE and ALL say what they give away; the default set says nothing', () => {
  assert.equal(capabilityWarnings(['CHOWN', 'NET_BIND_SERVICE']), []);
  const ptrace = capabilityWarnings(['SYS_PTRACE']);
  assert.is(ptrace.length, 1);
  assert.match(ptrace[0], /^CAP_SYS_PTRACE lets the command attach to/);
  const all = capabilityWarnings([...CAPABILITIES]);
  assert.is(all.length, 3);
  assert.match(all[0], /^ALL capabilities/);
  assert.match(all[1], /^CAP_SYS_ADMIN lets the command undo read-only and hiding mounts/);
});

test.run();
