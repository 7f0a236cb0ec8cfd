// Profiles: built-ins, extends/merge, origins, error messages, JSON Schema, lookup.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as YAML from 'yaml';
import { HutchError } from '../../src/util/errors';
import {
  listProfiles,
  loadProfile,
  parsePortMapping,
  profileJsonSchema,
  ProfileValidationError,
  resolveHostPath,
  showProfile,
  validateProfileFile,
  expandVars,
} from '../../src/profile/index';
import { BUILTIN_PROFILES } from '../../src/profile/builtin-data.generated';
import { parseYamlToNodeWith } from '../../src/profile/yaml-parse';
import { validateDocument } from '../../src/profile/schema-dsl';
import { profileSchema } from '../../src/profile/schema';
import { editDistance, suggest } from '../../src/util/suggest';

// ------------------------------------------------------------ fixtures

function repoRoot(): string {
  for (let d = process.cwd(); ; d = dirname(d)) {
    if (existsSync(join(d, 'sandbox-profiles')) && existsSync(join(d, 'package.json'))) return d;
    if (d === '/') throw new Error('run the tests from the repository');
  }
}
const ROOT = repoRoot();

const tmp = mkdtempSync(join(tmpdir(), 'hutch-profile-test-'));
const HOME = join(tmp, 'home');
const XDG = join(tmp, 'xdg');
mkdirSync(HOME, { recursive: true });
const ENV = { HOME, XDG_CONFIG_HOME: XDG, PATH: '/usr/bin:/bin', PROJECT: 'demo' };
const CWD = join(tmp, 'project');
mkdirSync(CWD, { recursive: true });
const opts = { cwd: CWD, env: ENV };

let n = 0;
/** Write a profile file in a fresh directory (or at `name` relative to `dir`). */
function write(text: string, name = 'p.yaml', dir = join(tmp, `case${n++}`)): string {
  const p = join(dir, name);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text.replace(/^\n/, ''));
  return p;
}

async function rejects(p: Promise<unknown>): Promise<HutchError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, HutchError);
    assert.is((e as HutchError).exitCode, 125);
    return e as HutchError;
  }
  throw new assert.Assertion({ message: 'expected a HutchError, got success', operator: 'rejects', expects: 'HutchError', actual: 'success' });
}

// ------------------------------------------------------------ suggest

test('suggest: near misses, case, separators, thresholds', () => {
  assert.is(editDistance('netwrok', 'network'), 1);
  assert.is(suggest('netwrok', ['network', 'mounts', 'env']), 'network');
  assert.is(suggest('Network', ['network']), 'network');
  assert.is(suggest('read_only', ['readOnly', 'rootfs']), 'readOnly');
  assert.is(suggest('storage-driver', ['storageDriver']), 'storageDriver');
  assert.is(suggest('slrip', ['none', 'host', 'slirp', 'pasta']), 'slirp');
  assert.is(suggest('mem', ['memory', 'memorySwap']), 'memory');
  assert.is(suggest('xyz', ['network', 'mounts']), undefined);
  assert.is(suggest('', ['a']), undefined);
});

// ------------------------------------------------------------ built-ins

test('built-ins: every one loads and validates', async () => {
  const names = BUILTIN_PROFILES.map((b) => b.name).sort();
  assert.equal(names, ['ci', 'default', 'dev-server', 'untrusted']);
  for (const name of names) {
    const p = await loadProfile(name, opts);
    assert.is(p.name, name);
    assert.is(p.chain[0], name);
    assert.ok(p.values.description, `${name} has a description`);
  }
});

