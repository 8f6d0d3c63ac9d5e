import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  decodeCommit,
  decodeTag,
  encodeCommit,
  encodeTag,
  formatSignature,
  parseSignature,
  type Commit,
  type Signature,
} from './commit.ts';
import { EMPTY_BLOB_ID, sha256Hex } from './object-id.ts';
import { compareNames, decodeTree, encodeTree, isSafeName, type TreeEntry } from './tree.ts';

const ID_A = sha256Hex(Buffer.from('a'));
const ID_B = sha256Hex(Buffer.from('b'));
const ID_C = sha256Hex(Buffer.from('c'));

/** A fixed tree with every mode and kind, and names that sort differently as UTF-16. */
const GOLDEN_ENTRIES: TreeEntry[] = [
  { name: 'z-last.txt', mode: '100644', kind: 'blob', id: ID_A, size: 1 },
  { name: 'render.sh', mode: '100755', kind: 'blob', id: ID_B, size: 1 },
  { name: 'latest', mode: '120000', kind: 'blob', id: ID_C, size: 1 },
  { name: 'assets', mode: '40000', kind: 'tree', id: ID_A, size: 0 },
  { name: 'film final.mov', mode: '100644', kind: 'manifest', id: ID_B, size: 6_000_000_000 },
  { name: 'caf\u00e9.wav', mode: '100644', kind: 'blob', id: EMPTY_BLOB_ID, size: 0 },
  { name: '\u{1F3AC}clip', mode: '100644', kind: 'blob', id: ID_C, size: 1 },
  { name: '\uFFFDreplacement', mode: '100644', kind: 'blob', id: ID_A, size: 1 },
];

const GOLDEN_TREE_TEXT =
  'mediagit-tree 1\n' +
  `40000 tree ${ID_A} 0 assets\0` +
  `100644 blob ${EMPTY_BLOB_ID} 0 caf\u00e9.wav\0` +
  `100644 manifest ${ID_B} 6000000000 film final.mov\0` +
  `120000 blob ${ID_C} 1 latest\0` +
  `100755 blob ${ID_B} 1 render.sh\0` +
  `100644 blob ${ID_A} 1 z-last.txt\0` +
  // UTF-8 byte order: U+FFFD (EF BF BD) sorts before U+1F3AC (F0 9F 8E AC),
  // the reverse of their UTF-16 order.
  `100644 blob ${ID_A} 1 \uFFFDreplacement\0` +
  `100644 blob ${ID_C} 1 \u{1F3AC}clip\0`;

const GOLDEN_TREE_ID = '4fe44fa24e4a2c229caa4d7519a1dcedb212eec0f749ef8ed1d26cda3c9dd65c';

const AUTHOR: Signature = {
  name: 'Ada Editor',
  email: 'ada@example.com',
  time: 1_700_000_000,
  tzOffset: 330,
};
const COMMITTER: Signature = {
  name: 'Bo Colorist',
  email: 'bo@example.com',
  time: 1_700_003_600,
  tzOffset: -480,
};

const GOLDEN_COMMIT: Commit = {
  tree: ID_A,
  parents: [ID_B, ID_C],
  author: AUTHOR,
  committer: COMMITTER,
  message: 'Merge the colour grade\n\nKeeps the LUT from the grading branch.\n',
};

const GOLDEN_COMMIT_TEXT =
  `tree ${ID_A}\n` +
  `parent ${ID_B}\n` +
  `parent ${ID_C}\n` +
  'author Ada Editor <ada@example.com> 1700000000 +0530\n' +
  'committer Bo Colorist <bo@example.com> 1700003600 -0800\n' +
  '\n' +
  'Merge the colour grade\n\nKeeps the LUT from the grading branch.\n';

const GOLDEN_COMMIT_ID = 'ca7f0f5803558389236a15b2ff9e41b01fff313b406d209cd29308cdf70956b5';
const GOLDEN_EMPTY_TREE_ID = 'd9994ad9e9ab25450fe350ac4ba97eee8f5badb5a0772ff179c4b12f333e0e17';

