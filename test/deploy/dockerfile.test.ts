import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '../..');

/** One instruction of a Dockerfile: its keyword, its arguments (continuations joined), and the stage it is in. */
interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly stage: number;
}

/**
 * Reads a Dockerfile the way the builder does for what this test needs:
 * comments and blank lines dropped, `\` continuations joined (comment lines
 * inside a continuation are skipped, as BuildKit does), one instruction per
 * logical line, stages counted by FROM. No Docker engine here, and hadolint
 * is in neither npm nor Debian; this is the check that can be made.
 */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let stage = -1;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    pending = pending === '' ? line : `${pending} ${line}`;
    if (pending.endsWith('\\')) {
      pending = pending.slice(0, -1).trimEnd();
      continue;
    }
    const space = pending.search(/\s/);
    const keyword = (space < 0 ? pending : pending.slice(0, space)).toUpperCase();
    const args = space < 0 ? '' : pending.slice(space + 1).trim();
    if (keyword === 'FROM') stage++;
    out.push({ keyword, args, stage });
    pending = '';
  }
  return out;
}

/** Whether `.dockerignore` (moby's patternmatcher: last matching pattern wins, a parent's match counts) lets `path` into the context. */
function admittedByDockerignore(patterns: readonly string[], path: string): boolean {
  const parts = path.split('/');
  let excluded = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).replace(/\/+$/, '');
    const regex = new RegExp(`^${pattern.split('**').map((piece) => piece.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*').replaceAll('?', '[^/]')).join('.*')}$`);
    const matches = parts.some((_, i) => regex.test(parts.slice(0, i + 1).join('/')));
    if (matches) excluded = !negated;
  }
  return !excluded;
}

