// `hutch inspect NAME`: one JSON object per sandbox, podman's shape in
// spirit. A running sandbox is read from its state directory (the live
// state.json: pid 1, addresses, limits after `hutch update`); an exited
// detached one from its record, which keeps the inspect file written at
// start (src/state/inspect-file.ts). Top-level ports, limits and network
// are the answers users look for, taken from the live state when there is
// one, else from what was in force at start.

import type { Running } from '../cgroup/running';
import { readInspectFile } from '../state/inspect-file';
import type { SandboxRecord } from '../state/records';

export interface InspectTarget {
  name: string;
  status: 'running' | 'exited';
  running?: Running;
  record?: SandboxRecord;
  recordDir?: string;
}

export function inspectView(x: InspectTarget) {
  const file = readInspectFile(x.running?.dir) ?? readInspectFile(x.recordDir);
  const live = x.running?.state;
  const st = live ?? file?.state;
  return {
    name: x.name,
    status: x.status,
    exitCode: x.status === 'exited' ? (x.record?.exitCode ?? null) : undefined,
    ports: st?.ports ?? [],
    limits: live?.limits ?? file?.spec.limits,
    network: st && {
      mode: st.network,
      driver: st.networkDriver,
      networks: st.networks,
      addresses: st.addresses,
      hostname: file?.spec.hostname,
    },
    // only while it runs: the pids and the cgroup of an exited sandbox are gone
    state: live,
    record: x.record,
    spec: file?.spec,
    plan: file?.plan,
  };
}
