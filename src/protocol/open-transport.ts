/** Picks the transport for a remote URL: HTTP(S) to a server, else a local bare repository. */
import { HttpTransport } from './http-transport.ts';
import { isHttpUrl, type Transport } from './transport.ts';
import type { TlsClientOptions } from '../security/tls-client.ts';

export interface TransportOptions extends TlsClientOptions {
  /** Resolves relative local paths. */
  readonly cwd?: string | undefined;
  /** Credential for HTTP remotes (an API key or JWT). */
  readonly token?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

export async function openTransport(url: string, options: TransportOptions): Promise<Transport> {
  if (isHttpUrl(url)) {
    return new HttpTransport(url, {
      token: options.token,
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      signal: options.signal,
    });
  }
  // The server's repository code, loaded only for a remote on a local path.
  const { LocalTransport } = await import('./local-transport.ts');
  return LocalTransport.open(url, options.cwd ?? process.cwd());
}
