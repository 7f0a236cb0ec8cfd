// One registry, one repository: the distribution API calls a pull needs
// (manifest by tag or digest, blob by digest, an authenticated ping for
// login), with the authentication flow and retries.
//
// Authentication: a request answered 401 carries `WWW-Authenticate`.
//   Bearer realm=...,service=...,scope=...  -> GET realm?service&scope (with
//     Basic credentials when hutch has some, anonymous otherwise), use the
//     token it returns (token or access_token) until it expires;
//   Basic realm=...                         -> send the credentials, if any.
// Retries: network errors, 408, 429 and 5xx are retried with exponential
// backoff (Retry-After honoured up to 10 s); anything else is an answer.

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HutchError } from '../../util/errors';
import { parseChallenges, type Challenge } from './challenge';
import type { Credentials } from './credentials';
import { ACCEPT, MAX_MANIFEST_BYTES } from './manifest';
import { parseUntrustedJson } from '../../util/untrusted-keys';
import { isLoopback } from './reference';
import { NetworkError, readBody, Transport } from './transport';

export interface ClientOptions {
  tlsVerify: boolean;
  creds?: Credentials;
  /** Called with a line to print (retries). */
  say?: (line: string) => void;
  /** Attempts for transient failures (default 5). */
  attempts?: number;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function backoffMs(attempt: number, retryAfter?: string): number {
  const ra = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
  if (ra !== undefined) return Math.min(ra, 10_000);
  return Math.min(250 * 2 ** attempt, 8_000);
}

export class RegistryClient {
  readonly transport: Transport;
  private token: { value: string; expires: number } | undefined;
  private basic = false;

  constructor(
    readonly registry: string,
    readonly repository: string,
    private readonly o: ClientOptions,
  ) {
    this.transport = new Transport(registry, o.tlsVerify);
  }

  private authHeader(): Record<string, string> {
    if (this.token && this.token.expires > Date.now()) return { authorization: `Bearer ${this.token.value}` };
    if (this.basic && this.o.creds) return { authorization: `Basic ${Buffer.from(`${this.o.creds.username}:${this.o.creds.password}`).toString('base64')}` };
    return {};
  }

