// "Did you mean ...?" for typos in profile keys, enum values, CLI flags and
// profile names.
//
// Words are compared case-insensitively and with `-`/`_` ignored, so
// `read_only` finds `readOnly` and `storage-driver` finds `storageDriver`;
// the distance is the optimal-string-alignment variant of Damerau-Levenshtein
// (a swap of two neighbours costs 1: `netwrok` -> `network`).

/** Optimal string alignment distance (Damerau-Levenshtein without substring re-edits). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  // Three rolling rows: i-2, i-1, i.
  let prev2 = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur[j] = d;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[b.length];
}

function normalise(s: string): string {
  return s.toLowerCase().replace(/[-_]/g, '');
}

/**
 * The candidate nearest to `word`, or undefined when none is close enough.
 * Close enough: at most a third of the longer word's length in edits
 * (at least 1), so `ro` -> `rw` but not `x` -> `rootfs`. A candidate that
 * `word` is a prefix of (3+ characters, e.g. `mem` -> `memory`) also counts,
 * at a lower priority than a real near-miss.
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = normalise(word);
  if (w.length === 0) return undefined;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    if (c === word) return c;
    const n = normalise(c);
    const d = editDistance(w, n);
    const threshold = Math.max(1, Math.floor(Math.max(w.length, n.length) / 3));
    let score = Infinity;
    if (d <= threshold) score = d;
    else if (w.length >= 3 && n.startsWith(w)) score = threshold + 0.5 + (n.length - w.length) / 100;
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return best;
}

/** ` did you mean "x"?` or '' — ready to append to a message ending in ';' or '.'. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = suggest(word, candidates);
  return s === undefined ? '' : ` did you mean "${s}"?`;
}