test('built-ins: default', async () => {
  const p = await loadProfile('default', opts);
  const v = p.values;
  assert.equal(p.chain, ['default']);
  assert.equal(v.rootfs, { kind: 'host' });
  assert.is(v.home, 'hidden');
  assert.is(v.network.mode, 'slirp');
  assert.is(v.workdir, '/');
  assert.ok(v.env.PATH.includes('/usr/bin'));
  assert.equal(v.passEnv, ['TERM', 'LANG', 'LC_*', 'TZ', 'COLORTERM']);
  assert.equal([...v.capabilities].sort(), [
    'CHOWN',
    'DAC_OVERRIDE',
    'FOWNER',
    'FSETID',
    'KILL',
    'NET_BIND_SERVICE',
    'SETFCAP',
    'SETGID',
    'SETPCAP',
    'SETUID',
    'SYS_CHROOT',
  ]);
  assert.equal(p.capabilities, v.capabilities);
  assert.equal(p.originOf('network'), { file: 'builtin:default.yaml', line: p.originOf('network')!.line, column: 10 });
});

test('built-ins: untrusted, dev-server, ci', async () => {
  const u = await loadProfile('untrusted', opts);
  assert.equal(u.chain, ['untrusted', 'default']);
  assert.is(u.values.network.mode, 'none');
  assert.equal(u.values.capabilities, []);
  assert.equal(u.values.passEnv, ['TERM', 'LANG']);
  assert.is(u.values.home, 'hidden');
  assert.is(u.values.readOnly, false);
  assert.equal(u.values.limits, { mode: 'warn', memory: 1024 ** 3, pidsLimit: 512 });

  const d = await loadProfile('dev-server', opts);
  assert.equal(d.values.mounts, [{ type: 'bind', source: '.', target: '/work', readOnly: false }]);
  assert.is(d.values.workdir, '/work');
  assert.is(d.values.network.mode, 'slirp');
  assert.equal(d.values.network.expose, ['3000/tcp', '5173/tcp', '8080/tcp']);
  assert.is(d.values.limits.mode, 'warn');

  const c = await loadProfile('ci', opts);
  assert.equal(c.values.mounts, [{ type: 'bind', source: '.', target: '/work', readOnly: false }]);
  assert.is(c.values.workdir, '/work');
  assert.equal(c.values.limits, { mode: 'strict', memory: 4 * 1024 ** 3, pidsLimit: 4096, timeout: 60 * 60_000 });
  const at = c.originOf('limits.timeout')!;
  assert.is(at.file, 'builtin:ci.yaml');
  assert.ok(
    BUILTIN_PROFILES.find((b) => b.name === 'ci')!
      .text.split('\n')
      [at.line - 1].includes('timeout: 60m'),
  );
});

test('built-ins: generated data matches sandbox-profiles/*.yaml', () => {
  const files = readdirSync(join(ROOT, 'sandbox-profiles'))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  assert.equal(
    files.map((f) => f.replace(/\.yaml$/, '')),
    BUILTIN_PROFILES.map((b) => b.name),
  );
  for (const f of files) {
    const text = readFileSync(join(ROOT, 'sandbox-profiles', f), 'utf8');
    const b = BUILTIN_PROFILES.find((x) => x.file === `builtin:${f}`)!;
    assert.is(b.text, text, `${f}: run node src/profile/gen-builtins.mjs`);
    assert.equal(b.root, parseYamlToNodeWith(YAML, text, b.file));
    const v = validateDocument(profileSchema, b.root, b.file);
    assert.ok(v.ok);
    if (v.ok) {
      assert.equal(b.layer, JSON.parse(JSON.stringify(v.value)), 'pre-validated layer');
      assert.equal(
        b.origins,
        [...v.origins].filter(([p]) => p !== '').map(([p, o]) => [p, o.line, o.column]),
      );
    }
    assert.ok(text.startsWith('# yaml-language-server: $schema=./hutch-profile.schema.json\n'), `${f} names the schema`);
  }
});

