export function seaProblems(o: { metafile: { outputs?: Record<string, { imports?: { path: string; kind: string; external?: boolean }[] }> }; code: string; file?: string }): string[];
export function elfSection(buf: Buffer, name: string): [number, number] | null;
export function cStringLiterals(buf: Buffer, text: string, start: number, end: number): number[];
export function neutraliseNodeOptions(buf: Buffer): string[];
