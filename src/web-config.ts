import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { dirname, resolve } from 'node:path';
import { createSecureContext, type SecureVersion, type TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import type { Request, RequestHandler } from 'express';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './config.js';
import { describeFsError, formatPath, valueAt } from './config-messages.js';

/** How the server treats client certificates, named as in the exporter-toolkit. */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;

/** One of CLIENT_AUTH_TYPES. */
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** TLS of the exporter's own server, with the files already read. */
export interface WebTlsConfig {
  /** PEM certificate chain, from `cert_file`. */
  cert: Buffer;
  /** PEM private key, from `key_file`. */
  key: Buffer;
  /** PEM CA bundle that client certificates must chain to, from `client_ca_file`. */
  clientCa: Buffer | undefined;
  /** Client certificate policy. */
  clientAuth: ClientAuthType;
  /** Oldest TLS version accepted. */
  minVersion: SecureVersion;
  /** Newest TLS version accepted; undefined means Node's newest. */
  maxVersion: SecureVersion | undefined;
}

/** The `--web.config.file`, validated. */
export interface WebConfig {
  /** TLS settings; undefined serves plain HTTP. */
  tls: WebTlsConfig | undefined;
  /** bcrypt hashes by user name; empty turns basic auth off. */
  basicAuthUsers: ReadonlyMap<string, string>;
  /** Headers added to every answer (`http_server_config.headers`). */
  headers: Readonly<Record<string, string>>;
}

const TLS_VERSIONS: Record<string, SecureVersion> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};

// Keys of the exporter-toolkit format that this exporter does not implement. They are
// refused by name rather than ignored: silently dropping a cipher restriction would be worse.
const UNSUPPORTED_KEYS = new Set([
  'cert',
  'key',
  'client_ca',
  'cipher_suites',
  'curve_preferences',
  'prefer_server_cipher_suites',
  'client_allowed_sans',
  'http2',
  'rate_limit',
]);

const BCRYPT_HASH = /^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

const nonEmpty = z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' });
const tlsVersion = z.enum(Object.keys(TLS_VERSIONS) as [string, ...string[]], {
  error: `must be one of ${Object.keys(TLS_VERSIONS).join(', ')}`,
});

const mapping = { error: 'must be a mapping' };

const webConfigSchema = z.strictObject(
  {
    tls_server_config: z
      .strictObject(
        {
          cert_file: nonEmpty,
          key_file: nonEmpty,
          client_auth_type: z
            .enum(CLIENT_AUTH_TYPES, { error: `must be one of ${CLIENT_AUTH_TYPES.join(', ')}` })
            .optional(),
          client_ca_file: nonEmpty.optional(),
          min_version: tlsVersion.optional(),
          max_version: tlsVersion.optional(),
        },
        mapping,
      )
      .optional(),
    http_server_config: z
      .strictObject(
        {
          headers: z
            .strictObject(
              {
                'Content-Security-Policy': nonEmpty.optional(),
                'X-Frame-Options': z
                  .string()
                  .regex(/^(deny|sameorigin)$/i, { error: 'must be deny or sameorigin' })
                  .optional(),
                'X-Content-Type-Options': z
                  .string()
                  .regex(/^nosniff$/i, { error: 'must be nosniff' })
                  .optional(),
                'X-XSS-Protection': nonEmpty.optional(),
                'Strict-Transport-Security': nonEmpty.optional(),
              },
              mapping,
            )
            .optional(),
        },
        mapping,
      )
      .optional(),
    basic_auth_users: z
      .record(
        z.string().regex(/^[^:]+$/),
        z.string({ error: 'must be a bcrypt hash' }).regex(BCRYPT_HASH, {
          error: 'must be a bcrypt hash ($2a$, $2b$ or $2y$), not a password',
        }),
        mapping,
      )
      .nullish(),
  },
  { error: 'must be a mapping of tls_server_config, http_server_config and basic_auth_users' },
);

