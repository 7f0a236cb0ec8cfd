// Id maps (src/helper/identity.ts): --userns keep-id lays the subordinate ids
// around the caller's own id, podman's layout, without gaps or overlaps.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeMap, keepIdMaps } from '../../src/helper/identity';
import type { IdentityInfo, IdRange } from '../../src/host/ids';

function ids(uid: number, subs: [number, number][]): IdentityInfo {
  const map = (own: number): IdRange[] => {
    let next = 1;
    return [{ inside: 0, outside: own, count: 1 }, ...subs.map(([outside, count]) => ({ inside: (next += count) - count, outside, count }))];
  };
  return { uid, gid: uid, user: 'u', home: '/home/u', uidMap: map(uid), gidMap: map(uid), newuidmap: '/n', newgidmap: '/n' };
}

/** Every inside id 0..n-1 once, and which outside id it is. */
function flatten(map: readonly IdRange[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of map)
    for (let i = 0; i < m.count; i++) {
      assert.not.ok(out.has(m.inside + i), `inside ${m.inside + i} mapped twice`);
      out.set(m.inside + i, m.outside + i);
    }
  return out;
}

test('keep-id: 0..uid-1 -> first subordinate ids, uid -> the caller, uid+1.. -> the rest (podman)', () => {
  const m = keepIdMaps(ids(1000, [[100000, 65536]]))!;
  assert.equal(m.uidMap, [
    { inside: 0, outside: 100000, count: 1000 },
    { inside: 1000, outside: 1000, count: 1 },
    { inside: 1001, outside: 101000, count: 64536 },
  ]);
  assert.is(describeMap(m.uidMap), '0-999 -> 100000-100999, 1000 -> 1000, 1001-65536 -> 101000-165535');
});

test('keep-id: several subordinate ranges, one smaller than the uid, no gaps or overlaps', () => {
  const m = keepIdMaps(
    ids(1500, [
      [200000, 1000],
      [300000, 2000],
    ]),
  )!;
  const flat = flatten(m.uidMap);
  assert.is(flat.size, 3001);
  for (let i = 0; i < 3001; i++) assert.ok(flat.has(i), `inside ${i} mapped`);
  assert.is(flat.get(1500), 1500);
  assert.is(flat.get(0), 200000);
  assert.is(flat.get(1000), 300000);
  assert.is(flat.get(1501), 300500);
});

test('keep-id: real root keeps its maps; no subordinate ids: undefined', () => {
  const root = ids(0, []);
  assert.is(keepIdMaps(root), root);
  assert.is(keepIdMaps(ids(1000, [])), undefined);
});

test.run();
