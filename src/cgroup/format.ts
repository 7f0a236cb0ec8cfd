// Human-readable figures for messages, `hutch stats` and `--summary`.

export { formatBytes, formatDuration } from '../util/units';

export function formatSeconds(usec: number): string {
  return `${(usec / 1e6).toFixed(2)} s`;
}
