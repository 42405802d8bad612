import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** PEM files of one certificate and its key, with their paths. */
export interface CertificateFiles {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** A throwaway PKI: a CA, a server certificate for localhost, and two client certificates. */
export interface TestPki {
  ca: CertificateFiles;
  server: CertificateFiles;
  /** Signed by the CA. */
  client: CertificateFiles;
  /** Self-signed: a client the CA never vouched for. */
  stranger: CertificateFiles;
}

/**
 * Generates the PKI with the `openssl` command, in `dir`. EC P-256 keys keep it fast;
 * certificates are valid for one day.
 */
export function createTestPki(dir: string): TestPki {
  const ca = selfSigned(dir, 'ca', 'drivequant-exporter test CA', [
    'basicConstraints=critical,CA:TRUE',
    'keyUsage=critical,keyCertSign',
  ]);
  const server = signed(dir, 'server', 'localhost', ca, [
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    'extendedKeyUsage=serverAuth',
  ]);
  const client = signed(dir, 'client', 'prometheus', ca, ['extendedKeyUsage=clientAuth']);
  const stranger = selfSigned(dir, 'stranger', 'stranger', ['extendedKeyUsage=clientAuth']);

  return { ca, server, client, stranger };
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: 'pipe' });
  } catch (error) {
    const { code, stderr } = error as { code?: string; stderr?: Buffer };
    if (code === 'ENOENT') {
      throw new Error('the TLS tests need the openssl command (apt-get install openssl)');
    }
    throw new Error(`openssl ${args[0]} failed: ${stderr?.toString().trim()}`);
  }
}

function keyArgs(keyFile: string): string[] {
  return [
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
  ];
}

function selfSigned(dir: string, name: string, commonName: string, extensions: string[]) {
  const files = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  openssl([
    'req',
    '-x509',
    ...keyArgs(files.keyFile),
    '-out',
    files.certFile,
    '-days',
    '1',
    '-subj',
    `/CN=${commonName}`,
    ...extensions.flatMap((extension) => ['-addext', extension]),
  ]);

  return read(files);
}

function signed(
  dir: string,
  name: string,
  commonName: string,
  issuer: CertificateFiles,
  extensions: string[],
): CertificateFiles {
  const files = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  const request = join(dir, `${name}.csr`);
  const extensionFile = join(dir, `${name}.ext`);
  writeFileSync(extensionFile, `${extensions.join('\n')}\n`);
  openssl(['req', ...keyArgs(files.keyFile), '-out', request, '-subj', `/CN=${commonName}`]);
  openssl([
    'x509',
    '-req',
    '-in',
    request,
    '-CA',
    issuer.certFile,
    '-CAkey',
    issuer.keyFile,
    '-CAcreateserial',
    '-out',
    files.certFile,
    '-days',
    '1',
    '-extfile',
    extensionFile,
  ]);

  return read(files);
}

function read(files: { certFile: string; keyFile: string }): CertificateFiles {
  return { ...files, cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
}
