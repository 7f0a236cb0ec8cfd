// A real OCI registry for tests: Debian's `docker-registry` (the CNCF
// distribution registry, v2) started by the test on a free loopback port with
// a temp config (no service, no root needed), optionally with htpasswd Basic
// auth, token (Bearer) auth against a token issuer written here, or TLS with
// a self-signed certificate. Several registries may serve one storage
// directory: tests push through an open one and pull through the guarded one.
// Also a fault-injecting proxy (count requests, 503s, cut connections, flip
// bytes) to put between hutch and a registry.

import type { ChildProcess } from 'node:child_process';
import { createSign, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { freePort, hasCommand, killTree, runCmd, spawnCmd, tmpDir, waitFor } from './hutch';

export const REGISTRY_BIN = ['/usr/bin/docker-registry', '/usr/bin/registry'].find((p) => fs.existsSync(p));

/** Why registry tests cannot run here, or undefined. */
export function registryMissing(): string | undefined {
  if (!REGISTRY_BIN) return 'no docker-registry binary (apt-get install docker-registry)';
  if (!hasCommand('openssl')) return 'no openssl (TLS and token certificates)';
  if (!hasCommand('htpasswd')) return 'no htpasswd (apt-get install apache2-utils)';
  return undefined;
}

export interface Registry {
  /** host:port, e.g. 127.0.0.1:40123 */
  host: string;
  url: string;
  storage: string;
  /** The registry's own log (access log lines included). */
  log(): string;
  stop(): void;
}

export interface RegistryOptions {
  storage?: string;
  htpasswd?: { user: string; password: string };
  token?: { realm: string; service: string; issuer: string; certFile: string };
  tls?: { cert: string; key: string };
}

export async function startRegistry(o: RegistryOptions = {}): Promise<Registry> {
  const dir = tmpDir('hutch-registry-');
  const storage = o.storage ?? path.join(dir, 'storage');
  fs.mkdirSync(storage, { recursive: true });
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomUUID()}`,
  ];
  if (o.tls) lines.push('  tls:', `    certificate: ${o.tls.cert}`, `    key: ${o.tls.key}`);
  if (o.htpasswd) {
    const file = path.join(dir, 'htpasswd');
    const r = await runCmd(['htpasswd', '-Bbn', o.htpasswd.user, o.htpasswd.password]);
    if (r.code !== 0) throw new Error(`htpasswd: ${r.stderr}`);
    fs.writeFileSync(file, r.stdout);
    lines.push('auth:', '  htpasswd:', '    realm: hutch-test', `    path: ${file}`);
  }
  if (o.token) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${o.token.realm}`,
      `    service: ${o.token.service}`,
      `    issuer: ${o.token.issuer}`,
      `    rootcertbundle: ${o.token.certFile}`,
    );
  }
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, `${lines.join('\n')}\n`);
  const logFile = path.join(dir, 'registry.log');
  const out = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawnCmd([REGISTRY_BIN!, 'serve', config], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const scheme = o.tls ? 'https' : 'http';
  const host = `127.0.0.1:${port}`;
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      }),
    15_000,
    { what: `the registry on ${host} (log: ${logFile})` },
  );
  return { host, url: `${scheme}://${host}`, storage, log: () => fs.readFileSync(logFile, 'utf8'), stop: () => killTree(child) };
}

/** Access-log lines of requests for `digest`'s blob (GET only). */
export function blobGets(log: string, digest: string): string[] {
  return log.split('\n').filter((l) => l.includes(`"GET /v2/`) && l.includes(`/blobs/${digest} `));
}

