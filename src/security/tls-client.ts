/**
 * What a client trusts and presents over HTTPS: extra CAs to trust
 * (`MEDIAGIT_CA_FILE`) and, for a server that requires mutual TLS, a client
 * certificate and its key (`MEDIAGIT_CLIENT_CERT`, `MEDIAGIT_CLIENT_KEY`).
 * Kept apart from tls.ts, whose certificate generator every client need not load.
 */
export interface TlsClientOptions {
  /** PEM to trust for HTTPS remotes with a private CA or self-signed certificate. */
  readonly ca?: string | Buffer | undefined;
  /** PEM client certificate (chain) for servers that require one. */
  readonly cert?: string | Buffer | undefined;
  /** PEM private key of `cert`. */
  readonly key?: string | Buffer | undefined;
}

/** The fields of `options` that are set, for https.Agent or tls.connect. */
export function tlsConnectOptions(options: TlsClientOptions): {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
} {
  return {
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(options.cert !== undefined ? { cert: options.cert } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
  };
}
