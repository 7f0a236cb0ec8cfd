// `hutch build [PROFILE] [--no-cache] [--tag NAME]`: build a profile's
// `setup:` steps into cached layers (what `hutch run --profile` would build
// first), optionally registering the result as an image.

import { HutchError } from '../util/errors';
import { ensureBuilt } from '../layers/build';
import { storeContext } from '../image/context';
import { checkImageName, imageId } from '../image/import';
import { Progress } from '../image/progress';
import { loadProfile } from '../profile/index';
import { gatherHostFacts } from '../host/facts';
import { chooseDriver } from '../rootfs/choose';
import { rootWrites } from '../rootfs/ownership';
import { resolveSpec } from '../spec/resolve';
import { imageDefaultsFor } from '../sandbox/image-root';
import { flagBool, flagString, formatFlagHelp, parseArgs, type FlagDef } from './args';

const FLAGS: FlagDef[] = [
  { name: 'no-cache', kind: 'bool', help: 'rebuild every step, ignoring the cache' },
  { name: 'tag', short: 't', kind: 'string', valueName: 'NAME', help: 'register the result as an image' },
  { name: 'storage-driver', kind: 'string', valueName: 'DRIVER', help: 'auto | overlay | fuse-overlayfs' },
  { name: 'quiet', short: 'q', kind: 'bool', help: 'only errors' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const USAGE = `Usage: hutch build [FLAGS] PROFILE

Build the profile's setup: steps (each a cached read-only layer over the
profile's rootfs image or directory). Unchanged steps come from the cache; a
changed step is rebuilt together with every step after it.

Flags:
${formatFlagHelp(FLAGS)}
`;

export async function buildCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, 'build');
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const ref = p.positionals[0];
  if (!ref) throw new HutchError('hutch build: which profile?', { hint: 'hutch build ./my-profile.yaml' });
  const tag = flagString(p, 'tag');
  if (tag) checkImageName(tag, '--tag');
  const facts = gatherHostFacts();
  const { env, cwd } = facts;
  const started = Date.now();
  const { ids, paths, store } = storeContext(env);
  const profile = await loadProfile(ref, { cwd, env });
  if (!profile.values.setup.length) {
    throw new HutchError(`profile ${profile.name} has no setup: steps`, { hint: 'add steps such as  setup: [{run: "apt-get install -y curl"}]' });
  }
  const spec = resolveSpec(
    profile,
    { volumes: [], tmpfs: [], env: [], envFiles: [], capAdd: [], capDrop: [], command: [], storageDriver: flagString(p, 'storage-driver') },
    { ...facts, image: (name) => imageDefaultsFor(paths, name) },
  );
  // setup: steps run as root inside and write the root
  const choice = await chooseDriver(
    spec.storageDriver,
    facts.helper,
    ids,
    paths.cacheDir,
    env,
    rootWrites({ ...spec, readOnly: false, user: undefined }, ids, true),
  );
  const progress = new Progress(process.stderr, flagBool(p, 'quiet'));
  const r = await ensureBuilt(profile, spec, facts, choice.driver, { noCache: flagBool(p, 'no-cache'), progress });
  if (tag) {
    store.writeImage({
      name: tag,
      id: imageId(r.layers, r.config),
      layers: r.layers,
      config: r.config,
      created: new Date().toISOString(),
      source: `build ${profile.files[0] ?? profile.name}`,
    });
  }
  progress.line(
    `built ${profile.name}: ${r.layers.length} layers (${r.hits} cached, ${r.built} built) in ${((Date.now() - started) / 1000).toFixed(2)}s${tag ? `, tagged ${tag}` : ''}`,
  );
  return 0;
}
