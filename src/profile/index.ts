// Sandbox profiles: public API.
//
//   loadProfile('dev-server', {cwd, env})   name, path, or builtin:NAME -> ResolvedProfile
//   listProfiles()                          built-in and user profiles
//   validateProfileFile('./p.yaml')         throws HutchError, or returns the ResolvedProfile
//   profileJsonSchema()                     JSON Schema for editors
//   showProfile('ci', {format})             text of the resolved profile, header naming the chain
//
// Every error is a HutchError with `location` (file:line:col) and a `hint`;
// a file with several problems throws ProfileValidationError listing them all.

import { loadProfile, type LoadOptions, type ResolvedProfile } from './load';
import { showJson, showYaml } from './show';
import { BUILTIN_PROFILES } from './builtin-data.generated';
import { HutchError } from '../util/errors';
import { suggest } from '../util/suggest';

export { loadProfile, listProfiles, isPathRef, userProfileDir, ProfileValidationError } from './load';
export type { LoadOptions, ProfileFs, ProfileInfo, ResolvedProfile } from './load';
export type { ProfileValues } from './merge';
export { profileJsonSchema, SCHEMA_FILE_NAME, NETWORK_MODES, STORAGE_DRIVERS } from './schema';
export type { ProfileLayer, ProfileLimits, LimitMode, HomeMode } from './schema';
export { resolveHostPath, expandVars } from './expand';
export type { ExpandContext } from './expand';
export { parseMountString, parsePortMapping, parseExpose } from './values';
export type { ProfileMount, ProfileBindMount, ProfileTmpfsMount, ProfileVolumeMount, PortMapping, PortRange, Protocol } from './values';
export { DEFAULT_CAPABILITIES, capabilityBit, normaliseCapability, isCapability } from './capabilities';
export type { Capability } from './capabilities';
export { parseSize, parseDuration, formatSize, formatDuration } from './schema-dsl';
export { displayValues } from './show';

/** Load a profile file (with its `extends` chain) to check it. Throws HutchError on any problem. */
export async function validateProfileFile(path: string, opts: LoadOptions = {}): Promise<ResolvedProfile> {
  // A bare file name ("p.yaml") is a path; make sure a name-like path is not looked up as a profile name.
  const ref = path.includes('/') || /\.ya?ml$/i.test(path) ? path : `./${path}`;
  return loadProfile(ref, opts);
}

export interface ShowOptions extends LoadOptions {
  /** yaml (default): YAML with origins as comments; json: the values as JSON; source: a built-in's commented YAML. */
  format?: 'yaml' | 'json' | 'source';
}

/** The resolved profile as text, headed by the chain that produced it. */
export async function showProfile(ref: string, opts: ShowOptions = {}): Promise<string> {
  if (opts.format === 'source') {
    const builtins = opts.builtins ?? BUILTIN_PROFILES;
    const name = ref.replace(/^builtin:/, '');
    const b = builtins.find((x) => x.name === name);
    if (!b) {
      const near = suggest(
        name,
        builtins.map((x) => x.name),
      );
      throw new HutchError(`no built-in profile ${JSON.stringify(name)}${near ? `; did you mean "${near}"?` : ''}`, {
        hint: `--source shows built-ins: ${builtins.map((x) => x.name).join(', ')}; user profiles are files you can open`,
      });
    }
    return b.text;
  }
  const p = await loadProfile(ref, opts);
  if (opts.format === 'json') return showJson(p);
  const home = (opts.env ?? process.env).HOME;
  return showYaml(p, { shortenFile: (f) => (home && f.startsWith(`${home}/`) ? `~${f.slice(home.length)}` : f) });
}