test('JSON schema: checked-in file is up to date and describes every field', () => {
  const onDisk = readFileSync(join(ROOT, 'sandbox-profiles', 'hutch-profile.schema.json'), 'utf8');
  assert.is(onDisk, `${JSON.stringify(profileJsonSchema(), null, 2)}\n`, 'run node src/profile/gen-builtins.mjs');
  const j = profileJsonSchema() as { $schema: string; additionalProperties: boolean; properties: Record<string, { description?: string }> };
  assert.is(j.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.is(j.additionalProperties, false);
  for (const [k, v] of Object.entries(j.properties)) assert.ok(v.description, `${k} has a description`);
  assert.ok(j.properties.network && j.properties.capabilities && j.properties.limits);
});

// ------------------------------------------------------------ extends and merge

test('extends: chain, merge rules and origins', async () => {
  const dir = join(tmp, 'merge');
  write(
    `
extends: default
description: base
env:
  A: one
  B: two
passEnv: [SSH_*]
mounts:
  - ./src:/src:ro
capabilities:
  drop: [ALL]
  add: [NET_RAW, chown]
limits:
  memory: 512m
  mode: strict
network:
  mode: pasta
  publish: ["8080:80"]
`,
    'base.yaml',
    dir,
  );
  const child = write(
    `
extends: ../base.yaml
hostname: box
env:
  B: "2"
  C: \${PROJECT}-x
mounts:
  - {type: tmpfs, target: /tmp, size: 64m, mode: "1777"}
  - cache:/root/.cache
capabilities: {add: [cap_sys_ptrace]}
limits:
  pidsLimit: 100
network:
  publish: ["127.0.0.1:3000:3000"]
  expose: [9000, "53/udp"]
`,
    'sub/child.yaml',
    dir,
  );
  const p = await loadProfile(child, opts);
  const v = p.values;
  assert.equal(p.chain, [child, '../base.yaml', 'default'], 'path references as written');
  assert.equal(p.files, [child, join(dir, 'base.yaml'), 'builtin:default.yaml']);
  assert.is(p.name, 'child');
  assert.is(v.description, undefined, 'description is not inherited');
  assert.is(v.hostname, 'box');
  assert.equal(v.env, { PATH: v.env.PATH, A: 'one', B: '2', C: 'demo-x' });
  assert.equal(v.passEnv, ['TERM', 'LANG', 'LC_*', 'TZ', 'COLORTERM', 'SSH_*']);
  assert.equal(v.mounts, [
    { type: 'bind', source: './src', target: '/src', readOnly: true },
    { type: 'tmpfs', target: '/tmp', size: 64 * 1024 ** 2, mode: 0o1777 },
    { type: 'volume', source: 'cache', target: '/root/.cache', readOnly: false },
  ]);
  assert.equal(v.capabilities, ['CHOWN', 'NET_RAW', 'SYS_PTRACE']);
  assert.equal(v.limits, { memory: 512 * 1024 ** 2, mode: 'strict', pidsLimit: 100 });
  assert.equal(v.network, {
    mode: 'pasta',
    names: [],
    aliases: [],
    allowHostLoopback: false,
    publish: ['8080:80', '127.0.0.1:3000:3000'],
    expose: ['9000/tcp', '53/udp'],
  });
  assert.is(v.workdir, '/', 'inherited from default');

  // Origins: each value points at the file and position that set it.
  assert.equal(p.originOf('mounts[1].size'), { file: child, line: 7, column: 39 });
  assert.equal(p.originOf('mounts[0]'), { file: join(dir, 'base.yaml'), line: 8, column: 5 });
  assert.equal(p.originOf('mounts[0].source'), { file: join(dir, 'base.yaml'), line: 8, column: 5 }, 'falls back to the item');
  assert.equal(p.originOf('mounts[2]'), { file: child, line: 8, column: 5 });
  assert.equal(p.originOf('env.A'), { file: join(dir, 'base.yaml'), line: 4, column: 6 });
  assert.equal(p.originOf('env.B'), { file: child, line: 4, column: 6 });
  assert.equal(p.originOf('env.PATH')!.file, 'builtin:default.yaml');
  assert.equal(p.originOf('limits.memory')!.file, join(dir, 'base.yaml'));
  assert.equal(p.originOf('limits.pidsLimit')!.file, child);
  assert.equal(p.originOf('network.publish[1]'), { file: child, line: 13, column: 13 });
  assert.equal(p.originOf('network.mode')!.file, join(dir, 'base.yaml'));
  assert.equal(p.originOf('capabilities[2]'), { file: child, line: 9, column: 22 }, 'SYS_PTRACE from the child');
  assert.equal(p.originOf('capabilities[0]')!.file, join(dir, 'base.yaml'));
  assert.is(p.originOf('limits.cpus'), undefined);
  assert.is(p.originOf('readOnly')!.file, 'builtin:default.yaml');
  assert.is(p.originOf('hide'), undefined, 'defaults have no origin');
});

test('extends: capabilities list replaces; {replace} on lists', async () => {
  const p = write(`
extends: dev-server
capabilities: [NET_BIND_SERVICE, CAP_KILL]
mounts:
  replace: ["~/data:/data"]
passEnv: {replace: []}
`);
  const r = await loadProfile(p, opts);
  assert.equal(r.values.capabilities, ['KILL', 'NET_BIND_SERVICE']);
  assert.equal(r.values.mounts, [{ type: 'bind', source: '~/data', target: '/data', readOnly: false }]);
  assert.equal(r.values.passEnv, []);
  assert.equal(r.originOf('mounts[0]')!.line, 4);
  assert.is(r.values.workdir, '/work');
});

test('extends: envFile resolves against the profile file', async () => {
  const p = write('extends: default\nenvFile: [.env, ~/secrets.env]\n');
  const r = await loadProfile(p, opts);
  assert.equal(r.values.envFile, [join(dirname(p), '.env'), join(HOME, 'secrets.env')]);
});

test('extends: cycle is reported with the chain', async () => {
  const dir = join(tmp, 'cycle');
  write('extends: ./b.yaml\n', 'a.yaml', dir);
  write('description: b\nextends: ./a.yaml\n', 'b.yaml', dir);
  const e = await rejects(loadProfile(join(dir, 'a.yaml'), opts));
  assert.is(e.message, `profile extends itself: ${join(dir, 'a.yaml')} -> ${join(dir, 'b.yaml')} -> ${join(dir, 'a.yaml')}`);
  assert.equal(e.location, { file: join(dir, 'b.yaml'), line: 2, column: 10 });
  assert.ok(e.hint);
  const self = write('extends: ./p.yaml\n');
  const e2 = await rejects(loadProfile(self, opts));
  assert.match(e2.message, /profile extends itself/);
});

test('extends: missing file and unknown name', async () => {
  const p = write('extends: ./nope.yaml\n');
  const e = await rejects(loadProfile(p, opts));
  assert.match(e.message, /profile file \.\/nope\.yaml not found/);
  assert.equal(e.location, { file: p, line: 1, column: 10 });

  const q = write('# comment\nextends: dev-sever\n');
  const e2 = await rejects(loadProfile(q, opts));
  assert.is(e2.message, 'unknown profile "dev-sever"; did you mean "dev-server"?');
  assert.equal(e2.location, { file: q, line: 2, column: 10 });
  assert.match(e2.hint!, /available profiles: built-in: ci, default, dev-server, untrusted/);

  const e3 = await rejects(loadProfile('untrustd', opts));
  assert.is(e3.message, 'unknown profile "untrustd"; did you mean "untrusted"?');
  assert.is(e3.location, undefined);
});

// ------------------------------------------------------------ errors

test('errors: unknown field with exact position and suggestion', async () => {
  const p = write(`
extends: default
# a comment

netwrok: none
`);
  const e = await rejects(loadProfile(p, opts));
  assert.is(e.message, 'unknown field "netwrok" in profile; did you mean "network"?');
  assert.equal(e.location, { file: p, line: 4, column: 1 });
  assert.match(e.hint!, /valid fields: extends, description, rootfs/);
  assert.is(e.format().split('\n')[0], `${p}:4:1: unknown field "netwrok" in profile; did you mean "network"?`);

  const q = write(`
mounts:
  - type: bind
    sorce: .
    target: /w
`);
  const e2 = await rejects(loadProfile(q, opts));
  assert.is(e2.message, 'unknown field "sorce" in mounts[0] (bind mount); did you mean "source"?');
  assert.equal(e2.location, { file: q, line: 3, column: 5 });
  assert.instance(e2, ProfileValidationError);
  assert.is((e2 as ProfileValidationError).problems.length, 1, 'no second message about the missing "source"');
  const q2 = write('mounts:\n  - {type: volume, target: /w}\n');
  const e3 = await rejects(loadProfile(q2, opts));
  assert.is(e3.message, 'mounts[0]: missing field "source"');
  assert.is(e3.hint, 'source: The volume name.');
  assert.equal(e3.location, { file: q2, line: 2, column: 5 });
});

test('errors: bad enum values list the valid ones and the nearest', async () => {
  const p = write('storageDriver: overly\n');
  const e = await rejects(loadProfile(p, opts));
  assert.is(e.message, 'storageDriver: unknown value "overly"; did you mean "overlay"?');
  assert.is(e.hint, 'valid values: auto, overlay, fuse-overlayfs');
  assert.equal(e.location, { file: p, line: 1, column: 16 });

  const q = write('network:\n  mode: slrip\n');
  const e2 = await rejects(loadProfile(q, opts));
  assert.is(e2.message, 'network.mode: unknown value "slrip"; did you mean "slirp"?');
  assert.equal(e2.location, { file: q, line: 2, column: 9 });

  const r = write('network: bridge\n');
  const e3 = await rejects(loadProfile(r, opts));
  assert.match(e3.message, /^network: unknown value "bridge"/);
  assert.is(e3.hint, 'valid values: none, host, slirp, pasta');

  const s = write('capabilities: [NET_ADMN]\n');
  const e4 = await rejects(loadProfile(s, opts));
  assert.is(e4.message, 'capabilities[0]: unknown capability "NET_ADMN"; did you mean "NET_ADMIN"?');
  assert.equal(e4.location, { file: s, line: 1, column: 16 });

  const t = write('mounts: [{type: bnd, source: ., target: /w}]\n');
  const e5 = await rejects(loadProfile(t, opts));
  assert.is(e5.message, 'mounts[0].type: unknown value "bnd"; did you mean "bind"?');
});

test('errors: wrong types say what was expected', async () => {
  const cases: [string, RegExp, number, number][] = [
    ['readOnly: "yes"\n', /^readOnly: expected true or false, got the string "yes"$/, 1, 11],
    ['limits:\n  pidsLimit: many\n', /^limits\.pidsLimit: expected a whole number of at least 1, got the string "many"$/, 2, 14],
    ['limits:\n  memory: lots\n', /^limits\.memory: expected a size such as 512m or 2g/, 2, 11],
    ['limits:\n  timeout: 5 minutes\n', /^limits\.timeout: expected a duration/, 2, 12],
    ['limits:\n  cpus: 0\n', /^limits\.cpus: must be greater than 0/, 2, 9],
    ['passEnv: TERM\n', /^passEnv: expected a list of/, 1, 10],
    ['command: npm start\n', /^command: expected a list of strings/, 1, 10],
    ['workdir: work\n', /^workdir: expected an absolute path inside the sandbox/, 1, 10],
    ['env:\n  FOO:\n', /^env\.FOO: expected a string, got an empty value/, 2, 3],
    ['env: [A]\n', /^env: expected a map of/, 1, 6],
    ['mounts: ["./x:rel"]\n', /^mounts\[0\]: expected a mount "SOURCE:TARGET\[:ro\|rw\]"/, 1, 10],
    ['mounts: ["./x:/y:rx"]\n', /^mounts\[0\]: unknown mount option "rx" in "\.\/x:\/y:rx"; did you mean "ro"\?/, 1, 10],
    ['network: {publish: ["80:99999"]}\n', /^network\.publish\[0\]: container port 99999 is out of range/, 1, 21],
    ['rootfs: hots\n', /^rootfs: expected "host", "dir:PATH" or "image:NAME", got "hots"; did you mean "host"\?$/, 1, 9],
    ['rootfs: [host]\n', /^rootfs: expected "host", "dir:PATH", \{dir: PATH\} or \{image: NAME\}, got a list$/, 1, 9],
    ['rootfs: {dir: a, image: b}\n', /^rootfs: give exactly one of dir or image/, 1, 9],
    ['- a\n- b\n', /^a profile must be a map/, 1, 1],
  ];
  for (const [text, re, line, column] of cases) {
    const p = write(text);
    const e = await rejects(loadProfile(p, opts));
    assert.match(e.message, re, `${JSON.stringify(text)} -> ${e.message}`);
    assert.equal(e.location, { file: p, line, column }, `${JSON.stringify(text)} position`);
  }
  const b = write('readOnly: "yes"\n');
  assert.match((await rejects(loadProfile(b, opts))).hint!, /true or false without quotes/);
});

test('errors: YAML syntax error with position', async () => {
  const p = write('extends: default\nenv:\n  A: "unclosed\n');
  const e = await rejects(loadProfile(p, opts));
  assert.match(e.message, /^YAML syntax error: /);
  assert.is(e.location!.file, p);
  assert.ok(e.location!.line >= 3, 'the parser notices the missing quote at the end of the file');
  assert.match(e.message, /quote/);
  assert.ok(e.hint);

  const q = write('env:\n  A: 1\n   B: 2\n');
  const e2 = await rejects(loadProfile(q, opts));
  assert.is(e2.message, 'YAML syntax error: Nested mappings are not allowed in compact mappings');
  assert.equal(e2.location, { file: q, line: 2, column: 6 });

  const r = write('network: none\nnetwork: host\n');
  const e3 = await rejects(loadProfile(r, opts));
  assert.match(e3.message, /YAML syntax error: .*unique/i);
  assert.is(e3.location!.line, 2);

  // duplicates are found in nested maps too, and `1` and "1" are one key to hutch
  const d = write('limits:\n  memory: 1g\n  pidsLimit: 5\n  memory: 2g\n');
  const e4 = await rejects(loadProfile(d, opts));
  assert.is(e4.message, 'YAML syntax error: map keys must be unique ("memory" appears twice)');
  assert.equal(e4.location, { file: d, line: 4, column: 3 });
  const d2 = write('env:\n  1: a\n  "1": b\n');
  assert.match((await rejects(loadProfile(d2, opts))).message, /"1" appears twice/);
});

test('a profile with 20000 variables over a parent that sets some: every value and origin where it belongs', async () => {
  // (this took seconds before: yaml's duplicate check and the origins' merge were quadratic)
  const dir = join(tmp, 'many-env');
  const n = 20_000;
  write(`env:\n  V7: parent\n  ONLY_PARENT: p\n`, 'base.yaml', dir);
  const lines = ['extends: ./base.yaml', 'env:'];
  for (let i = 0; i < n; i++) lines.push(`  V${i}: "value ${i}"`);
  const child = write(`${lines.join('\n')}\n`, 'child.yaml', dir);
  const p = await loadProfile(child, opts);
  assert.is(p.values.env.V19999, 'value 19999');
  assert.is(p.values.env.V7, 'value 7');
  assert.is(p.values.env.ONLY_PARENT, 'p');
  assert.equal(p.originOf('env.V12345'), { file: child, line: 12348, column: 11 });
  assert.equal(p.originOf('env.V7'), { file: child, line: 10, column: 7 });
  assert.equal(p.originOf('env.ONLY_PARENT'), { file: join(dir, 'base.yaml'), line: 3, column: 16 });
});

test('errors: env ${VAR} must be set unless it has a default', async () => {
  const p = write('env:\n  A: ${PROJECT}\n  B: ${NOPE:-fallback}\n  C: $$HOME\n  D: ${NOPE-}\n');
  const r = await loadProfile(p, opts);
  assert.equal(r.values.env, { A: 'demo', B: 'fallback', C: '$HOME', D: '' });
  const q = write('extends: default\nenv:\n  TOKEN: ${API_TOKEN}\n');
  const e = await rejects(loadProfile(q, opts));
  assert.is(e.message, 'env.TOKEN: host variable API_TOKEN is not set (used in "${API_TOKEN}")');
  assert.equal(e.location, { file: q, line: 3, column: 10 });
  assert.is(e.hint, 'set API_TOKEN, or give a default: ${API_TOKEN:-value}');
});

test('errors: several problems in one file are all reported', async () => {
  const p = write('netwrok: none\nreadOnly: 3\nhome: hiden\n');
  const e = await rejects(validateProfileFile(p, opts));
  assert.instance(e, ProfileValidationError);
  const lines = (e as ProfileValidationError).problems.map((x) => x.location!.line);
  assert.equal(lines, [1, 2, 3]);
  assert.match(e.format(), /home: unknown value "hiden"; did you mean "hidden"\?/);
});

test('network.name: named networks from a profile; a later mode replaces them; mode with name and reserved names are errors at file:line', async () => {
  const base = write('extends: default\nnetwork:\n  name: [front, back]\n  aliases: [api]\n', 'named.yaml');
  const v = (await loadProfile(base, opts)).values;
  assert.equal(v.network.names, ['front', 'back']);
  assert.equal(v.network.aliases, ['api']);
  const over = write(`extends: ${base}\nnetwork: none\n`);
  assert.equal((await loadProfile(over, opts)).values.network.names, []);
  for (const [text, line, why] of [
    ['network:\n  mode: slirp\n  name: x\n', 2, /mode and name exclude each other/],
    ['network:\n  name: host\n', 2, /"host" is a network mode or reserved/],
    ['network:\n  aliases: [bad_label]\n', 2, /DNS label/],
  ] as const) {
    const e = await rejects(validateProfileFile(write(text), opts));
    assert.instance(e, ProfileValidationError);
    const problem = (e as ProfileValidationError).problems[0];
    assert.match(problem.message, why);
    assert.ok(problem.location!.line >= line, `${text}: line ${problem.location!.line}`);
  }
});

// ------------------------------------------------------------ lookup

test('lookup: user profiles in $XDG_CONFIG_HOME/hutch/profiles', async () => {
  const dir = join(XDG, 'hutch', 'profiles');
  write('description: my web profile\nextends: dev-server\nnetwork: {publish: ["5173"]}\n', 'web.yaml', dir);
  // A user profile named like a built-in shadows it, and may extend it.
  write('extends: default\nhostname: mine\n', 'default.yaml', dir);
  try {
    const w = await loadProfile('web', opts);
    assert.equal(w.chain, ['web', 'dev-server', 'default']);
    assert.equal(w.files, [join(dir, 'web.yaml'), 'builtin:dev-server.yaml', 'builtin:default.yaml']);
    assert.is(w.values.network.publish[0], '5173');
    assert.is(w.values.hostname, undefined, 'built-in dev-server extends the built-in default, not the user one');

    const d = await loadProfile('default', opts);
    assert.equal(d.chain, ['default', 'builtin:default']);
    assert.is(d.values.hostname, 'mine');

    const list = await listProfiles({ env: ENV });
    const web = list.find((x) => x.name === 'web')!;
    assert.equal(web, { name: 'web', source: 'user', path: join(dir, 'web.yaml'), description: 'my web profile' });
    assert.is(list.find((x) => x.name === 'default' && x.source === 'builtin')!.shadowed, true);
    assert.equal(
      list.filter((x) => x.source === 'builtin').map((x) => x.name),
      ['ci', 'default', 'dev-server', 'untrusted'],
    );

    const e = await rejects(loadProfile('wbe', opts));
    assert.is(e.message, 'unknown profile "wbe"; did you mean "web"?');
    assert.match(e.hint!, /web/);

    // Without XDG_CONFIG_HOME: ~/.config.
    const home2 = join(tmp, 'home2');
    write('description: from dot-config\n', 'x.yaml', join(home2, '.config', 'hutch', 'profiles'));
    const x = await loadProfile('x', { cwd: CWD, env: { HOME: home2 } });
    assert.is(x.values.description, 'from dot-config');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lookup: builtin extends never pick up user profiles', async () => {
  // dev-server (built-in) extends "default": must be the built-in even when the user has one.
  const dir = join(XDG, 'hutch', 'profiles');
  write('extends: default\nworkdir: /home\n', 'default.yaml', dir);
  try {
    const p = await loadProfile('dev-server', opts);
    assert.equal(p.chain, ['dev-server', 'default']);
    assert.equal(p.files, ['builtin:dev-server.yaml', 'builtin:default.yaml']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lookup: paths relative to cwd, validateProfileFile on a bare file name', async () => {
  write('description: rel\n', 'rel.yaml', CWD);
  const p = await loadProfile('./rel.yaml', opts);
  assert.is(p.values.description, 'rel');
  const prev = process.cwd();
  process.chdir(CWD);
  try {
    const v = await validateProfileFile('rel.yaml', { env: ENV });
    assert.is(v.name, 'rel');
  } finally {
    process.chdir(prev);
  }
});

// ------------------------------------------------------------ helpers

test('resolveHostPath and expandVars', () => {
  const ctx = { cwd: '/proj', env: { HOME: '/home/u', X: 'x' } };
  assert.is(resolveHostPath('.', ctx), '/proj');
  assert.is(resolveHostPath('./src/../lib', ctx), '/proj/lib');
  assert.is(resolveHostPath('~/.npmrc', ctx), '/home/u/.npmrc');
  assert.is(resolveHostPath('${PWD}/data', ctx), '/proj/data');
  assert.is(resolveHostPath('/opt/${X}', ctx), '/opt/x');
  assert.throws(() => resolveHostPath('${MISSING}/a', ctx), /MISSING is not set/);
  assert.equal(expandVars('${A', ctx), { ok: false, message: 'unclosed "${" in "${A"', hint: 'write ${NAME}, or $$ for a literal $' });
  assert.equal(expandVars('a$b ${X:-${HOME}}', ctx), { ok: true, value: 'a$b x' });
  assert.equal(expandVars('${NONE:-${HOME}}', ctx), { ok: true, value: '/home/u' });
});

test('parsePortMapping: podman -p forms', () => {
  const ok = (t: string) => {
    const r = parsePortMapping(t);
    assert.ok(r.ok, t);
    return r.ok ? r.value : undefined;
  };
  assert.equal(ok('80'), { hostIp: undefined, hostPort: undefined, containerPort: { start: 80, end: 80 }, protocol: 'tcp' });
  assert.equal(ok('8080:80')!.hostPort, { start: 8080, end: 8080 });
  assert.equal(ok('127.0.0.1::53/udp'), { hostIp: '127.0.0.1', hostPort: undefined, containerPort: { start: 53, end: 53 }, protocol: 'udp' });
  assert.is(ok('[::1]:8080:80')!.hostIp, '::1');
  assert.equal(ok('8000-8002:9000-9002')!.containerPort, { start: 9000, end: 9002 });
  for (const bad of ['', 'x', '1:2:3:4', '70000', '80/icmp', '8000-8002:9000', 'host:80:80']) assert.not.ok(parsePortMapping(bad).ok, bad);
});

test('showProfile: header names the chain; yaml and json', async () => {
  const y = await showProfile('dev-server', opts);
  assert.ok(y.startsWith('# profile dev-server: dev-server <- default\n'));
  assert.match(y, /workdir: \/work +# builtin:dev-server\.yaml:\d+:10/);
  assert.match(y, /memory: 4g/);
  const j = JSON.parse(await showProfile('ci', { ...opts, format: 'json' }));
  assert.equal(j.chain, ['ci', 'default']);
  assert.is(j.limits.timeout, '1h');
  const src = await showProfile('untrusted', { format: 'source' });
  assert.ok(src.includes('# untrusted:'));
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test.run();
