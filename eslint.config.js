// Lint configuration: type-aware rules, zero warnings allowed (`npm run lint`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // providers/guest is AssemblyScript (compiled by asc, scripts/build-providers.ts), not TypeScript.
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'providers/guest/**', '.build/**', 'release/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // An empty catch turns a failure into success; never allowed.
      'no-empty': ['error', { allowEmptyCatch: false }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test's describe/it return promises the runner itself awaits.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'suite', 'test'] }],
      }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', {
        paths: [
          { name: 'crypto', message: 'Use core/crypto; it is the only module that touches node:crypto.' },
        ],
        patterns: [{ group: ['fs', 'path', 'os', 'child_process', 'util'], message: 'Use the node: prefix for built-ins.' }],
      }],
    },
  },
  {
    // Only core/crypto may import node:crypto.
    files: ['**/*.ts'],
    ignores: ['core/crypto/**'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "ImportDeclaration[source.value='node:crypto']",
        message: 'Use core/crypto; it is the only module that touches node:crypto.',
      }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      parserOptions: { projectService: false, project: false },
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
