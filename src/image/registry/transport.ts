// HTTP(S) to one registry with Node's own http/https (no dependency): TLS
// verified against the system's CA bundle unless `--tls-verify=false`,
// redirects followed (blob downloads are often redirected to a storage
// service; the Authorization header never follows to another host), a
// keep-alive agent per registry, and the plain-HTTP rule:
//   - with --tls-verify=false: HTTPS without certificate checks, and plain
//     HTTP when the server does not speak TLS;
//   - for a loopback registry (localhost, 127.0.0.0/8, ::1): plain HTTP when
//     the server does not speak TLS, but a server that does speak TLS must
//     still present a valid certificate;
//   - any other registry: HTTPS with a valid certificate only.

import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { HutchError } from '../../util/errors';
import { apiHost, isLoopback } from './reference';

export interface SendOptions {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** Stop waiting after this long without a byte (default 60 s). */
  idleMs?: number;
}

/** A network-level failure (no HTTP status): retried by callers. */
export class NetworkError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const TLS_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
  'CERT_NOT_YET_VALID',
]);

export class Transport {
  readonly registry: string;
  readonly tlsVerify: boolean;
  private scheme: 'https' | 'http' | undefined;
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  constructor(registry: string, tlsVerify: boolean) {
    this.registry = registry;
    this.tlsVerify = tlsVerify;
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: tlsVerify });
  }

  /** May this registry be spoken to in plain HTTP when it does not speak TLS? */
  private plainAllowed(): boolean {
    return !this.tlsVerify || isLoopback(this.registry);
  }

  baseUrl(): string {
    return `${this.scheme ?? 'https'}://${apiHost(this.registry)}`;
  }

  /** Send a request to a path on the registry (or an absolute URL), following redirects. */
  async send(pathOrUrl: string, o: SendOptions = {}): Promise<IncomingMessage> {
    if (!this.scheme && !pathOrUrl.includes('://')) {
      try {
        const r = await this.sendOnce(new URL(pathOrUrl, `https://${apiHost(this.registry)}`), o, 0);
        this.scheme = 'https';
        return r;
      } catch (e) {
        if (!(e instanceof NetworkError) || e.code !== 'NOT_TLS') throw e;
        if (!this.plainAllowed()) {
          throw new HutchError(`${this.registry} does not speak TLS (HTTPS)`, { hint: 'if it is a plain-HTTP registry you trust, pass --tls-verify=false' });
        }
        this.scheme = 'http';
      }
    }
    return this.sendOnce(new URL(pathOrUrl, this.baseUrl()), o, 0);
  }

  private sendOnce(url: URL, o: SendOptions, hops: number): Promise<IncomingMessage> {
    const lib = url.protocol === 'http:' ? http : https;
    const agent = url.protocol === 'http:' ? this.httpAgent : this.httpsAgent;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = lib.request(url, { method: o.method ?? 'GET', headers: { 'user-agent': 'hutch', ...o.headers }, agent }, (res) => {
        const status = res.statusCode ?? 0;
        if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
          res.resume();
          if (hops >= 5) return reject(new HutchError(`${this.registry}: too many redirects for ${url.pathname}`));
          const next = new URL(res.headers.location, url);
          if (next.protocol === 'http:' && url.protocol === 'https:' && !this.plainAllowed()) {
            return reject(
              new HutchError(`${this.registry}: refused a redirect from HTTPS to plain HTTP (${next.host})`, {
                hint: 'pass --tls-verify=false if you trust this registry',
              }),
            );
          }
          const headers = { ...o.headers };
          if (next.host !== url.host) delete headers.authorization; // credentials stay with the registry
          return resolve(this.sendOnce(next, { ...o, headers }, hops + 1));
        }
        resolve(res);
      });
      req.setTimeout(o.idleMs ?? 60_000, () => req.destroy(Object.assign(new Error('no answer for 60 s'), { code: 'ETIMEDOUT' })));
      req.on('error', (e: NodeJS.ErrnoException) => reject(this.describe(e, url)));
      req.end();
    });
  }

  /** Turn a socket/TLS error into a NetworkError (retryable) or a HutchError (not). */
  describe(e: NodeJS.ErrnoException, url: URL): Error {
    const code = e.code ?? '';
    if (TLS_CERT_CODES.has(code)) {
      return new HutchError(`${this.registry}: the TLS certificate of ${url.host} is not trusted (${e.message})`, {
        hint: 'if you trust this registry (a self-signed or private one), pass --tls-verify=false; otherwise install its CA into the system bundle',
      });
    }
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|http request/i.test(e.message)) {
      return new NetworkError(`${url.host} does not speak TLS`, 'NOT_TLS');
    }
    return new NetworkError(`${url.host}: ${e.message}`, code || 'ENET');
  }
}

/** Read a whole response body, refusing more than `limit` bytes. */
export async function readBody(res: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.destroy();
      throw new HutchError(`${what}: the registry sent more than ${limit} bytes`, { hint: 'the registry is broken or hostile' });
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