test('golden vector: a fixed tree encodes to fixed bytes and a fixed ID', () => {
  const bytes = encodeTree(GOLDEN_ENTRIES);
  assert.equal(bytes.toString('utf8'), GOLDEN_TREE_TEXT);
  assert.equal(sha256Hex(bytes), GOLDEN_TREE_ID);
  // Input order does not matter.
  assert.deepEqual(encodeTree([...GOLDEN_ENTRIES].reverse()), bytes);
});

test('golden vector: a fixed commit encodes to fixed bytes and a fixed ID', () => {
  const bytes = encodeCommit(GOLDEN_COMMIT);
  assert.equal(bytes.toString('utf8'), GOLDEN_COMMIT_TEXT);
  assert.equal(sha256Hex(bytes), GOLDEN_COMMIT_ID);
});

test('golden vector: the empty tree', () => {
  const bytes = encodeTree([]);
  assert.equal(bytes.toString('utf8'), 'mediagit-tree 1\n');
  assert.equal(sha256Hex(bytes), GOLDEN_EMPTY_TREE_ID);
  assert.deepEqual(decodeTree('x', bytes), []);
});

test('compareNames orders names as their UTF-8 bytes', () => {
  // Surrogate pairs (U+10000 and up) against U+E000–U+FFFF are where UTF-16
  // order and byte order part; the alphabet makes them meet often.
  const unit = fc.constantFrom(
    'a',
    'b',
    '/',
    '\u00e9',
    '\ue000',
    '\uffff',
    '\u{1f600}',
    '\u{10000}',
    '.',
  );
  const name = fc.array(unit, { maxLength: 6 }).map((units) => units.join(''));
  fc.assert(
    fc.property(name, name, (a, b) => {
      const bytes = Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
      assert.equal(Math.sign(compareNames(a, b)), bytes);
      assert.equal(Math.sign(compareNames(b, a)) + bytes, 0);
    }),
    { numRuns: 5000 },
  );
  assert.equal(Math.sign(compareNames('\u{1f600}', '\uffff')), 1);
  assert.equal(Math.sign(compareNames('ab', 'a')), 1);
});

test('trees and commits decode to what was encoded', () => {
  const tree = encodeTree(GOLDEN_ENTRIES);
  const decoded = decodeTree(sha256Hex(tree), tree);
  assert.deepEqual(
    decoded,
    [...GOLDEN_ENTRIES].sort((a, b) => compareNames(a.name, b.name)),
  );
  const commit = encodeCommit(GOLDEN_COMMIT);
  assert.deepEqual(decodeCommit(sha256Hex(commit), commit), GOLDEN_COMMIT);
  const root = { ...GOLDEN_COMMIT, parents: [], message: '' };
  assert.deepEqual(decodeCommit('x', encodeCommit(root)), root);
});

test('identities cannot break the commit layout', () => {
  const hostile: Signature = { ...AUTHOR, name: 'Eve <evil>\nparent x', email: 'e@x>\n' };
  const bytes = encodeCommit({ ...GOLDEN_COMMIT, author: hostile, parents: [] });
  const decoded = decodeCommit('x', bytes);
  assert.deepEqual(decoded.parents, []);
  assert.equal(decoded.author.name, 'Eve evilparent x');
  assert.equal(decoded.author.email, 'e@x');
  assert.equal(formatSignature(COMMITTER), 'Bo Colorist <bo@example.com> 1700003600 -0800');
  assert.deepEqual(parseSignature(formatSignature(COMMITTER)), COMMITTER);
  assert.equal(parseSignature('no email 12 +0000'), undefined);
});

