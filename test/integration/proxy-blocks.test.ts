import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApache, XMLRPC_MARKER, type ApacheHandle } from '../support/apache.js';
import { rawRequest } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/**
 * Spellings of /xmlrpc.php that an Apache configured permissively (MultiViews,
 * AllowEncodedSlashes, mod_speling) maps to the script. Sent raw: an HTTP
 * library would normalise them before they ever left the test.
 */
const SPELLINGS = [
  '/xmlrpc.php',
  '/xmlrpc.php?x=1',
  '/xmlrpc.php/',
  '/xmlrpc.php/anything',
  '//xmlrpc.php',
  '/./xmlrpc.php',
  '/wp/../xmlrpc.php',
  '/%2e/xmlrpc.php',
  '/a/%2e%2e/xmlrpc.php',
  '/%78mlrpc.php',
  '/xmlrpc%2ephp',
  '/xmlrpc%2Ephp/x',
  '/XMLRPC.PHP',
  '/XmlRpc.php',
  '/xmlrpc',
  '/xmlrpc.php%2Fx',
  '/x%2F..%2Fxmlrpc.php',
];

describe('blocked paths never reach Apache', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApache({
      modules: ['negotiation', 'speling'],
      directoryConfig: 'Options +MultiViews\nMultiViewsMatch Any\nCheckSpelling On\nCheckCaseOnly On',
      extraConfig: 'AllowEncodedSlashes On',
    });
    // Escalation off: this file is about path matching, not bans.
    proxy = await startTestProxy(apache.url, 'block:\n  - path: /xmlrpc.php\nescalation: { enabled: false }\n');
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  const get = (port: number, target: string, method = 'GET') => rawRequest(port, `${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

  it('this Apache really does serve xmlrpc.php for most spellings when asked directly', async () => {
    let served = 0;
    for (const target of SPELLINGS) if ((await get(apache.port, target)).text.includes(XMLRPC_MARKER)) served++;
    // Proves the next test proves something: these are live bypasses without portcullis.
    expect(served).toBeGreaterThanOrEqual(10);
  });

  it.each(SPELLINGS)('through portcullis, %s is refused before Apache', async (target) => {
    for (const method of ['GET', 'POST']) {
      const response = await get(proxy.port, target, method);
      expect(response.status).toBe(403);
      expect(response.text).not.toContain(XMLRPC_MARKER);
    }
  });

  it('leaves no trace of the blocked requests in Apache\'s log, while other paths pass', async () => {
    const before = (await apache.accessLog()).length;
    for (const target of SPELLINGS) await get(proxy.port, target, 'POST');
    expect((await get(proxy.port, '/index.html')).status).toBe(200);
    const entries = (await apache.waitForAccessLog((all) => all.slice(before).some((entry) => entry.urlPath === '/index.html'))).slice(before);
    expect(entries.map((entry) => entry.urlPath)).toEqual(['/index.html']);
  });

  it('answers malformed encodings with 400 without forwarding them', async () => {
    for (const target of ['/xmlrpc%zzphp', '/xmlrpc.php%00', '/%']) expect((await get(proxy.port, target)).status).toBe(400);
  });
});
