// Storage driver choice (src/rootfs/choose.ts): what `auto` picks and how a
// driver the host cannot run is refused. What every driver must do is the
// contract suite, test/integration/storage-contract.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, runHutch } from '../lib/hutch';

test('auto: the dry run names the driver it picked and why', async () => {
  const r = expectExit(await runHutch(['run', '--network', 'none', '--dry-run', '--', 'true']));
  assert.match(
    r.stdout,
    /^# storage driver: (overlay \(kernel overlayfs works in a user namespace\)|fuse-overlayfs \(kernel overlayfs unusable in a user namespace\)|fuse-overlayfs \(the root has files owned outside the sandbox's id map .*: kernel overlayfs would leave them read-only\))$/m,
    describe(r),
  );
  const pinned = expectExit(await runHutch(['run', '--network', 'none', '--storage-driver', 'fuse-overlayfs', '--dry-run', '--', 'true']));
  assert.match(pinned.stdout, /^# storage driver: fuse-overlayfs \(requested\)$/m, describe(pinned));
});

test('--storage-driver fuse-overlayfs without fuse-overlayfs: exit 125 with the package to install', async () => {
  const r = await runHutch(['run', '--network', 'none', '--storage-driver', 'fuse-overlayfs', '--', 'true'], {
    env: { PATH: '/nonexistent', HUTCH_STRICT_PATH: '1' },
  });
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /fuse-overlayfs/);
  assert.match(r.stderr, /apt install fuse-overlayfs/);
});

test.run();
