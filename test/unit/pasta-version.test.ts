// The verdict on a pasta's `--version` (src/net/pasta-version.ts): which
// builds `auto` passes over for the bulk-upload stall, and the cache of the
// answer per binary.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PASTA_STALL_FIXED, judgePastaVersion, pastaVersion } from '../../src/net/pasta-version';

test('versions before the fix, and builds that do not say, stall; the fix and later do not', () => {
  assert.is(judgePastaVersion('pasta unknown version').stalls, true); // Debian 0.0~git20230309
  assert.is(judgePastaVersion('').stalls, true);
  assert.is(judgePastaVersion('pasta 2023_03_29.b10b983').stalls, true);
  assert.is(judgePastaVersion('pasta 2023_11_07.56d9f6d').stalls, true);
  const fixed = judgePastaVersion(`pasta ${PASTA_STALL_FIXED}.5ec3634`);
  assert.is(fixed.stalls, false);
  assert.is(fixed.version, `${PASTA_STALL_FIXED}.5ec3634`);
  assert.is(judgePastaVersion('pasta 2024_03_19.d35bcbe').stalls, false);
  assert.match(judgePastaVersion('pasta 2023_06_03.429e1a7').why, /2023_06_03\.429e1a7 can stall .*2023_11_10/);
});

test('the answer is cached per binary and asked again when the binary changes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hutch-pasta-v-'));
  const bin = path.join(dir, 'pasta');
  const cache = path.join(dir, 'cache');
  fs.writeFileSync(bin, '#!/bin/sh\necho "pasta 2023_06_03.429e1a7"\n', { mode: 0o755 });
  assert.is(pastaVersion(bin, cache).stalls, true);
  assert.ok(fs.existsSync(path.join(cache, 'probe-pasta.json')));
  // A new binary (size and mtime change): asked again, not the cached answer.
  fs.writeFileSync(bin, '#!/bin/sh\necho "pasta 2024_03_19.d35bcbe" # newer\n', { mode: 0o755 });
  fs.utimesSync(bin, new Date(), new Date(Date.now() + 5000));
  assert.is(pastaVersion(bin, cache).stalls, false);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
