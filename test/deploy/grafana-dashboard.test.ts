import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { promtoolPath } from '../support/promtool.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '../..');
const DASHBOARD = join(REPO, 'deploy/grafana/portcullis.json');
const ALERTS = join(REPO, 'deploy/prometheus/portcullis-alerts.yml');
const SCRAPE = join(REPO, 'deploy/prometheus/prometheus.yml');

interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly datasource?: { readonly uid?: string };
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { readonly h: number; readonly w: number; readonly x: number; readonly y: number };
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: readonly Target[];
}
interface Dashboard {
  readonly uid: string;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly { readonly name: string; readonly type: string; readonly definition?: string }[] };
}

const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
const queryPanels = dashboard.panels.filter((panel) => panel.type !== 'row');
const exprs = queryPanels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
const variableQueries = dashboard.templating.list.flatMap((variable) => (variable.definition === undefined ? [] : [variable.definition]));

/** An expression with Grafana's variables replaced by what they stand for, so promtool can parse it. */
function asPromql(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*').replaceAll('$site', '.*');
}

/** `portcullis_*` names an expression uses, histogram series mapped to their family. */
function familiesIn(text: string): string[] {
  return [...new Set((text.match(/\bportcullis_[a-z0-9_]+/g) ?? []).map((name) => name.replace(/_(bucket|sum|count)$/, '')))];
}