/** A self-signed certificate for 127.0.0.1 (TLS, and the token issuer's signing key). */
export async function selfSigned(cn = '127.0.0.1'): Promise<{ cert: string; key: string }> {
  const dir = tmpDir('hutch-cert-');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const r = await runCmd([
    'openssl',
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=IP:127.0.0.1,DNS:localhost`,
  ]);
  if (r.code !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { cert, key };
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Query strings of the token requests, with the user (or '' when anonymous). */
  requests: { user: string; scope: string }[];
  stop(): void;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A token issuer for the registry's `token` auth: RS256 JWTs carrying the
 * certificate in `x5c` (the registry trusts it through rootcertbundle).
 * `grant(user, repo)` decides: '' is anonymous.
 */
export async function startTokenServer(grant: (user: string, password: string, repo: string) => string[] | 'deny'): Promise<TokenServer> {
  const { cert, key } = await selfSigned('hutch-token-issuer');
  const der = Buffer.from(fs.readFileSync(cert, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const keyPem = fs.readFileSync(key, 'utf8');
  const service = 'hutch-test-registry';
  const issuer = 'hutch-test-issuer';
  const requests: TokenServer['requests'] = [];
  const srv = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization;
    let user = '';
    let password = '';
    if (auth?.startsWith('Basic ')) {
      const s = Buffer.from(auth.slice(6), 'base64').toString();
      user = s.slice(0, s.indexOf(':'));
      password = s.slice(s.indexOf(':') + 1);
    }
    const scope = u.searchParams.get('scope') ?? '';
    requests.push({ user, scope });
    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const sc of scope.split(' ').filter(Boolean)) {
      const [type, name, actions] = sc.split(':');
      const g = grant(user, password, name);
      if (g === 'deny') {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
        return;
      }
      access.push({ type, name, actions: actions.split(',').filter((a) => g.includes(a)) });
    }
    if (!scope && user && grant(user, password, '') === 'deny') {
      res.writeHead(401).end();
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access }));
    const sig = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(keyPem);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${b64url(sig)}`, expires_in: 300 }));
  });
  const port = await freePort();
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return { realm: `http://127.0.0.1:${port}/token`, service, issuer, certFile: cert, requests, stop: () => srv.close() };
}

export interface ProxyRequest {
  method: string;
  url: string;
  range?: string;
  status?: number;
}

/**
 * What to do with one request: pass it on, answer with a status, pass it but
 * cut the connection after `cutAfter` body bytes, or flip the byte at `flipAt`.
 */
export type Fault = { status: number } | { cutAfter: number } | { flipAt: number } | { stall: true } | undefined;

export interface Proxy {
  host: string;
  requests: ProxyRequest[];
  stop(): void;
}

/** An HTTP proxy in front of a plain-HTTP registry that records requests and injects `fault(req, n)` (n: how many times this URL was seen). */
export async function startProxy(target: string, fault: (r: ProxyRequest, n: number) => Fault = () => undefined): Promise<Proxy> {
  const requests: ProxyRequest[] = [];
  const seen = new Map<string, number>();
  const t = new URL(target);
  const srv = http.createServer((req, res) => {
    const rec: ProxyRequest = { method: req.method ?? 'GET', url: req.url ?? '/', range: req.headers.range };
    requests.push(rec);
    const n = (seen.get(rec.url) ?? 0) + 1;
    seen.set(rec.url, n);
    const f = fault(rec, n);
    if (f && 'status' in f) {
      rec.status = f.status;
      res.writeHead(f.status, { 'content-type': 'text/plain' }).end('injected');
      return;
    }
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (ur) => {
      rec.status = ur.statusCode;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      let sent = 0;
      if (f && 'stall' in f) {
        ur.once('data', (c: Buffer) => res.write(c.subarray(0, Math.min(c.length, 1024))));
        ur.pause();
        return;
      }
      ur.on('data', (c: Buffer) => {
        let b = c;
        if (f && 'flipAt' in f && sent <= f.flipAt && f.flipAt < sent + c.length) {
          b = Buffer.from(c);
          b[f.flipAt - sent] ^= 0xff;
        }
        if (f && 'cutAfter' in f && sent + b.length > f.cutAfter) {
          res.write(b.subarray(0, f.cutAfter - sent));
          sent = f.cutAfter;
          ur.destroy();
          res.socket?.destroy();
          return;
        }
        sent += b.length;
        res.write(b);
      });
      ur.on('end', () => res.end());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${port}`,
    requests,
    stop: () => {
      srv.closeAllConnections();
      srv.close();
    },
  };
}
