/**
 * JSON Schemas of the control messages in docs/protocol.md. The server
 * validates request bodies against them (Fastify, Ajv) and the protocol tests
 * check the server's answers against them, so the document, the server and
 * the client cannot drift apart silently.
 */
const objectId = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const refName = { type: 'string', minLength: 6, maxLength: 1024, pattern: '^refs/' } as const;
const nullableId = { anyOf: [objectId, { type: 'null' }] } as const;

const signedRequest = {
  type: 'object',
  required: ['method', 'url', 'headers', 'expires'],
  additionalProperties: false,
  properties: {
    method: { enum: ['GET', 'PUT'] },
    url: { type: 'string', pattern: '^https?://' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    expires: { type: 'string' },
  },
} as const;

export const schemas = {
  objectId,
  error: {
    $id: 'error',
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
  infoRefs: {
    $id: 'infoRefs',
    type: 'object',
    required: ['head', 'refs'],
    additionalProperties: false,
    properties: {
      head: { anyOf: [refName, { type: 'null' }] },
      refs: { type: 'object', additionalProperties: objectId },
      encrypted: { type: 'boolean' },
    },
  },
  wantRequest: {
    $id: 'wantRequest',
    type: 'object',
    required: ['wants'],
    additionalProperties: false,
    properties: {
      wants: { type: 'array', items: objectId, minItems: 1, maxItems: 10000 },
      haves: { type: 'array', items: objectId, maxItems: 100000 },
      depth: { type: 'integer', minimum: 1, maximum: 2147483647 },
      shallow: { type: 'array', items: objectId, maxItems: 100000 },
      filter: { type: 'string', pattern: '^blob:(none|limit=[0-9]{1,16})$' },
    },
  },
  chunkCheckRequest: {
    $id: 'chunkCheckRequest',
    type: 'object',
    required: ['ids'],
    additionalProperties: false,
    properties: { ids: { type: 'array', items: objectId, maxItems: 100000 } },
  },
  chunkCheckResponse: {
    $id: 'chunkCheckResponse',
    type: 'object',
    required: ['missing'],
    additionalProperties: false,
    properties: { missing: { type: 'array', items: objectId } },
  },
  refUpdateRequest: {
    $id: 'refUpdateRequest',
    type: 'object',
    required: ['updates'],
    additionalProperties: false,
    properties: {
      updates: {
        type: 'array',
        minItems: 1,
        maxItems: 10000,
        items: {
          type: 'object',
          required: ['ref', 'old', 'new'],
          additionalProperties: false,
          properties: {
            ref: refName,
            old: nullableId,
            new: nullableId,
            force: { type: 'boolean' },
          },
        },
      },
    },
  },
  refUpdateResponse: {
    $id: 'refUpdateResponse',
    type: 'object',
    required: ['results'],
    additionalProperties: false,
    properties: {
      results: {
        type: 'array',
        items: {
          type: 'object',
          required: ['ref', 'ok', 'old', 'new'],
          additionalProperties: false,
          properties: {
            ref: refName,
            ok: { type: 'boolean' },
            old: nullableId,
            new: nullableId,
            reason: {
              enum: [
                'stale',
                'non-fast-forward',
                'protected',
                'already-exists',
                'missing-objects',
                'invalid',
                'locked',
                'checked-out',
              ],
            },
            message: { type: 'string' },
          },
        },
      },
    },
  },
  packBeginRequest: {
    $id: 'packBeginRequest',
    type: 'object',
    required: ['packs'],
    additionalProperties: false,
    properties: {
      packs: {
        type: 'array',
        minItems: 1,
        maxItems: 10000,
        items: {
          type: 'object',
          required: ['name', 'size'],
          additionalProperties: false,
          properties: {
            name: objectId,
            size: { type: 'integer', minimum: 48, maximum: 1099511627776 },
          },
        },
      },
      direct: { type: 'boolean' },
    },
  },
  packBeginResponse: {
    $id: 'packBeginResponse',
    type: 'object',
    required: ['packs'],
    additionalProperties: false,
    properties: {
      packs: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'present'],
          additionalProperties: false,
          properties: { name: objectId, present: { type: 'boolean' }, upload: signedRequest },
        },
      },
    },
  },
  packCommitRequest: {
    $id: 'packCommitRequest',
    type: 'object',
    required: ['packs'],
    additionalProperties: false,
    properties: {
      packs: {
        type: 'array',
        minItems: 1,
        maxItems: 10000,
        // A name, or a name with the pack's size and record table (base64).
        items: {
          anyOf: [
            objectId,
            {
              type: 'object',
              required: ['name', 'size', 'table'],
              additionalProperties: false,
              properties: {
                name: objectId,
                size: { type: 'integer', minimum: 0 },
                table: { type: 'string', maxLength: 8 * 1024 * 1024 },
              },
            },
          ],
        },
      },
    },
  },
  packCommitResponse: {
    $id: 'packCommitResponse',
    type: 'object',
    required: ['index', 'objects'],
    additionalProperties: false,
    properties: { index: objectId, objects: { type: 'integer', minimum: 0 } },
  },
  locateRequest: {
    $id: 'locateRequest',
    type: 'object',
    required: ['ids'],
    additionalProperties: false,
    properties: {
      ids: { type: 'array', items: objectId, maxItems: 100000 },
      direct: { type: 'boolean' },
      gone: { type: 'array', items: objectId, maxItems: 1000 },
    },
  },
  locateResponse: {
    $id: 'locateResponse',
    type: 'object',
    required: ['packs', 'objects'],
    additionalProperties: false,
    properties: {
      packs: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: objectId, get: signedRequest },
        },
      },
      objects: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: {
            id: objectId,
            pack: { type: 'integer', minimum: 0 },
            offset: { type: 'integer', minimum: 0 },
            length: { type: 'integer', minimum: 1 },
            loose: { const: true },
            missing: { const: true },
          },
        },
      },
    },
  },
  tokenRequest: {
    $id: 'tokenRequest',
    type: 'object',
    additionalProperties: false,
    properties: { repo: { type: 'string', maxLength: 100 } },
  },
  tokenResponse: {
    $id: 'tokenResponse',
    type: 'object',
    required: ['token', 'expiresAt'],
    additionalProperties: false,
    properties: { token: { type: 'string' }, expiresAt: { type: 'string' } },
  },
  gcRequest: {
    $id: 'gcRequest',
    type: 'object',
    additionalProperties: false,
    properties: {
      repo: { type: 'string', maxLength: 100 },
      graceSeconds: { type: 'integer', minimum: 0 },
      dryRun: { type: 'boolean' },
    },
  },
  /** An encrypted repository's key file (security/encryption.ts checks it whole). */
  keyFile: {
    $id: 'keyFile',
    type: 'object',
    required: ['version', 'repository', 'slots'],
    properties: {
      version: { type: 'integer' },
      repository: { type: 'string', maxLength: 64 },
      slots: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'object' } },
      retired: { type: 'array', maxItems: 4096, items: { type: 'string', maxLength: 16 } },
    },
  },
  createRepoRequest: {
    $id: 'createRepoRequest',
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: { name: { type: 'string', maxLength: 100 }, defaultBranch: { type: 'string' } },
  },
} as const;
