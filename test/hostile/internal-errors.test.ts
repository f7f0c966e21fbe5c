import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionEngine } from '../../src/engine/decision-engine.js';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/**
 * A bug inside the request path (here: the engine throwing for one target, as
 * a stand-in for any future bug) must cost that request a 500, never the
 * process: an unhandled rejection would take the front door, and every site
 * behind it, down.
 */
describe('an internal error while handling a request', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApache();
    proxy = await startTestProxy(apache.url, 'limits: []\n');
    const engine = proxy.running.engine as DecisionEngine & { decide: DecisionEngine['decide'] };
    const decide = engine.decide.bind(engine);
    engine.decide = (facts, nowMs) => {
      if (facts.target === '/boom') throw new Error('simulated bug');
      return decide(facts, nowMs);
    };
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it('answers 500, logs it with PC_ERR_INTERNAL, and goes on serving', async () => {
    expect((await request(proxy.url, { path: '/boom' })).status).toBe(500);
    expect((await request(proxy.url, { path: '/' })).status).toBe(200);
    expect(proxy.logs.some((entry) => entry.code === 'PC_ERR_INTERNAL' && String(entry.msg).includes('request'))).toBe(true);
  });
});