/** Reads and validates a web config file. Throws ConfigError naming every bad key. */
export function loadWebConfigFile(path: string): WebConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${describeFsError(error)}`]);
  }

  return parseWebConfig(text, path, dirname(resolve(path)));
}

/** Parses web config text; relative file names are read from `baseDir`. Throws ConfigError. */
export function parseWebConfig(text: string, source: string, baseDir: string): WebConfig {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      source,
      document.errors.map(
        (error) => `YAML syntax: ${error.message.split('\n')[0]?.replace(/:$/, '')}`,
      ),
    );
  }

  const json: unknown = document.toJS() ?? {};
  const parsed = webConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(
      source,
      parsed.error.issues.map((issue) => describeIssue(issue, json)),
    );
  }

  const raw = parsed.data;
  const problems: string[] = [];
  const tls = raw.tls_server_config && readTls(raw.tls_server_config, baseDir, problems);
  if (problems.length > 0) {
    throw new ConfigError(source, problems);
  }

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw.http_server_config?.headers ?? {})) {
    if (value !== undefined) {
      headers[name] = value;
    }
  }

  return { tls, basicAuthUsers: new Map(Object.entries(raw.basic_auth_users ?? {})), headers };
}

type RawTls = NonNullable<z.output<typeof webConfigSchema>['tls_server_config']>;

function readTls(raw: RawTls, baseDir: string, problems: string[]): WebTlsConfig | undefined {
  const read = (key: string, file: string): Buffer | undefined => {
    const path = resolve(baseDir, file);
    try {
      return readFileSync(path);
    } catch (error) {
      problems.push(`tls_server_config.${key}: cannot read "${path}": ${describeFsError(error)}`);
      return undefined;
    }
  };
  const cert = read('cert_file', raw.cert_file);
  const key = read('key_file', raw.key_file);
  const clientCa =
    raw.client_ca_file === undefined ? undefined : read('client_ca_file', raw.client_ca_file);
  // As in the toolkit: a CA alone asks for nothing, and verifying needs a CA to verify with.
  const clientAuth = raw.client_auth_type ?? 'NoClientCert';
  const verifies =
    clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert';
  if (raw.client_ca_file !== undefined && clientAuth === 'NoClientCert') {
    problems.push(
      'tls_server_config.client_ca_file: set, but client_auth_type does not ask for client certificates',
    );
  }
  if (verifies && raw.client_ca_file === undefined) {
    problems.push(`tls_server_config.client_ca_file: required by client_auth_type ${clientAuth}`);
  }
  if (cert === undefined || key === undefined || problems.length > 0) {
    return undefined;
  }

  const tls: WebTlsConfig = {
    cert,
    key,
    clientCa,
    clientAuth,
    minVersion: TLS_VERSIONS[raw.min_version ?? 'TLS12'] ?? 'TLSv1.2',
    maxVersion: raw.max_version === undefined ? undefined : TLS_VERSIONS[raw.max_version],
  };
  try {
    createSecureContext(secureContextOptions(tls));
  } catch (error) {
    problems.push(
      `tls_server_config: the certificate, key, CA or versions cannot be used together: ${(error as Error).message}`,
    );
  }

  return tls;
}

/** The options of `https.createServer` for a TLS config. */
export function httpsServerOptions(tls: WebTlsConfig): HttpsServerOptions {
  return {
    ...secureContextOptions(tls),
    requestCert: tls.clientAuth !== 'NoClientCert',
    rejectUnauthorized: tls.clientAuth === 'RequireAndVerifyClientCert',
  };
}

/** The parts of a TLS config that `server.setSecureContext` can swap on a reload. */
export function secureContextOptions(tls: WebTlsConfig) {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa }),
    minVersion: tls.minVersion,
    ...(tls.maxVersion === undefined ? {} : { maxVersion: tls.maxVersion }),
  };
}

/**
 * Enforces the two policies Node cannot express with requestCert and rejectUnauthorized
 * alone; call it on every `secureConnection`. Returns false after destroying the socket.
 */
export function enforceClientAuth(socket: TLSSocket, clientAuth: ClientAuthType): boolean {
  const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
  const refused =
    (clientAuth === 'RequireAnyClientCert' && !presented) ||
    (clientAuth === 'VerifyClientCertIfGiven' && presented && !socket.authorized);
  if (refused) {
    socket.destroy();
  }

  return !refused;
}

/** Why a web config cannot replace the running one without a restart, if it cannot. */
export function describeUnreloadableChange(
  running: WebConfig | undefined,
  next: WebConfig | undefined,
): string | undefined {
  if ((running?.tls === undefined) !== (next?.tls === undefined)) {
    return 'tls_server_config: TLS cannot be turned on or off by a reload; restart the exporter';
  }
  if (running?.tls !== undefined && running.tls.clientAuth !== next?.tls?.clientAuth) {
    return 'tls_server_config.client_auth_type: cannot change on a reload; restart the exporter';
  }

  return undefined;
}

/** How long a successful password check is remembered, in milliseconds. */
const VERIFIED_TTL_MS = 60_000;
/** Remembered successful checks at most. */
const VERIFIED_MAX_ENTRIES = 256;

/** The express middleware that applies a web config to every request, and swaps it on reload. */
export interface WebGuard {
  readonly handler: RequestHandler;
  /** Replaces the users and headers; connections already open are checked under the new ones. */
  update(config: WebConfig | undefined): void;
}

/** Options of createWebGuard. */
export interface WebGuardOptions {
  /** Clock, in Unix milliseconds. */
  now?: () => number;
  /**
   * Requests that carry credentials of their own which the route checks itself (the task
   * API's bearer token), and so pass without basic auth: both use `Authorization`.
   */
  authenticatedElsewhere?: (request: Request) => boolean;
}

/**
 * Adds the configured headers and checks basic auth on every request. bcrypt is slow by
 * design (tens of milliseconds per check), so a successful check is remembered for a
 * minute, keyed by an HMAC under a per-process random key rather than by the password.
 */
export function createWebGuard(
  initial: WebConfig | undefined,
  options: WebGuardOptions = {},
): WebGuard {
  const now = options.now ?? Date.now;
  const cacheKey = randomBytes(32);
  let config = initial;
  let verified = new Map<string, number>();

  async function isAuthorized(users: ReadonlyMap<string, string>, header: string | undefined) {
    const credentials = parseBasicAuthorization(header);
    if (credentials === undefined) {
      return false;
    }

    const hash = findHashInConstantTime(users, credentials.user);
    const entry = createHmac('sha256', cacheKey)
      .update(`${credentials.user}\0${hash ?? ''}\0${credentials.password}`)
      .digest('base64');
    const expiresMs = verified.get(entry);
    if (hash !== undefined && expiresMs !== undefined && expiresMs > now()) {
      return true;
    }

    // An unknown user still pays for a bcrypt check, so timing does not tell user names apart.
    const checkedHash = hash ?? users.values().next().value ?? '';
    const matches = (await bcrypt.compare(credentials.password, checkedHash)) && hash !== undefined;
    if (matches) {
      if (verified.size >= VERIFIED_MAX_ENTRIES) {
        verified.delete(verified.keys().next().value ?? '');
      }
      verified.set(entry, now() + VERIFIED_TTL_MS);
    }

    return matches;
  }

  const handler: RequestHandler = (request, response, next) => {
    const current = config;
    for (const [name, value] of Object.entries(current?.headers ?? {})) {
      response.setHeader(name, value);
    }
    const users = current?.basicAuthUsers;
    if (users === undefined || users.size === 0 || options.authenticatedElsewhere?.(request)) {
      next();
      return;
    }

    isAuthorized(users, request.headers.authorization).then((authorized) => {
      if (authorized) {
        next();
        return;
      }

      response.status(401).set('WWW-Authenticate', 'Basic').type('text').send('Unauthorized\n');
    }, next);
  };

  return {
    handler,
    update(next) {
      config = next;
      verified = new Map();
    },
  };
}

/** Splits an `Authorization: Basic ...` header into user and password. */
export function parseBasicAuthorization(
  header: string | undefined,
): { user: string; password: string } | undefined {
  const match = /^basic +([A-Za-z0-9+/=]+) *$/i.exec(header ?? '');
  if (match?.[1] === undefined) {
    return undefined;
  }

  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) {
    return undefined;
  }

  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// Compares the user name with every configured one through fixed-length digests and without
// stopping early, so neither the position nor the length of a match shows in the timing.
function findHashInConstantTime(
  users: ReadonlyMap<string, string>,
  user: string,
): string | undefined {
  const wanted = createHash('sha256').update(user).digest();
  let found: string | undefined;
  for (const [name, hash] of users) {
    const same = timingSafeEqual(wanted, createHash('sha256').update(name).digest());
    found = same ? hash : found;
  }

  return found;
}

function describeIssue(issue: z.core.$ZodIssue, json: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((key) => {
        const path = formatPath([...issue.path, key]);
        return UNSUPPORTED_KEYS.has(key)
          ? `${path}: is not supported by this exporter`
          : `${path}: unknown key`;
      })
      .join('\n  ');
  }

  const path = formatPath(issue.path);
  if (issue.code === 'invalid_key') {
    return `${path}: a user name must not contain ":"`;
  }
  if (issue.code === 'invalid_type' && valueAt(json, issue.path) === undefined) {
    return `${path}: is required`;
  }

  // The value is never echoed: under basic_auth_users it may be a password typed by mistake.
  return `${path}: ${issue.message}`;
}

/** Reads `--web.config.file` when the flag is given. Throws ConfigError. */
export function loadWebConfigFlag(path: string | undefined): WebConfig | undefined {
  return path === undefined ? undefined : loadWebConfigFile(path);
}

/** Reads the web config again for a reload; refuses what only a restart can change. */
export function reloadWebConfigFile(
  path: string | undefined,
  running: WebConfig | undefined,
): WebConfig | undefined {
  let next: WebConfig | undefined;
  try {
    next = loadWebConfigFlag(path);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(
        String(path),
        error.problems.map((problem) => `web config ${problem}`),
      );
    }
    throw error;
  }
  const refusal = describeUnreloadableChange(running, next);
  if (refusal !== undefined) {
    throw new ConfigError(String(path), [`web config ${refusal}`]);
  }

  return next;
}
