// Lint configuration: typescript-eslint with type information, so that a dropped
// promise (data lost in a pipeline) is an error.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '**/*.generated.js', 'deploy/helm/**', 'src/console/assets/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration', message: 'Keep the public surface explicit: no export *.' },
      ],
      'no-new-func': 'error',
      'no-eval': 'error',
    },
  },
  // The layering: who may import whom (each folder's README or index says what it owns).
  // A file gets one no-restricted-imports setting (the last matching entry wins), so every
  // entry also carries the Kafka rule: only src/kafka imports the Kafka client library.
  ...[
    {
      files: ['src/**/*.ts'],
      message: 'src/cli is the composition root: it imports the pipeline, nothing of the pipeline imports it.',
      group: ['../cli/**', './cli/**', '../../cli/**'],
    },
    {
      files: ['src/kafka/**/*.ts'],
      message: 'The Kafka client wrapper is used by the Kafka adapters (transport, rule set, violations, replay) and imports nothing of the pipeline but its configuration types.',
      group: ['../receiver/**', '../transport/**', '../worker/**', '../exporter/**', '../api/**', '../cli/**', '../rules/**', '../ruleset/**', '../violations/**', '../replay/**', '../otlp/**', '../component.ts', '../server/**'],
    },
    {
      files: ['src/rules/**/*.ts'],
      message: 'The rule language imports nothing of the pipeline: it is used by the worker, replay and the CLI, never the other way round.',
      group: ['../receiver/**', '../transport/**', '../worker/**', '../exporter/**', '../api/**', '../cli/**', '../config/**', '../ruleset/**', '../violations/**', '../replay/**', '../telemetry/**', '../otlp/**', '../cli/**', '../component.ts', '../server/**'],
    },
    {
      files: ['src/otlp/**/*.ts'],
      message: 'The OTLP codec reads and writes the wire format: it imports only the span shape of the rule language (src/rules/span.ts), nothing of the pipeline.',
      group: ['../receiver/**', '../transport/**', '../worker/**', '../exporter/**', '../api/**', '../cli/**', '../config/**', '../ruleset/**', '../violations/**', '../replay/**', '../telemetry/**', '../kafka/**', '../component.ts', '../server/**', '../rules/**', '!../rules/span.ts'],
    },
    {
      files: ['src/receiver/**/*.ts'],
      message: 'The receiver hands spans to the transport and knows nothing of what reads them (worker, rules, exporter, control plane).',
      group: ['../worker/**', '../rules/**', '../exporter/**', '../ruleset/**', '../violations/**', '../replay/**', '../api/**', '../cli/**'],
    },
    {
      files: ['src/transport/**/*.ts'],
      message: 'The transport carries records and knows nothing of what they mean (worker, rules, rule set, violations).',
      group: ['../worker/**', '../rules/**', '../ruleset/**', '../violations/**', '../exporter/**', '../receiver/**', '../replay/**', '../api/**', '../cli/**'],
    },
    {
      files: ['src/ruleset/**/*.ts', 'src/violations/**/*.ts'],
      message: 'The control plane (rule set, violations) is used by the worker, the API and replay, never the other way round.',
      group: ['../worker/**', '../api/**', '../replay/**', '../cli/**', '../cli/**'],
    },
    {
      files: ['src/api/**/*.ts'],
      message: 'The admin API serves the control plane (rule set, violations, replay) and knows nothing of the data path it watches.',
      group: ['../receiver/**', '../transport/**', '../worker/**', '../exporter/**', '../otlp/**', '../cli/**'],
    },
    {
      files: ['src/notify/**/*.ts'],
      message: 'Notifications take violations from the worker through the sink interface and know nothing of the data path or the API.',
      group: ['../receiver/**', '../transport/**', '../worker/**', '../exporter/**', '../api/**', '../replay/**', '../cli/**', '../otlp/**', '../server/**', '../../receiver/**', '../../transport/**', '../../worker/**', '../../exporter/**', '../../api/**', '../../replay/**', '../../cli/**'],
    },
    {
      files: ['src/server/**/*.ts'],
      message: 'The shared server plumbing (auth, TLS, listeners, bodies) serves the receiver and the admin API and knows nothing of what they serve.',
      group: ['../receiver/**', '../transport/**', '../worker/**', '../rules/**', '../exporter/**', '../ruleset/**', '../violations/**', '../replay/**', '../api/**', '../cli/**', '../otlp/**'],
    },
  ].map(({ files, message, group }) => ({
    files,
    ...(files.includes('src/kafka/**/*.ts') ? {} : { ignores: ['src/kafka/**'] }),
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: files.includes('src/kafka/**/*.ts') ? [] : [{ name: '@platformatic/kafka', message: 'The Kafka client is imported by src/kafka only: take its classes and helpers from src/kafka/client.ts.' }],
          patterns: [{ group: [...new Set(group)], message }],
        },
      ],
    },
  })),
  {
    // Tests read JSON answers freely; the assertions are the type check there.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The web console runs in the browser (bundled by deploy/build-console.mjs).
    files: ['src/console/web/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'sessionStorage', 'fetch', 'URL', 'URLSearchParams', 'Blob', 'setTimeout', 'clearTimeout', 'addEventListener', 'removeEventListener', 'performance', 'console'].map((g) => [g, 'readonly']),
      ),
    },
  },
);
