import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { S3UrlSigner } from './s3-presign.ts';

// No server: a presigned URL is a pure function of request, credentials and
// time, and the SDK's getSignedUrl is the reference for every one of them.
const keys = [
  'repo/objects/pack/pack-0a1b2c.pack',
  'a b/c+d=e&f',
  'ünïcødé/ファイル.bin',
  "odd/!'()*~._-",
  'x',
];

const clients: [string, () => S3Client][] = [
  [
    'path-style endpoint (MinIO, s3rver)',
    () =>
      new S3Client({
        endpoint: 'http://127.0.0.1:9000',
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      }),
  ],
  [
    'AWS virtual-hosted, another region, session token',
    () =>
      new S3Client({
        region: 'eu-west-3',
        credentials: {
          accessKeyId: 'ASIAEXAMPLE',
          secretAccessKey: 'secret2',
          sessionToken: 'token/with+odd=chars',
        },
      }),
  ],
  [
    'custom https endpoint with a port, virtual-hosted',
    () =>
      new S3Client({
        endpoint: 'https://storage.example.net:8443',
        region: 'auto',
        credentials: { accessKeyId: 'K', secretAccessKey: 'S' },
      }),
  ],
];

describe('S3UrlSigner makes the SDK getSignedUrl URLs', () => {
  for (const [name, make] of clients) {
    test(name, async () => {
      const client = make();
      const bucket = 'media-bucket';
      const signer = new S3UrlSigner(client, bucket);
      const signingDate = new Date('2026-12-04T06:30:00Z');
      for (const kind of ['GET', 'PUT', 'PUT create-only'] as const) {
        const method = kind === 'GET' ? 'GET' : 'PUT';
        const createOnly = kind === 'PUT create-only';
        // Twice: the first URL of a kind is the SDK's; the second round is the template's.
        for (const round of [1, 2]) {
          for (const [i, key] of keys.entries()) {
            const expiresSeconds = 600 + i;
            const ours = await signer.sign({
              method,
              key,
              expiresSeconds,
              createOnly,
              signingDate,
            });
            const command =
              method === 'GET'
                ? new GetObjectCommand({ Bucket: bucket, Key: key })
                : new PutObjectCommand({
                    Bucket: bucket,
                    Key: key,
                    ...(createOnly ? { IfNoneMatch: '*' } : {}),
                  });
            const sdk = await getSignedUrl(client, command, {
              expiresIn: expiresSeconds,
              signingDate,
              ...(createOnly ? { signableHeaders: new Set(['if-none-match']) } : {}),
            });
            assert.equal(ours, sdk, `${kind} ${key} (round ${round})`);
          }
        }
      }
      // A different signing date signs differently (the test can fail).
      const later = await signer.sign({
        method: 'GET',
        key: keys[0]!,
        expiresSeconds: 600,
        signingDate: new Date('2026-12-05T06:30:00Z'),
      });
      const earlier = await signer.sign({
        method: 'GET',
        key: keys[0]!,
        expiresSeconds: 600,
        signingDate,
      });
      assert.notEqual(later, earlier);
    });
  }
});
