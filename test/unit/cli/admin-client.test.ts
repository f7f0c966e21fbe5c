import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminUrlForListen, expectOk, parseAdminUrl, readAdminSection, resolveAdminTarget, type AdminTarget } from '../../../src/cli/admin-client.js';
import { PortcullisError } from '../../../src/core/errors.js';

const TOKEN = 'token-from-file-0123456789abcdef';
const ENV_TOKEN = 'token-from-env-0123456789abcdef';
const OTHER_TOKEN = 'token-from-flag-0123456789abcdef';

/** The error `action` throws (sync or async), for asserting on its code and message. */
async function failure(action: () => unknown): Promise<PortcullisError> {
  try {
    await action();
  } catch (error) {
    if (error instanceof PortcullisError) return error;
    throw error;
  }
  throw new Error('expected a PortcullisError');
}

describe('adminUrlForListen', () => {
  it.each([
    ['127.0.0.1:9181', 'http://127.0.0.1:9181'],
    ['0.0.0.0:9181', 'http://127.0.0.1:9181'],
    ['[::]:9181', 'http://[::1]:9181'],
    ['[::1]:9181', 'http://[::1]:9181'],
    ['[2001:db8::5]:9181', 'http://[2001:db8::5]:9181'],
    ['localhost:9181', 'http://localhost:9181'],
    ['10.0.0.5:80', 'http://10.0.0.5:80'],
  ])('%s → %s', (listen, url) => {
    expect(adminUrlForListen(listen, 'policy.yaml')).toBe(url);
  });

  it('refuses port 0, which only the running process knows, asking for --admin', async () => {
    const error = await failure(() => adminUrlForListen('127.0.0.1:0', 'policy.yaml'));
    expect(error.code).toBe('PC_ERR_USAGE');
    expect(error.message).toContain('pass --admin URL');
  });
});

describe('parseAdminUrl', () => {
  it('takes http(s) URLs without the trailing slash, keeping a path prefix, and bare HOST:PORT', () => {
    expect(parseAdminUrl('http://127.0.0.1:9181/')).toBe('http://127.0.0.1:9181');
    expect(parseAdminUrl('https://admin.example.com/portcullis/')).toBe('https://admin.example.com/portcullis');
    expect(parseAdminUrl('127.0.0.1:9181')).toBe('http://127.0.0.1:9181');
    expect(parseAdminUrl('[::]:9181')).toBe('http://[::1]:9181');
  });

  it.each([['ftp://127.0.0.1:9181', 'http:// or https://'], ['not a url', 'must be a URL'], ['http://127.0.0.1:9181/?x=1', 'without ?query']])('refuses %j', async (text, message) => {
    const error = await failure(() => parseAdminUrl(text));
    expect(error.code).toBe('PC_ERR_USAGE');
    expect(error.message).toContain(message);
  });
});

describe('resolveAdminTarget', () => {
  let dir: string;
  let policy: string;
  let bare: string;
  let tokenFile: string;
  let flagTokenFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-admin-client-'));
    tokenFile = join(dir, 'admin.token');
    flagTokenFile = join(dir, 'flag.token');
    await writeFile(tokenFile, `${TOKEN}\n`);
    await writeFile(flagTokenFile, `${OTHER_TOKEN}\n`);
    policy = join(dir, 'policy.yaml');
    await writeFile(policy, `admin:\n  listen: "0.0.0.0:9999"\n  token_file: "${tokenFile}"\n`);
    bare = join(dir, 'bare.yaml');
    await writeFile(bare, 'admin:\n  listen: "127.0.0.1:9182"\n');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the URL from admin.listen of --config, saying where it came from', async () => {
    const target = await resolveAdminTarget({ config: policy }, false, {});
    expect(target).toEqual({ baseUrl: 'http://127.0.0.1:9999', origin: `admin.listen 0.0.0.0:9999 in ${policy}`, token: null, tokenOrigin: null });
  });

  it('falls back to the embedded default policy (127.0.0.1:9181)', async () => {
    expect((await resolveAdminTarget({}, false, {})).baseUrl).toBe('http://127.0.0.1:9181');
  });

  it('reads no policy and no token for a read-only call with --admin', async () => {
    const target = await resolveAdminTarget({ admin: 'http://127.0.0.1:1234', config: join(dir, 'missing.yaml') }, false, { PORTCULLIS_ADMIN_TOKEN: ENV_TOKEN });
    expect(target).toEqual({ baseUrl: 'http://127.0.0.1:1234', origin: '--admin', token: null, tokenOrigin: null });
  });

  it('takes the token from --token-file, then PORTCULLIS_ADMIN_TOKEN, then the policy, else none', async () => {
    const env = { PORTCULLIS_ADMIN_TOKEN: ENV_TOKEN };
    expect(await resolveAdminTarget({ config: policy, 'token-file': flagTokenFile }, true, env)).toMatchObject({ token: OTHER_TOKEN, tokenOrigin: `--token-file ${flagTokenFile}` });
    expect(await resolveAdminTarget({ config: policy }, true, env)).toMatchObject({ token: ENV_TOKEN, tokenOrigin: 'PORTCULLIS_ADMIN_TOKEN' });
    expect(await resolveAdminTarget({ config: policy }, true, {})).toMatchObject({ token: TOKEN, tokenOrigin: `admin.token_file ${tokenFile} in ${policy}` });
    expect(await resolveAdminTarget({ config: bare }, true, {})).toMatchObject({ token: null, tokenOrigin: null });
  });

  it('refuses a short or unreadable token file', async () => {
    const short = join(dir, 'short.token');
    await writeFile(short, 'abc\n');
    expect((await failure(() => resolveAdminTarget({ admin: 'http://h:1', 'token-file': short }, true, {}))).code).toBe('PC_ERR_ADMIN_TOKEN');
    expect((await failure(() => resolveAdminTarget({ admin: 'http://h:1', 'token-file': join(dir, 'nope') }, true, {}))).code).toBe('PC_ERR_ADMIN_TOKEN');
  });
});

