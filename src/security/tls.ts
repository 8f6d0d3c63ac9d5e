/**
 * TLS material for `mediagit serve --tls-self-signed`: an EC P-256
 * certificate for localhost / 127.0.0.1 / ::1, made once and kept in the
 * given folder (key 0600) so clients can trust it across restarts
 * (MEDIAGIT_CA_FILE=<folder>/self-signed.pem).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  readonly key: string;
  readonly cert: string;
  readonly certFile: string;
}

async function writePrivate(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

export async function selfSignedMaterial(dir: string): Promise<TlsMaterial> {
  const certFile = path.join(dir, 'self-signed.pem');
  const keyFile = path.join(dir, 'self-signed.key');
  try {
    const [key, cert] = await Promise.all([
      fs.readFile(keyFile, 'utf8'),
      fs.readFile(certFile, 'utf8'),
    ]);
    return { key, cert, certFile };
  } catch {
    // not made yet
  }
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    notAfterDate: new Date(Date.now() + 825 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  await writePrivate(keyFile, pems.private, 0o600);
  await writePrivate(certFile, pems.cert, 0o644);
  return { key: pems.private, cert: pems.cert, certFile };
}

/** The oldest TLS version a server accepts: 1.3 unless 1.2 is asked for. */
export type TlsMinVersion = '1.2' | '1.3';

/** What a server serves HTTPS with (`serve --tls-*`). */
export interface ServerTls {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
  /** PEM of the CAs whose client certificates are accepted: mutual TLS, required of every client. */
  readonly clientCa?: string | Buffer | undefined;
  readonly minVersion?: TlsMinVersion | undefined;
}

/** The secure-context part of a server's TLS options: what a reload (SIGHUP) replaces. */
export function secureContextOptions(tls: ServerTls): {
  key: string | Buffer;
  cert: string | Buffer;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  ca?: string | Buffer;
} {
  return {
    key: tls.key,
    cert: tls.cert,
    minVersion: tls.minVersion === '1.2' ? 'TLSv1.2' : 'TLSv1.3',
    ...(tls.clientCa !== undefined ? { ca: tls.clientCa } : {}),
  };
}

/** Options for an HTTPS server: the secure context, and client certificates required with a client CA. */
export function httpsServerOptions(tls: ServerTls): ReturnType<typeof secureContextOptions> & {
  requestCert: boolean;
  rejectUnauthorized: boolean;
} {
  const mutual = tls.clientCa !== undefined;
  return { ...secureContextOptions(tls), requestCert: mutual, rejectUnauthorized: mutual };
}
