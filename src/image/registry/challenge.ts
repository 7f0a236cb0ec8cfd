// Parsing `WWW-Authenticate` (RFC 7235): one or more challenges, each a scheme
// and comma-separated `key=value` / `key="quoted"` parameters, e.g.
//   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"
// The header comes from the network: this is a pure function that never
// throws and caps what it reads (fuzzed in test/unit).

export interface Challenge {
  /** Lower-cased: 'bearer', 'basic', ... */
  scheme: string;
  /** Parameter names lower-cased. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = (Array.isArray(header) ? header.join(', ') : header).slice(0, 8192);
  const out: Challenge[] = [];
  let i = 0;
  const n = text.length;
  const skipWs = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const token = () => {
    const s = i;
    while (i < n && TOKEN.test(text[i])) i++;
    return text.slice(s, i);
  };
  let cur: Challenge | undefined;
  while (i < n && out.length < 16) {
    skipWs();
    if (text[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const word = token();
    if (!word) {
      i++; // a stray character: skip it
      continue;
    }
    skipWs();
    if (text[i] === '=' && cur) {
      // key=value of the current challenge (token68 values end in '=' but are not used by registries)
      i++;
      skipWs();
      let value = '';
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          value += text[i++];
        }
        i++; // closing quote
      } else {
        const s = i;
        while (i < n && text[i] !== ',' && text[i] !== ' ' && text[i] !== '\t') i++;
        value = text.slice(s, i);
      }
      const key = word.toLowerCase();
      if (!(key in cur.params)) cur.params[key] = value;
      continue;
    }
    if (i === start) break;
    cur = { scheme: word.toLowerCase(), params: Object.create(null) as Record<string, string> };
    out.push(cur);
  }
  return out.map((c) => ({ scheme: c.scheme, params: { ...c.params } }));
}
