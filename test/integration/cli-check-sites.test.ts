import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

describe('portcullis check, on sites', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-check-sites-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a host pattern an earlier site covers with FILE:LINE:COL and exits 1; the exact name first is fine', async () => {
    const file = join(dir, 'overlap.yaml');
    await writeFile(
      file,
      `sites:
  - name: shop
    hosts: [shop.example.org]
  - name: all
    hosts: ["*.example.org"]
  - name: blog
    hosts: [blog.example.org, "*.Blog.example.org"]
`,
    );
    const result = await runCli(['check', file]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')).toEqual([
      `${file}:7:13: sites[2].hosts[0]: blog.example.org can never choose site blog: *.example.org of site all (sites[1].hosts[0]) comes first and matches every name it does; move site blog before it`,
      `${file}:7:31: sites[2].hosts[1]: *.blog.example.org can never choose site blog: *.example.org of site all (sites[1].hosts[0]) comes first and matches every name it does; move site blog before it`,
      `${file}: 2 problems`,
      '',
    ]);
  });

  it('reports a schema problem of a site like any other', async () => {
    const file = join(dir, 'disable.yaml');
    await writeFile(file, 'sites:\n  - name: a\n    hosts: [a.example]\n    disable: [xmlrpc]\n');
    const result = await runCli(['check', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:4:15: sites[0].disable[0]: no global rule is named "xmlrpc" (there are none)`);
  });

  it('reports a rule that can never match with FILE:LINE:COL and exits 1, after the host overlaps', async () => {
    const file = join(dir, 'unreachable.yaml');
    await writeFile(
      file,
      `block:
  - path: /xmlrpc.php
limits:
  - name: xmlrpc
    methods: [POST]
    paths: [/xmlrpc.php]
    per_ip: { rate: 5/min, burst: 5 }
sites:
  - name: all
    hosts: ["*.example.org"]
  - name: blog
    hosts: [blog.example.org]
`,
    );
    const result = await runCli(['check', file]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')).toEqual([
      `${file}:12:13: sites[1].hosts[0]: blog.example.org can never choose site blog: *.example.org of site all (sites[0].hosts[0]) comes first and matches every name it does; move site blog before it`,
      `${file}:4:11: limits[0]: rule xmlrpc can never match: block /xmlrpc.php (block[0]) refuses every POST /xmlrpc.php first`,
      `${file}: 2 problems`,
      '',
    ]);
  });
});