/** Label names an expression groups by or matches on, per family: `sum by (a, b) (f{c="x"})` → f: a, b, c. */
function labelsUsed(expr: string): Map<string, Set<string>> {
  const used = new Map<string, Set<string>>();
  const grouping = [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(',').map((label) => label.trim()));
  for (const m of expr.matchAll(/\b(portcullis_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const family = (m[1] as string).replace(/_(bucket|sum|count)$/, '');
    const matchers = [...(m[3] ?? '').matchAll(/([a-z_]+)\s*(=~|!=|!~|=)/g)].map((matcher) => matcher[1] as string);
    const labels = used.get(family) ?? new Set<string>();
    for (const label of [...matchers, ...grouping]) labels.add(label);
    used.set(family, labels);
  }
  return used;
}

async function promtool(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(promtoolPath(), args, { cwd: REPO, timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

describe('deploy/grafana/portcullis.json', () => {
  it('has the panels issue 15 asks for', () => {
    const titles = queryPanels.map((panel) => panel.title);
    for (const wanted of ['Requests per second by site and decision', 'Refused per second by rule', 'Upstream latency', 'Upstream in flight and queue', 'Active bans', 'Bans issued', 'Tarpit', 'Certificate expiry']) {
      expect(titles, wanted).toContain(wanted);
    }
    expect(exprs.filter((expr) => expr.startsWith('histogram_quantile(')).map((expr) => expr.slice(19, expr.indexOf(',')))).toEqual(['0.5', '0.9', '0.99']);
  });

  it('is a well-formed dashboard: unique ids, panels inside the 24-column grid without overlapping, every query on the chosen data source', () => {
    expect(new Set(dashboard.panels.map((panel) => panel.id)).size).toBe(dashboard.panels.length);
    const cells = new Set<string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          expect(cells.has(`${row}:${column}`), `${panel.title} overlaps another panel at ${row}:${column}`).toBe(false);
          cells.add(`${row}:${column}`);
        }
      }
    }
    for (const panel of queryPanels) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      expect(new Set(panel.targets?.map((target) => target.refId)).size, panel.title).toBe(panel.targets?.length);
    }
    const variables = new Set(dashboard.templating.list.map((variable) => variable.name));
    const referenced = new Set([...exprs, ...variableQueries].flatMap((expr) => [...expr.matchAll(/\$(\w+)/g)].map((m) => m[1] as string)));
    expect([...referenced].filter((name) => !name.startsWith('__') && !variables.has(name))).toEqual([]);
  });

  it('has queries promtool parses as PromQL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-dashboard-'));
    try {
      const file = join(dir, 'dashboard-rules.yml');
      const selectors = variableQueries.map((query) => /^label_values\((.*), \w+\)$/.exec(query)?.[1] ?? `unparsed ${query}`);
      const rules = [...exprs, ...selectors].map((expr, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(asPromql(expr))}`);
      await writeFile(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const result = await promtool(['check', 'rules', file]);
      expect(result.output).toContain(`SUCCESS: ${rules.length} rules found`);
      expect(result.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Every family and label the dashboard and the alert rules query, against
 * a running portcullis: the families in its /metrics, the labels declared
 * by the families it registered. The proxy has a site, a TLS listener and a
 * real Apache, and has served, blocked and banned, so the families with
 * samples are what an operator's Prometheus would see.
 */
describe('the dashboard and the alert rules against a running portcullis', () => {
  let apache: ApacheHandle;
  let ca: TestCa;
  let proxy: TestProxy;
  let exported: Set<string>;

  beforeAll(async () => {
    apache = await startApache();
    ca = await createTestCa();
    const site = await ca.issue(['blog.test']);
    proxy = await startTestProxy(
      apache.url,
      [
        'block:',
        '  - path: /xmlrpc.php',
        '    strikes: 5',
        'escalation:',
        '  strikes: 5',
        'sites:',
        '  - name: blog',
        '    hosts: [blog.test]',
        'tls:',
        `  certificates: [{ cert: "${site.certFile}", key: "${site.keyFile}" }]`,
      ].join('\n'),
      { listenYaml: '["127.0.0.1:0", { address: "127.0.0.1:0", tls: true }]' },
    );
    expect((await request(proxy.url, { path: '/index.html', headers: { host: 'blog.test' }, localAddress: '127.0.0.31' })).status).toBe(200);
    // Five strikes at once: a ban, whose request may be answered by closing the connection (as in the front-door tests).
    await request(proxy.url, { path: '/xmlrpc.php', headers: { host: 'blog.test' }, localAddress: '127.0.0.32' }).catch(() => undefined);
    const scrape = await request(proxy.adminUrl, { path: '/metrics' });
    expect(scrape.status).toBe(200);
    exported = new Set([...scrape.body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
    expect(scrape.body).toMatch(/^portcullis_bans_total\{.*\} 1$/m);
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
  });

  it('exports every metric family the dashboard and the alert rules use', async () => {
    const used = familiesIn([...exprs, ...variableQueries, await readFile(ALERTS, 'utf8')].join('\n'));
    expect(used.length).toBeGreaterThan(15);
    expect(used.filter((family) => !exported.has(family))).toEqual([]);
  });

  it('declares every label the dashboard and the alert rules group by or match on', async () => {
    const alertExprs = [...(await readFile(ALERTS, 'utf8')).matchAll(/expr: \|\n((?: {10}.*\n)+)/g)].map((m) => m[1] as string);
    expect(alertExprs.length).toBeGreaterThanOrEqual(8);
    // Labels Prometheus adds (target labels, le of histogram buckets) are not the family's own.
    const prometheusLabels = new Set(['job', 'instance', 'le']);
    const problems: string[] = [];
    for (const expr of [...exprs, ...alertExprs]) {
      for (const [family, labels] of labelsUsed(expr)) {
        const declared = new Set((proxy.running.registry.getSingleMetric(family) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? []);
        for (const label of labels) if (!prometheusLabels.has(label) && !declared.has(label)) problems.push(`${family} has no label ${label} (in ${expr.trim()})`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  it('passes promtool check config, with the alert rules', async () => {
    const result = await promtool(['check', 'config', SCRAPE]);
    expect(result.output).toContain('SUCCESS: 8 rules found');
    expect(result.code).toBe(0);
  });

  it('scrapes the default admin.listen, and names the allowed_hosts entry a remote scrape needs', async () => {
    const text = await readFile(SCRAPE, 'utf8');
    expect(text).toContain(`targets: ["${parsePolicy('', 'defaults.yaml').admin.listen}"]`);
    const remote = /targets: \["(web1:\d+)"\]/.exec(text)?.[1];
    expect(text).toContain(`allowed_hosts: ["${remote}"]`);
    expect(parsePolicy(`admin:\n  allowed_hosts: ["${remote}"]\n`, 'remote.yaml').admin.allowed_hosts).toHaveLength(1);
  });
});