test('tags round-trip', () => {
  const tag = {
    object: ID_A,
    type: 'commit',
    tag: 'v1.0',
    tagger: AUTHOR,
    message: 'Picture lock\n',
  };
  assert.deepEqual(decodeTag('x', encodeTag(tag)), tag);
  assert.throws(() => decodeTag('the-tag', Buffer.from(`object ${ID_A}\n\nmsg`)), {
    code: 'OBJECT_CORRUPT',
    message: /the-tag/,
  });
});

function rawTree(...records: string[]): Buffer {
  return Buffer.from(`mediagit-tree 1\n${records.map((r) => `${r}\0`).join('')}`, 'utf8');
}

test('decodeTree rejects hostile names', () => {
  const hostile = [
    '..',
    '.',
    '.mediagit',
    '.MediaGit',
    '.MEDIAGIT',
    'a/b',
    '../x',
    '/abs',
    'a\\b',
    '..\\..\\x',
  ];
  for (const name of hostile) {
    assert.equal(isSafeName(name), false, name);
    const id = `tree-with-${name}`;
    assert.throws(
      () => decodeTree(id, rawTree(`100644 blob ${ID_A} 1 ${name}`)),
      (error: unknown) => {
        assert.ok(error instanceof Error && 'code' in error);
        assert.equal(error.code, 'OBJECT_CORRUPT', name);
        assert.ok(error.message.includes(id), error.message);
        return true;
      },
      name,
    );
  }
  for (const name of [
    '.mediagitignore',
    '..a',
    'a..',
    '.hidden',
    'with space',
    'caf\u00e9',
    'new\nline',
  ]) {
    assert.equal(isSafeName(name), true, name);
    assert.equal(decodeTree('x', rawTree(`100644 blob ${ID_A} 1 ${name}`))[0]?.name, name);
  }
});

test('decodeTree rejects malformed trees', () => {
  const bad: [string, Buffer][] = [
    ['bad header', Buffer.from(`mediagit-tree 2\n100644 blob ${ID_A} 1 a\0`)],
    ['no header', Buffer.from(`100644 blob ${ID_A} 1 a\0`)],
    ['unknown mode', rawTree(`100664 blob ${ID_A} 1 a`)],
    ['unknown kind', rawTree(`100644 commit ${ID_A} 1 a`)],
    ['short id', rawTree(`100644 blob ${ID_A.slice(1)} 1 a`)],
    ['upper-case id', rawTree(`100644 blob ${ID_A.toUpperCase()} 1 a`)],
    ['tree mode with blob kind', rawTree(`40000 blob ${ID_A} 0 a`)],
    ['blob mode with tree kind', rawTree(`100644 tree ${ID_A} 0 a`)],
    ['empty name', rawTree(`100644 blob ${ID_A} 1 `)],
    ['out of order', rawTree(`100644 blob ${ID_A} 1 b`, `100644 blob ${ID_A} 1 a`)],
    ['duplicate', rawTree(`100644 blob ${ID_A} 1 a`, `40000 tree ${ID_A} 0 a`)],
    ['negative size', rawTree(`100644 blob ${ID_A} -1 a`)],
  ];
  for (const [what, bytes] of bad) {
    assert.throws(() => decodeTree('bad-tree', bytes), { code: 'OBJECT_CORRUPT' }, what);
  }
});

test('decodeCommit rejects malformed commits', () => {
  const good = GOLDEN_COMMIT_TEXT;
  const bad = [
    good.replace(`tree ${ID_A}\n`, ''),
    good.replace(`tree ${ID_A}`, 'tree 1234'),
    good.replace(`parent ${ID_B}`, 'parent nope'),
    good.replace('author Ada Editor <ada@example.com> 1700000000 +0530\n', ''),
    // No blank line at all after the headers.
    `tree ${ID_A}\nauthor ${formatSignature(AUTHOR)}\ncommitter ${formatSignature(COMMITTER)}\n`,
  ];
  for (const text of bad) {
    assert.throws(() => decodeCommit('bad-commit', Buffer.from(text)), {
      code: 'OBJECT_CORRUPT',
      message: /bad-commit/,
    });
  }
});
