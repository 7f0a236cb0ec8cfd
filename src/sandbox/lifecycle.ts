// The life of one sandbox from start to exit, the same for `hutch run`, a
// `setup:` build step and everything that starts a sandbox: claim its state
// directory, create its volumes and host directories, record what it uses,
// write its state, launch the helper with the hooks, and remove what is left
// if anything fails before the helper owns the cleanup.

import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { HostFacts } from '../host/facts';
import { launch, type HelperOptions, type HelperResult, type LaunchHook } from '../helper/spawn';
import { formatPlan, type Plan } from '../helper/plan';
import type { SandboxSpec } from '../spec/types';
import { claimSandboxDir, readState, writeExecOps, writeState, type SandboxState } from '../state/sandboxes';
import { writeInspectFile } from '../state/inspect-file';
import { assemblePlan, ownPathsUnder, rootfsInput, type SandboxSetup } from './assemble';
import { ensureVolumes, recordKept, writeStorageUse } from './image-root';
import { checkHelperResult } from './errors';
import { ramHostDir } from './ram-budget';
import { claimKeepDir } from './keep-dir';

export interface SandboxRequest {
  spec: SandboxSpec;
  facts: HostFacts;
  setup: Omit<SandboxSetup, 'sandboxDir'>;
  /** Layer digests the root is made of, bottom first (storage.json, `hutch commit`). */
  layers: string[];
  /** State fields beyond name, pid and start time (`hutch ps`, `hutch port`). */
  state: Omit<SandboxState, 'name' | 'pid' | 'startedAt' | 'initPid'>;
  /** The hooks of this sandbox, made once its state directory exists. */
  hooks?: (sandboxDir: string) => LaunchHook[];
  /** The helper's stdin (src/sandbox/terminal.ts); default hutch's own. */
  stdin?: 'inherit' | 'ignore';
  /** One line for the user (stderr), e.g. a volume created on first use. */
  say?: (line: string) => void;
  /** `run -d` without a resident hutch: the plan has `detach`, hutch leaves once the command runs (src/cli/detach.ts). */
  detach?: HelperOptions['detach'];
  /** A foreground run that hands hutch's process over once the command runs (src/cli/handover.ts). */
  handover?: HelperOptions['handover'];
  /** A detached sandbox's record directory: it keeps the inspect file after the state directory is gone. */
  recordDir?: string;
  /** The plan for this state directory from the launch cache (src/cache/launch.ts); undefined: assembled here. */
  plan?: PlanSource;
}

/** The plan of a sandbox in a state directory, when someone has it ready (undefined: assemble it). */
export type PlanSource = (sandboxDir: string) => Plan | undefined;

/** The plan --dry-run prints: the state directory is where it would be. */
export function dryRunPlan(spec: SandboxSpec, facts: HostFacts, setup: Omit<SandboxSetup, 'sandboxDir'>, source?: PlanSource): Plan {
  const sandboxDir = `${facts.paths.stateDir}/${spec.name}`;
  return source?.(sandboxDir) ?? assemblePlan(spec, facts, { ...setup, sandboxDir });
}

export { formatPlan };

export async function runSandbox(req: SandboxRequest): Promise<HelperResult> {
  const { spec, facts } = req;
  if (spec.keep) claimKeepDir(spec.keep); // before the state dir: a refusal leaves nothing behind
  const sandboxDir = claimSandboxDir(facts.paths.stateDir, facts.ids.uid, spec.name);
  try {
    const setup: SandboxSetup = { ...req.setup, sandboxDir };
    const plan = req.plan?.(sandboxDir) ?? assemblePlan(spec, facts, setup);
    for (const v of ensureVolumes(spec, facts.paths)) req.say?.(`created volume ${v}`);
    writeStorageUse(sandboxDir, req.layers, spec);
    if (spec.keep && req.layers.length) recordKept(facts.paths, spec, req.layers);
    mkdirSync(ramHostDir(sandboxDir), { recursive: true, mode: 0o700 });
    for (const d of setup.storage.hostDirs(rootfsInput(spec, facts, setup))) {
      mkdirSync(dirname(d.path), { recursive: true, mode: 0o700 });
      // exact, whatever the umask; an existing directory (--keep DIR) keeps its mode
      if (mkdirSync(d.path, { recursive: true, mode: d.mode }) !== undefined) chmodSync(d.path, d.mode);
    }
    createOwnDirs(spec, facts);
    const state: SandboxState = { name: spec.name, pid: process.pid, startedAt: new Date().toISOString(), ...req.state };
    writeState(sandboxDir, state);
    writeExecOps(sandboxDir, plan);
    for (const d of [sandboxDir, ...(req.recordDir ? [req.recordDir] : [])]) writeInspectFile(d, spec, plan, state);
    // the sandbox's pid 1, for hutch exec (the helper reports it)
    const initHook: LaunchHook = {
      started: ({ initPid, monitorPid }) => {
        // the directory may be gone already when the command ended at once (the helper's cleanup)
        try {
          const now = readState(sandboxDir);
          // detached: the monitor keeps the sandbox, so it is the pid `hutch ps`, stop and kill look at
          if (now) writeState(sandboxDir, { ...state, ...now, initPid, ...(req.detach ? { pid: monitorPid } : {}) });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      },
    };
    const result = await launch(
      plan,
      [...(req.hooks?.(sandboxDir) ?? []), initHook],
      facts.helper,
      req.detach ? 'ignore' : req.stdin,
      req.detach,
      req.handover,
    );
    if (result.detached || result.handedOver) return result; // the monitor removes the state directory when the sandbox ends
    // a helper killed by a signal ran no cleanup: take the state away at least (best effort:
    // files of subordinate ids need the user namespace; hutch system prune finds what is left)
    if (existsSync(sandboxDir)) {
      try {
        rmSync(join(sandboxDir, 'state.json'), { force: true });
        rmSync(sandboxDir, { recursive: true, force: true });
      } catch {
        /* left for hutch system prune */
      }
    }
    return checkHelperResult(plan, result, (line) => process.stderr.write(`hutch: ${line}\n`));
  } catch (e) {
    rmSync(sandboxDir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * hutch's own directories that a read-write bind would contain are made
 * now if missing (0700, as hutch makes them), so that the plan can bind them
 * read-only: otherwise the sandbox could be the one that creates them. One
 * that cannot be made (a parent the user cannot write) cannot be made from
 * inside either, which runs as the same user.
 */
function createOwnDirs(spec: SandboxSpec, facts: HostFacts): void {
  for (const m of spec.mounts) {
    if (m.type !== 'bind' || m.readOnly) continue;
    for (const d of ownPathsUnder(m.source, facts.protectedDirs)) {
      try {
        mkdirSync(d, { recursive: true, mode: 0o700 });
      } catch {
        /* see above */
      }
    }
  }
}