  /** A request with auth and retries; the response of the last attempt (any status but 401 after authenticating). */
  async request(path: string, what: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<IncomingMessage> {
    const attempts = this.o.attempts ?? 5;
    let authed = false;
    for (let attempt = 0; ; attempt++) {
      let res: IncomingMessage;
      try {
        res = await this.transport.send(path, { method, headers: { ...headers, ...this.authHeader() } });
      } catch (e) {
        if (e instanceof NetworkError && e.code === 'ENOTFOUND') {
          throw new HutchError(`${what}: cannot resolve the registry host ${this.registry}`, { hint: 'check the name (and your DNS / network)' });
        }
        if (e instanceof NetworkError && attempt + 1 < attempts) {
          const ms = backoffMs(attempt);
          this.o.say?.(`${what}: ${e.message}; retrying in ${(ms / 1000).toFixed(1)}s`);
          await sleep(ms);
          continue;
        }
        if (e instanceof NetworkError) {
          throw new HutchError(`${what}: cannot reach ${this.registry}: ${e.message}`, {
            hint: 'check the registry name and your network (a proxy is not used by hutch)',
          });
        }
        throw e;
      }
      const status = res.statusCode ?? 0;
      if (status === 401 && !authed) {
        res.resume();
        authed = true;
        await this.authenticate(parseChallenges(res.headers['www-authenticate']), what);
        attempt--; // authenticating is not a failed attempt
        continue;
      }
      if (status === 401 || status === 403) {
        res.resume();
        const who = this.o.creds ? `as ${this.o.creds.username} (credentials from ${this.o.creds.from})` : 'anonymously';
        throw new HutchError(`${what}: ${this.registry} refused access ${who} (HTTP ${status})`, {
          hint: this.o.creds
            ? 'check the user name and password (hutch login REGISTRY), and that the user may pull this repository'
            : `log in first: hutch login ${this.registry} (or pass --creds USER:PASSWORD); also check the repository name`,
        });
      }
      if (RETRY_STATUS.has(status) && attempt + 1 < attempts) {
        res.resume();
        const ms = backoffMs(attempt, res.headers['retry-after'] as string | undefined);
        this.o.say?.(`${what}: HTTP ${status} from ${this.registry}; retrying in ${(ms / 1000).toFixed(1)}s`);
        await sleep(ms);
        continue;
      }
      return res;
    }
  }

  private async authenticate(challenges: Challenge[], what: string): Promise<void> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) return this.fetchToken(bearer, what);
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!this.o.creds) {
        throw new HutchError(`${what}: ${this.registry} requires a login`, { hint: `hutch login ${this.registry}, or pass --creds USER:PASSWORD` });
      }
      this.basic = true;
      return;
    }
    throw new HutchError(
      `${what}: ${this.registry} asks for authentication hutch does not know (${challenges.map((c) => c.scheme).join(', ') || 'no WWW-Authenticate header'})`,
    );
  }

  private async fetchToken(c: Challenge, what: string): Promise<void> {
    const realm = c.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new HutchError(`${what}: ${this.registry} sent a Bearer challenge without a valid realm URL ("${realm ?? ''}")`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new HutchError(`${what}: the token realm ${realm} is not an http(s) URL`);
    if (url.protocol === 'http:' && this.o.tlsVerify && !isLoopback(url.host)) {
      throw new HutchError(`${what}: the token realm ${url.origin} is plain HTTP; hutch sends no credentials there`, {
        hint: 'pass --tls-verify=false if you trust this registry and its network',
      });
    }
    if (c.params.service) url.searchParams.set('service', c.params.service);
    const scope = c.params.scope ?? (this.repository ? `repository:${this.repository}:pull` : undefined);
    if (scope) url.searchParams.set('scope', scope); // none for a login's ping: the token only proves the credentials
    const headers: Record<string, string> = {};
    if (this.o.creds) headers.authorization = `Basic ${Buffer.from(`${this.o.creds.username}:${this.o.creds.password}`).toString('base64')}`;
    // The token server is another host: its own transport (same TLS rule).
    const t = new Transport(url.host, this.o.tlsVerify);
    let res: IncomingMessage | undefined;
    for (let attempt = 0; attempt < (this.o.attempts ?? 5); attempt++) {
      try {
        res = await t.send(url.href, { headers });
      } catch (e) {
        if (e instanceof NetworkError) {
          await sleep(backoffMs(attempt));
          continue;
        }
        throw e;
      }
      if (!RETRY_STATUS.has(res.statusCode ?? 0)) break;
      res.resume();
      await sleep(backoffMs(attempt));
    }
    if (!res) throw new HutchError(`${what}: cannot reach the token server ${url.host}`);
    const status = res.statusCode ?? 0;
    const body = await readBody(res, 1 << 20, `${what}: token`);
    if (status === 401 || status === 403) {
      throw new HutchError(
        `${what}: the token server ${url.host} refused ${this.o.creds ? `the credentials of ${this.o.creds.username} (from ${this.o.creds.from})` : 'an anonymous token'} (HTTP ${status})`,
        {
          hint: this.o.creds ? 'check the user name and password (hutch login REGISTRY)' : `log in first: hutch login ${this.registry}`,
        },
      );
    }
    if (status !== 200) throw new HutchError(`${what}: the token server ${url.host} answered HTTP ${status}`);
    const tok = parseTokenResponse(body);
    if (!tok) throw new HutchError(`${what}: the token server ${url.host} sent no token`);
    this.token = { value: tok.token, expires: Date.now() + Math.max(30, tok.expiresIn - 10) * 1000 };
  }

  /** GET a manifest by tag or digest: bytes, media type and the digest of the bytes. */
  async manifest(ref: string, what: string): Promise<{ body: Buffer; contentType?: string; digest: string }> {
    const res = await this.request(`/v2/${this.repository}/manifests/${ref}`, what, { accept: ACCEPT });
    const status = res.statusCode ?? 0;
    if (status === 404) {
      res.resume();
      throw new NotFound(`${what}: not found on ${this.registry} (no such repository, tag or digest)`);
    }
    if (status !== 200) {
      const body = await readBody(res, 64 << 10, what).catch(() => Buffer.alloc(0));
      throw new HutchError(`${what}: ${this.registry} answered HTTP ${status}${errorDetail(body)}`);
    }
    const body = await readBody(res, MAX_MANIFEST_BYTES, what);
    const algo = ref.startsWith('sha512:') ? 'sha512' : 'sha256';
    const digest = `${algo}:${createHash(algo).update(body).digest('hex')}`;
    if (ref.includes(':') && ref !== digest) {
      throw new HutchError(`${what}: the manifest ${this.registry} sent does not match its digest (got ${digest})`, {
        hint: 'the registry or something between it and you changed the bytes; nothing was stored',
      });
    }
    return { body, contentType: res.headers['content-type'], digest };
  }

  /** GET a blob, optionally from byte `from` on. The caller checks status and reads the body. */
  blob(digest: string, what: string, from = 0): Promise<IncomingMessage> {
    return this.request(`/v2/${this.repository}/blobs/${digest}`, what, from ? { range: `bytes=${from}-` } : {});
  }

  /** GET /v2/ with the auth flow: throws unless the registry accepts (the credentials). */
  async ping(): Promise<void> {
    const res = await this.request('/v2/', `${this.registry}`);
    res.resume();
    if ((res.statusCode ?? 0) !== 200) throw new HutchError(`${this.registry}: /v2/ answered HTTP ${res.statusCode}`, { hint: 'is it an OCI registry?' });
  }
}

export class NotFound extends HutchError {}

/** `{"token": ..., "expires_in": N}` or `access_token`; undefined when there is none. Pure. */
export function parseTokenResponse(body: Buffer): { token: string; expiresIn: number } | undefined {
  try {
    const j = parseUntrustedJson(body.toString('utf8'), 'token') as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof j.token === 'string' && j.token ? j.token : typeof j.access_token === 'string' && j.access_token ? j.access_token : undefined;
    if (!token || !/^[\x21-\x7e]+$/.test(token)) return undefined;
    const expiresIn = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60;
    return { token, expiresIn };
  } catch {
    return undefined;
  }
}

/** The distribution spec's error body: `: MANIFEST_UNKNOWN manifest unknown`. */
export function errorDetail(body: Buffer): string {
  try {
    const j = parseUntrustedJson(body.toString('utf8'), 'error') as { errors?: { code?: string; message?: string }[] };
    const e = j.errors?.[0];
    if (e)
      return `: ${[e.code, e.message]
        .filter((x) => typeof x === 'string')
        .join(' ')
        .slice(0, 200)}`;
  } catch {
    /* not the spec's JSON */
  }
  return '';
}
