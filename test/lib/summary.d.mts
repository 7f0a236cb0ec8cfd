export interface Summary {
  total: number;
  passed: number;
  skipped: number;
  failed: number;
}
export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}
export interface RunOutcome {
  output?: string;
  code: number | null;
  signal: string | null;
  timedOut?: boolean;
  error?: unknown;
}
export interface Judgement extends Counts {
  crashed: boolean;
  reason: string;
}
export function stripAnsi(text: string): string;
export function parseSummary(output: string): Summary | null;
export function judgeRun(run: RunOutcome): Judgement;
export function addCounts(a: Counts, b: Counts): Counts;
export function closingLine(counts: Counts): string;
export function exitCodeFor(counts: Counts): 0 | 1;
export function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; flush(): void };
