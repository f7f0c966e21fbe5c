/**
 * The layers of src/, checked in CI (`npm run check:architecture`, run by
 * `npm test`). Pure layers decide; shells do I/O around them. Every folder of
 * src/ is named below: a new folder fails the check until it is placed here
 * on purpose.
 */
const PURE = ['core', 'config', 'identity', 'policy', 'limiter', 'engine', 'escalation', 'replay', 'deploy'];
const SHELLS = ['proxy', 'admin', 'cli', 'app', 'firewall', 'alerts', 'metrics', 'tls', 'cluster'];
const KNOWN = [...PURE, ...SHELLS];
const folders = (names) => `^src/(${names.join('|')})/`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle means two files are one concept, or one of them is in the wrong layer.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'pure-layers-stay-pure',
      severity: 'error',
      comment: 'The engine and what it is built from take time as an argument and do no I/O, so serve, replay and the benchmarks share them.',
      from: { path: folders(PURE) },
      to: { path: [folders(SHELLS), '^(node:)?(net|http|https|http2|tls|child_process|dns|dns/promises|dgram)$', '^ioredis$'] },
    },
    {
      name: 'only-the-composition-root-knows-everything',
      severity: 'error',
      comment: 'Shells do not reach into the composition root; it reaches into them.',
      from: { path: '^src/', pathNot: '^src/(app|cli)/' },
      to: { path: '^src/app/' },
    },
    {
      name: 'every-folder-is-placed',
      severity: 'error',
      comment: 'A new folder of src/ must be added to PURE or SHELLS in .dependency-cruiser.cjs.',
      from: { path: '^src/', pathNot: [folders(KNOWN)] },
      to: {},
    },
    {
      name: 'no-orphans',
      severity: 'error',
      comment: 'A file nothing imports is dead code (the CLI entry point excepted).',
      from: { orphan: true, path: '^src/', pathNot: '^src/cli/main\\.ts$' },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    // TypeScript 7 has no JS compiler API for the cruiser to parse with; swc reads TypeScript, type-only imports included.
    parser: 'swc',
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
