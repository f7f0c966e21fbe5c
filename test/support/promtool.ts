/**
 * Finds promtool for tests that check Prometheus rule files and metrics
 * output. scripts/install-test-deps.sh (run by `npm test`) unpacks it into
 * .cache/promtool without installing the prometheus package.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The repo's own unpacked copy. */
export const CACHED_PROMTOOL = path.join(repoRoot, '.cache/promtool/usr/bin/promtool');

/**
 * The path of an executable promtool: one on PATH first (a developer's own
 * install), else the repo's cached copy. Throws, saying how to get it, when
 * there is none: a missing tool must fail the test, not skip it.
 */
export function promtoolPath(): string {
  const candidates = [...(process.env['PATH'] ?? '').split(path.delimiter).filter((dir) => dir !== '').map((dir) => path.join(dir, 'promtool')), CACHED_PROMTOOL];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next place.
    }
  }
  throw new Error(`promtool not found on PATH nor at ${CACHED_PROMTOOL}: run \`bash scripts/install-test-deps.sh\` (it unpacks the Debian prometheus package's promtool there)`);
}
