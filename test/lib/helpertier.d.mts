import type { Counts } from './summary.mjs';
export interface CheckCounts extends Counts {
  failedNames: string[];
}
export interface HelperRow extends Counts {
  crashed: boolean;
  reason: string;
}
export function countCheckLines(output: string): CheckCounts;
export function judgeChecks(run: { output?: string; code: number | null; signal?: string | null; timedOut?: boolean; error?: unknown }): HelperRow;
export function runHelperTier(ctx: unknown): Promise<unknown[]>;
