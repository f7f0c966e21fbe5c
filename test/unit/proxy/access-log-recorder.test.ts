import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import type { RequestFacts } from '../../../src/engine/decision-engine.js';
import type { AccessLog } from '../../../src/proxy/access-log.js';
import { AccessLogRecorder } from '../../../src/proxy/access-log-recorder.js';
import type { ListenerContext } from '../../../src/proxy/listeners/listener-spec.js';

describe('AccessLogRecorder', () => {
  it('logs a line that fails when the response closes instead of throwing out of the close event', () => {
    const failing = { namesVhost: false, refusals: true, record: () => { throw new Error('formatter broke'); } } as unknown as AccessLog;
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
    const clock = new ManualClock();
    const recorder = new AccessLogRecorder(failing, { epochMs: () => 0 }, clock, logger);
    const req = new IncomingMessage(new Socket());
    req.method = 'GET';
    req.url = '/';
    const facts = { client: { ip: '192.0.2.1' } } as unknown as RequestFacts;
    const context = { port: 80 } as unknown as ListenerContext;
    for (const write of [
      (res: ServerResponse) => recorder.forwarded(req, res, facts, context, 0),
      (res: ServerResponse) => recorder.answered(req, res, facts, context, 0, 403, 'block:/xmlrpc.php'),
    ]) {
      const res = new ServerResponse(req);
      recorder.startForwarded(res, 0);
      write(res);
      expect(() => res.emit('close')).not.toThrow();
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('PC_ERR_INTERNAL');
    expect(lines[0]).toContain('formatter broke');
  });
});
