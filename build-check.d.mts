export function seaProblems(o: { metafile: { outputs?: Record<string, { imports?: { path: string; kind: string; external?: boolean }[] }> }; code: string; file?: string }): string[];
