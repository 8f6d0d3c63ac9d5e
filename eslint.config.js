// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Layers from bottom to top (ARCHITECTURE.md §3). A layer may import only from
// the layers listed before it; cli and server are both the top, and the cli
// may start the server (`mediagit serve`) but the server never imports the cli.
const layers = [
  'observability',
  'config',
  'security',
  'storage',
  'compression',
  'chunking',
  'odb',
  'media',
  'repo',
  'protocol',
  'git',
  'server',
  'cli',
];

/** @param {string} layer */
function forbiddenFor(layer) {
  const index = layers.indexOf(layer);
  const above = layer === 'cli' ? [] : layer === 'server' ? ['cli'] : layers.slice(index + 1);
  return above.filter((other) => other !== layer);
}

const layerRules = layers.map((layer) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbiddenFor(layer).map((other) => ({
          group: [`**/${other}/*`, `**/${other}`],
          message: `the ${layer} layer may not import from ${other} (ARCHITECTURE.md §3)`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench-work/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  ...layerRules,
  {
    // The web interface's page script runs in the browser.
    files: ['src/server/ui/assets/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { window: 'readonly', document: 'readonly', fetch: 'readonly' },
    },
  },
);
