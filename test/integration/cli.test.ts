// The CLI surface of the foundation: profiles on disk and their errors,
// --dry-run, flags overriding profiles, `hutch profile ...`.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, runHutch, tmpDir } from '../lib/hutch';

function profileFile(text: string, name = 'p.yaml'): string {
  const dir = tmpDir();
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

test('a typo in a profile names file:line:column, the field and the nearest key; exit 125', async () => {
  const file = profileFile('extends: default\nnetwork: none\nreadonly: true\n');
  for (const args of [
    ['run', '--profile', file, '--', 'true'],
    ['profile', 'validate', file],
  ]) {
    const r = await runHutch(args);
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, `${file}:3:1`);
    assert.match(r.stderr, /readonly/);
    assert.match(r.stderr, /did you mean "readOnly"/);
  }
});

test('a bad enum value and a YAML syntax error are located too', async () => {
  const bad = profileFile('network: slrip\n');
  const r = await runHutch(['run', '--profile', bad, '--', 'true']);
  assert.is(r.code, 125);
  assert.match(r.stderr, `${bad}:1:10`);
  assert.match(r.stderr, /slirp/);
  const syntax = profileFile('env:\n  A: [1\n');
  const s = await runHutch(['profile', 'validate', syntax]);
  assert.is(s.code, 125);
  assert.match(s.stderr, new RegExp(`${syntax.replace(/[.]/g, '\\.')}:\\d+:\\d+`));
});

test('an unknown profile name lists the nearest one', async () => {
  const r = await runHutch(['run', '--profile', 'untrustd', '--', 'true']);
  assert.is(r.code, 125);
  assert.match(r.stderr, /untrusted/);
});

test('bad flag values are rejected with the flag named', async () => {
  const cases: [string[], RegExp][] = [
    [['--network', 'nonee'], /--network.*did you mean "none"/s],
    [['--cap-add', 'NET_RAWW'], /--cap-add.*NET_RAW/s],
    [['-v', 'relative'], /--volume/],
    [['-v', '/tmp:work'], /absolute/],
    [['--storage-driver', 'zfs'], /--storage-driver/],
    [['--name', 'bad name'], /--name/],
    [['--rootfs', 'dir:/no/such/dir'], /--rootfs/],
    [['-w'], /-w needs a value/],
  ];
  for (const [flags, re] of cases) {
    const r = await runHutch(['run', ...flags, '--', 'true']);
    assert.is(r.code, 125, `${flags.join(' ')}: ${describe(r)}`);
    assert.match(r.stderr, re, `${flags.join(' ')}: ${r.stderr}`);
  }
});

test('--dry-run prints the resolved profile and the helper plan, and runs nothing', async () => {
  const dir = tmpDir();
  const marker = path.join(dir, 'ran');
  const r = expectExit(
    await runHutch(['run', '--dry-run', '--profile', 'dev-server', '--network', 'none', '-v', `${dir}:/out`, '--', 'sh', '-c', `touch /out/ran`]),
  );
  assert.match(r.stdout, /# profile: dev-server <- default/);
  assert.match(r.stdout, /^userns$/m);
  assert.match(r.stdout, /^pivot\t\/newroot$/m);
  assert.match(r.stdout, /^exec\tsh\t-c\ttouch \/out\/ran$/m);
  assert.match(r.stdout, /^end$/m);
  assert.not.ok(fs.existsSync(marker), 'the command did not run');
});

test('flags override profile values; a user profile extends a built-in', async () => {
  const file = profileFile(
    ['extends: untrusted', 'hostname: from-profile', 'workdir: /tmp', 'env:', '  FROM_PROFILE: "yes"', 'capabilities: {add: [KILL]}'].join('\n'),
  );
  const script = 'echo "$(hostname) $(pwd) $FROM_PROFILE $FROM_FLAG"; grep CapEff /proc/self/status';
  const r = expectExit(await runHutch(['run', '--profile', file, '--', 'sh', '-c', script]));
  assert.match(r.stdout, /^from-profile \/tmp yes $/m);
  assert.match(r.stdout, /CapEff:\s+0+20$/m, 'only CAP_KILL (bit 5)');
  const o = expectExit(
    await runHutch(['run', '--profile', file, '--hostname', 'from-flag', '-w', '/', '-e', 'FROM_FLAG=1', '--cap-drop', 'KILL', '--', 'sh', '-c', script]),
  );
  assert.match(o.stdout, /^from-flag \/ yes 1$/m);
  assert.match(o.stdout, /CapEff:\s+0+$/m);
});

test('-e KEY copies a host variable; only passEnv variables get in otherwise', async () => {
  const r = expectExit(
    await runHutch(['run', '--network', 'none', '-e', 'HUTCH_T1', '--', 'sh', '-c', 'echo "$HUTCH_T1|$HUTCH_T2|$HOME"'], {
      env: { HUTCH_T1: 'one', HUTCH_T2: 'two' },
    }),
  );
  assert.is(r.stdout.trim(), 'one||/root');
});

test('--env-file reads KEY=VALUE lines; a bad line is located', async () => {
  const good = profileFile('# comment\nA=1\nexport B="two words"\n', 'good.env');
  const r = expectExit(await runHutch(['run', '--network', 'none', '--env-file', good, '--', 'sh', '-c', 'echo "$A|$B"']));
  assert.is(r.stdout.trim(), '1|two words');
  const bad = profileFile('A=1\nnot a pair\n', 'bad.env');
  const b = await runHutch(['run', '--network', 'none', '--env-file', bad, '--', 'true']);
  assert.is(b.code, 125);
  assert.match(b.stderr, `${bad}:2`);
});

test('hutch profile ls / show / schema', async () => {
  const ls = expectExit(await runHutch(['profile', 'ls']));
  for (const n of ['default', 'untrusted', 'dev-server', 'ci']) assert.match(ls.stdout, new RegExp(`^${n}\\s+builtin`, 'm'));
  const show = expectExit(await runHutch(['profile', 'show', 'untrusted']));
  assert.match(show.stdout, /untrusted <- default/);
  const schema = JSON.parse(expectExit(await runHutch(['profile', 'schema'])).stdout);
  assert.ok(schema.properties.network && schema.properties.extends && schema.additionalProperties === false);
});

test('user profiles are found in ~/.config/hutch/profiles', async () => {
  const cfg = tmpDir();
  fs.mkdirSync(path.join(cfg, 'hutch', 'profiles'), { recursive: true });
  fs.writeFileSync(path.join(cfg, 'hutch', 'profiles', 'mine.yaml'), 'extends: default\nhostname: mine-host\nnetwork: none\n');
  const env = { XDG_CONFIG_HOME: cfg };
  const ls = expectExit(await runHutch(['profile', 'ls'], { env }));
  assert.match(ls.stdout, /^mine\s+user/m);
  const r = expectExit(await runHutch(['run', '--profile', 'mine', '--', 'hostname'], { env }));
  assert.is(r.stdout.trim(), 'mine-host');
});

test('unknown commands suggest the nearest', async () => {
  const r = await runHutch(['rnu']);
  assert.is(r.code, 125);
  assert.match(r.stderr, /hutch run/);
});

test.run();
