/**
 * Cluster mode down to the kernel: a ban made through one node's admin API
 * reaches another node's nftables backend, which then drops the client's
 * packets, within a second. Node B's backend runs in a network namespace the
 * test creates (a TCP server there stands in for the protected port); node A
 * has no kernel backend; they share a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftablesBackend } from '../../src/firewall/nftables-backend.js';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { startRedis, type RedisHandle } from '../support/redis.js';
import { createTestNetwork, systemTestGate, type TestNetwork, type TestServer } from './support/netns.js';

const gate = await systemTestGate({ tools: ['nft', 'conntrack', 'redis-server'] });
const TOKEN = 'cluster-kernel-token-0123456789';
const PORT = 8088;

describe.skipIf(gate.skip)('cluster mode: a ban from another node reaches this node\'s kernel', () => {
  let network: TestNetwork;
  let server: TestServer;
  let redis: RedisHandle;
  let apache: ApacheHandle;
  let a: TestProxy;
  let b: TestProxy;

  beforeAll(async () => {
    network = await createTestNetwork();
    server = await network.startServer([PORT]);
    redis = await startRedis();
    apache = await startApache();
    const policy = `store: { type: redis, url: "${redis.url}", prefix: "k${process.pid}:" }\nescalation: { ports: [${PORT}] }\n`;
    a = await startTestProxy(apache.url, policy, { adminToken: TOKEN });
    b = await startTestProxy(apache.url, policy, { banBackend: new NftablesBackend({ ports: [PORT], maxBans: 64 }, network.runner(network.serverNs)) });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await apache?.stop();
    await redis?.stop();
    await server?.stop();
    await network?.destroy();
  });

  it('drops the client\'s packets on node B within a second of the ban on node A', async () => {
    const client = network.clientAddresses[0] as string;
    const connect = () => network.connect({ host: network.serverAddress, port: PORT, localAddress: client, timeoutMs: 400 });
    expect(await connect()).toBe('connected');
    const banned = await request(a.adminUrl, { method: 'POST', path: '/bans', body: JSON.stringify({ ip: client, duration: '1h' }), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
    expect(banned.status).toBe(201);
    const started = Date.now();
    let result = await connect();
    while (result === 'connected' && Date.now() - started < 1_000) result = await connect();
    expect(result).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1_500);
    // Another address of the client namespace still connects: the ban is the client's alone.
    expect(await network.connect({ host: network.serverAddress, port: PORT, localAddress: network.clientAddresses[1] as string, timeoutMs: 1_000 })).toBe('connected');
  });
});
