/**
 * Short-lived access tokens (JWT, HS256) issued for an API key, so a client
 * pays the Argon2 cost of its key once and then presents a cheap token.
 *
 * Claims: `sub` (user), `iat`, `exp`, `iss` and `aud` (both 'mediagit'), and
 * `kid` (the API key's id, so revoking the key can be checked), `repo` (a
 * repository name or '*') and `scope`. Verification accepts HS256 only and
 * requires every claim; whatever fails is one error code, AUTH_INVALID_TOKEN,
 * whose message never echoes the token.
 */
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { MediaGitError } from '../errors.ts';
import { isScope, type Scope } from './api-keys.ts';

export interface AccessClaims {
  readonly user: string;
  readonly keyId: string;
  /** A repository name, or '*' for every repository. */
  readonly repo: string;
  readonly scope: Scope;
}

const ISSUER = 'mediagit';
const AUDIENCE = 'mediagit';
const ALGORITHM = 'HS256';
/** HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2). */
const MIN_SECRET_BYTES = 32;
/** Longer than any token we issue; refuses to parse arbitrarily large input. */
const MAX_TOKEN_CHARS = 4096;

/**
 * A signing key of a key ring: tokens it signs name it in their header
 * (`kid`), so a server verifies tokens signed by the current key and by the
 * one before it while a rotation spreads to every server of a root.
 */
export interface SigningKey {
  readonly kid: string;
  readonly secret: Uint8Array;
}

/** The keys a verifier accepts: the secret a header's `kid` names (undefined: a token from before key ids). */
export interface KeyRing {
  keyFor(kid: string | undefined): Promise<Uint8Array | undefined>;
}

export async function issueAccessToken(
  key: Uint8Array | SigningKey,
  claims: AccessClaims,
  ttlSeconds = 900,
): Promise<{ token: string; expiresAt: Date }> {
  const secret = key instanceof Uint8Array ? key : key.secret;
  checkSecret(secret);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new MediaGitError(
      'BAD_TOKEN_TTL',
      `token lifetime must be a positive whole number of seconds, got ${ttlSeconds}`,
      {
        kind: 'usage',
        data: { ttlSeconds },
      },
    );
  }
  const now = Math.floor(Date.now() / 1000);
  const exp = now + ttlSeconds;
  const token = await new SignJWT({ kid: claims.keyId, repo: claims.repo, scope: claims.scope })
    .setProtectedHeader(
      key instanceof Uint8Array
        ? { alg: ALGORITHM, typ: 'JWT' }
        : { alg: ALGORITHM, typ: 'JWT', kid: key.kid },
    )
    .setSubject(claims.user)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(secret);
  return { token, expiresAt: new Date(exp * 1000) };
}

/** The claims of a valid, unexpired token signed with `secret`; AUTH_INVALID_TOKEN otherwise. */
export async function verifyAccessToken(
  keys: Uint8Array | KeyRing,
  token: string,
): Promise<AccessClaims> {
  if (keys instanceof Uint8Array) checkSecret(keys);
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !looksLikeJwt(token)) {
    throw invalidToken('malformed token');
  }
  let payload: JWTPayload;
  // With a key ring, the header's `kid` picks the secret (an unknown one fails).
  const key =
    keys instanceof Uint8Array
      ? keys
      : async (header: { kid?: string | undefined }): Promise<Uint8Array> => {
          const kid = header.kid;
          if (kid !== undefined && (typeof kid !== 'string' || kid.length > 64)) {
            throw invalidToken('bad key id');
          }
          const secret = await keys.keyFor(kid);
          if (secret === undefined) throw invalidToken('unknown signing key');
          checkSecret(secret);
          return secret;
        };
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [ALGORITHM],
      issuer: ISSUER,
      audience: AUDIENCE,
      requiredClaims: ['sub', 'iat', 'exp'],
    }));
  } catch (error) {
    throw invalidToken(reasonFor(error));
  }
  const { sub, kid, repo, scope } = payload;
  if (typeof sub !== 'string' || sub === '') throw invalidToken('missing or bad claim sub');
  if (typeof kid !== 'string' || kid === '') throw invalidToken('missing or bad claim kid');
  if (typeof repo !== 'string' || repo === '') throw invalidToken('missing or bad claim repo');
  if (!isScope(scope)) throw invalidToken('missing or bad claim scope');
  return { user: sub, keyId: kid, repo, scope };
}

/** Whether `token` has the shape of a compact JWS: three non-empty base64url segments. */
export function looksLikeJwt(token: string): boolean {
  return (
    typeof token === 'string' && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)
  );
}

function checkSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length < MIN_SECRET_BYTES) {
    throw new MediaGitError(
      'JWT_SECRET_TOO_SHORT',
      `the token signing secret must be at least ${MIN_SECRET_BYTES} bytes`,
      {
        kind: 'internal',
      },
    );
  }
}

/** Maps a jose failure to a short reason; anything not from jose is a bug and is rethrown. */
function reasonFor(error: unknown): string {
  if (!(error instanceof errors.JOSEError)) throw error;
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof errors.JWTClaimValidationFailed) {
    return `claim ${error.claim} failed: ${error.reason}`;
  }
  return 'malformed token';
}

function invalidToken(reason: string): MediaGitError {
  return new MediaGitError('AUTH_INVALID_TOKEN', `invalid access token: ${reason}`, {
    kind: 'user',
    data: { reason },
  });
}
