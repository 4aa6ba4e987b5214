// ESLint (flat config): typescript-eslint's recommended rules, and the layout's boundaries as
// rules rather than prose (docs/contributing.md, "Layout"). Run by `npm run lint` and `npm test`.
import eslint from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Relative imports that climb out of a folder into one of these top-level folders. */
const into = (...folders) => `^(\\.\\./)+(${folders.join('|')})(/|$)`;
const restrict = (message, folders, packages = []) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: [{ regex: into(...folders), message }, ...packages.map((name) => ({ regex: `^${name}(/|$)`, message }))],
    },
  ],
});

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'cdk.out/', '.cache/', 'coverage/', '.tmp/', 'local-gateway/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['test/**', 'dev/**', 'bench/**'],
    languageOptions: { globals: { ...globals.node, ...globals.jest } },
    rules: {
      // Tests read synthesized templates and JSON answers (untyped documents), and load the
      // built Lambda bundles with require() as the Lambda runtime does.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  // The boundaries. core/: pure logic, no CDK and nothing of the folders that use it.
  {
    files: ['core/**'],
    rules: restrict(
      'core/ is the pure contract: it imports no aws-cdk-lib or constructs and nothing from lib/, lambda/, dev/, local/, test/ or bench/.',
      ['lib', 'lambda', 'dev', 'local', 'test', 'bench', 'bin', 'scripts'],
      ['aws-cdk-lib', 'constructs', 'cdk-nag'],
    ),
  },
  // lambda/: run-time handlers, bundled by esbuild: core/ and npm packages only.
  {
    files: ['lambda/**'],
    rules: restrict(
      'lambda/ may import only core/ and npm packages (never lib/, dev/, local/ or aws-cdk-lib).',
      ['lib', 'dev', 'local', 'test', 'bench', 'bin', 'scripts'],
      ['aws-cdk-lib', 'constructs', 'cdk-nag'],
    ),
  },
  // lib/: the constructs; never the run-time code nor the dev tooling. Only lib/nag/ loads cdk-nag.
  {
    files: ['lib/**'],
    ignores: ['lib/nag/**'],
    rules: restrict(
      'lib/ never imports lambda/, dev/, local/, test/ or bench/; cdk-nag is loaded only by lib/nag/ (the cdk-looker-gateway/nag subpath).',
      ['lambda', 'dev', 'local', 'test', 'bench', 'bin', 'scripts'],
      ['cdk-nag'],
    ),
  },
  {
    files: ['lib/nag/**'],
    rules: restrict('lib/ never imports lambda/, dev/, local/, test/ or bench/.', ['lambda', 'dev', 'local', 'test', 'bench', 'bin', 'scripts']),
  },
  // dev/: shared by test/, bench/ and local/; it imports none of them.
  {
    files: ['dev/**'],
    rules: restrict('dev/ is imported by test/, bench/ and local/, never the other way round.', ['test', 'bench', 'local', 'bin']),
  },
);