const instructions = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
const dockerignore = readFileSync(join(REPO, '.dockerignore'), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const finalStage = Math.max(...instructions.map((i) => i.stage));
const final = instructions.filter((i) => i.stage === finalStage);
const stageNames = new Map(instructions.filter((i) => i.keyword === 'FROM').map((i) => [/\bAS\s+(\S+)$/i.exec(i.args)?.[1] ?? '', i.stage]));
/** The one exec-form (JSON) argument list of `keyword` in the final stage. */
function execForm(keyword: string): string[] {
  const found = final.filter((i) => i.keyword === keyword);
  expect(found, keyword).toHaveLength(1);
  return JSON.parse((found[0] as Instruction).args) as string[];
}
const defaults = parsePolicy('', 'defaults.yaml');

describe('Dockerfile', () => {
  it('builds in a stage of its own and ships dist/ with production dependencies only', () => {
    const build = stageNames.get('build') as number;
    const deps = stageNames.get('deps') as number;
    expect(instructions.some((i) => i.stage === build && i.keyword === 'RUN' && i.args.includes('npm run build'))).toBe(true);
    expect(instructions.some((i) => i.stage === deps && i.keyword === 'RUN' && /npm ci .*--omit=dev/.test(i.args))).toBe(true);
    const copies = final.filter((i) => i.keyword === 'COPY');
    expect(copies.filter((i) => i.args.startsWith('--from=')).map((i) => i.args)).toEqual(['--from=deps /app/node_modules ./node_modules', '--from=build /app/dist ./dist']);
    // Nothing with devDependencies or sources reaches the image.
    expect(final.some((i) => i.keyword === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
    expect(copies.some((i) => /(^|\s)(src|test|bench)\b/.test(i.args))).toBe(false);
    expect(execForm('ENTRYPOINT')).toEqual(['node', '/app/dist/cli/main.js']);
    expect(existsSync(join(REPO, 'src/cli/main.ts')), 'dist/cli/main.js is built from src/cli/main.ts').toBe(true);
  });

  it('runs as the non-root node user, with config and state as volumes', () => {
    const users = final.filter((i) => i.keyword === 'USER').map((i) => i.args);
    expect(users).toEqual(['node']);
    // Every RUN (root) comes before USER: the container never runs as root.
    expect(final.findIndex((i) => i.keyword === 'USER')).toBeGreaterThan(final.findLastIndex((i) => i.keyword === 'RUN'));
    expect(execForm('VOLUME')).toEqual(['/etc/portcullis', defaults.state_dir]);
    expect(execForm('CMD')).toEqual(['serve', '--config', '/etc/portcullis/portcullis.yaml']);
    // The state volume is the node user's (a fresh named volume takes the image's ownership).
    expect(final.some((i) => i.keyword === 'RUN' && i.args.includes(`install -d -o node -g node -m 0750 ${defaults.state_dir}`))).toBe(true);
  });

  it('installs nftables and gives node only cap_net_bind_service, nft and conntrack only cap_net_admin', () => {
    const setup = final.filter((i) => i.keyword === 'RUN').map((i) => i.args).join(' && ');
    expect(setup).toMatch(/apt-get install -y --no-install-recommends [^&]*\bnftables\b/);
    expect(setup).toContain('rm -rf /var/lib/apt/lists/*');
    const grants = [...setup.matchAll(/setcap (\S+) (\S+)/g)].map((m) => [m[2], m[1]]);
    expect(Object.fromEntries(grants)).toEqual({
      '/usr/local/bin/node': 'cap_net_bind_service=ep',
      '/usr/sbin/nft': 'cap_net_admin=ep',
      '/usr/sbin/conntrack': 'cap_net_admin=ep',
    });
  });

  it('pins the base image to Node 20 on Debian 12, the versions the tests run on', () => {
    const base = instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='))?.args;
    expect(base).toBe('NODE_IMAGE=node:20-bookworm-slim');
    expect(process.versions.node.split('.')[0]).toBe('20');
    expect(instructions.filter((i) => i.keyword === 'FROM').every((i) => i.args.startsWith('${NODE_IMAGE}'))).toBe(true);
  });

  it('has a context of exactly what it copies: .dockerignore admits every COPY source and nothing else', () => {
    const sources = final
      .concat(instructions.filter((i) => i.stage !== finalStage))
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(4);
    for (const source of sources) {
      expect(existsSync(join(REPO, source)), source).toBe(true);
      expect(admittedByDockerignore(dockerignore, source), source).toBe(true);
    }
    for (const kept of ['src/cli/main.ts', 'config/portcullis.yaml', 'package-lock.json']) expect(admittedByDockerignore(dockerignore, kept), kept).toBe(true);
    for (const left of ['node_modules/undici/package.json', 'dist/cli/main.js', '.git/HEAD', 'test/deploy/dockerfile.test.ts', 'bench/results/latest.json', '.cache/promtool/usr/bin/promtool', 'README.md', 'Dockerfile', 'deploy/portcullis.service', '.env']) {
      expect(admittedByDockerignore(dockerignore, left), left).toBe(false);
    }
  });
});

/** The image's HEALTHCHECK command, run for real against a running portcullis's admin API. */
describe('Dockerfile HEALTHCHECK', () => {
  let proxy: TestProxy | undefined;
  const healthcheck = final.find((i) => i.keyword === 'HEALTHCHECK')?.args ?? '';
  const command = (): string[] => JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[];

  beforeAll(async () => {
    proxy = await startTestProxy('http://127.0.0.1:9', '');
  });

  afterAll(async () => {
    await proxy?.close();
  });

  /** Runs the check with the default admin port replaced by the test proxy's; returns its exit code. */
  async function runCheck(adminPort: number): Promise<number> {
    const [binary, ...args] = command();
    expect(binary).toBe('node');
    try {
      await run(process.execPath, args.map((arg) => arg.replace('127.0.0.1:9181', `127.0.0.1:${adminPort}`)), { timeout: 10_000 });
      return 0;
    } catch (error) {
      return (error as { code?: number }).code ?? -1;
    }
  }

  it('asks /healthz on the default admin.listen, with a timeout and retries', () => {
    expect(defaults.admin.listen).toBe('127.0.0.1:9181');
    expect(healthcheck).toMatch(/^--interval=\S+ --timeout=\S+ --start-period=\S+ --retries=\d+ CMD \[/);
    expect(command().join(' ')).toContain(`http://${defaults.admin.listen}/healthz`);
  });

  it('exits 0 while portcullis answers, 1 once it is gone', async () => {
    const port = new URL((proxy as TestProxy).adminUrl).port;
    expect(await runCheck(Number(port))).toBe(0);
    await proxy?.close();
    proxy = undefined;
    expect(await runCheck(Number(port))).toBe(1);
  });
});