describe('readAdminSection', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-admin-section-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('still reads a valid admin section when the rest of the policy is invalid (the reason to run reload)', async () => {
    const file = join(dir, 'half-broken.yaml');
    await writeFile(file, 'limits: 5\nadmin:\n  listen: "127.0.0.1:9300"\n');
    expect(await readAdminSection(file)).toEqual({ listen: '127.0.0.1:9300', allowed_hosts: [] });
  });

  it('reports the policy problems as FILE:LINE:COL when the admin section itself is wrong', async () => {
    const file = join(dir, 'bad-admin.yaml');
    await writeFile(file, 'admin:\n  listne: "127.0.0.1:9300"\n');
    const error = await failure(() => readAdminSection(file));
    expect(error.code).toBe('PC_ERR_CONFIG_INVALID');
    expect(error.message).toContain(`${file}:2:3: admin.listne: unknown key "listne"; did you mean "listen"?`);
  });

  it('says when the file cannot be read', async () => {
    expect((await failure(() => readAdminSection(join(dir, 'missing.yaml')))).code).toBe('PC_ERR_CONFIG_READ');
  });
});

describe('expectOk', () => {
  const target = (tokenOrigin: string | null): AdminTarget => ({ baseUrl: 'http://127.0.0.1:9181', origin: '--admin', token: tokenOrigin && 'x', tokenOrigin });
  const answer = (status: number, body: unknown) => ({ status, body, text: JSON.stringify(body) });

  it('passes 2xx answers', () => {
    expect(() => expectOk(answer(201, { ban: {} }), target(null))).not.toThrow();
  });

  it("throws the API's message and code, with the HTTP status", async () => {
    const error = await failure(() => expectOk(answer(404, { error: { code: 'PC_ERR_ADMIN_REQUEST', message: '192.0.2.7 is not banned' } }), target(null)));
    expect(error.code).toBe('PC_ERR_ADMIN_REQUEST');
    expect(error.message).toBe('admin API: 192.0.2.7 is not banned (HTTP 404)');
  });

  it('keeps codes portcullis knows and maps the others to PC_ERR_ADMIN_REQUEST', async () => {
    expect((await failure(() => expectOk(answer(422, { error: { code: 'PC_ERR_CONFIG_INVALID', message: 'bad' } }), target(null)))).code).toBe('PC_ERR_CONFIG_INVALID');
    const internal = await failure(() => expectOk(answer(500, { error: { code: 'PC_ERR_INTERNAL', message: 'internal error; see the portcullis log' } }), target(null)));
    expect(internal.code).toBe('PC_ERR_INTERNAL');
    expect(internal.message).toContain('internal error; see the portcullis log (HTTP 500)');
    const unknown = await failure(() => expectOk(answer(500, { error: { code: 'PC_ERR_FROM_THE_FUTURE', message: 'newer server' } }), target(null)));
    expect(unknown.code).toBe('PC_ERR_ADMIN_REQUEST');
    expect((await failure(() => expectOk(answer(502, { nonsense: true }), target(null)))).message).toContain('unexpected answer: {"nonsense":true}');
  });

  it('on 401 says how to give a token, or where the wrong one came from', async () => {
    const unauthorized = answer(401, { error: { code: 'PC_ERR_ADMIN_REQUEST', message: 'the bearer token is wrong' } });
    expect((await failure(() => expectOk(unauthorized, target(null)))).message).toContain('the CLI sent no token: pass --token-file FILE, set PORTCULLIS_ADMIN_TOKEN');
    expect((await failure(() => expectOk(unauthorized, target('--token-file /etc/t')))).message).toBe(
      'admin API: the bearer token is wrong; the token came from --token-file /etc/t (HTTP 401)',
    );
  });
});
