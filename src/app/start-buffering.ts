import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BufferingConfig, PolicyConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { systemTimers, type Timers } from '../core/timers.js';
import { RateLimitedLog } from '../core/rate-limited-log.js';
import { BufferingMetrics } from '../metrics/buffering-metrics.js';
import { Buffering, type BufferingSettings } from '../proxy/buffering/buffering.js';
import { prepareTempDir } from '../proxy/buffering/temp-dir.js';

/**
 * Builds buffering for a policy: prepares `buffering.temp_dir` (default
 * `state_dir/tmp`; leftovers removed), says once at warn when it cannot be
 * written, and wires the metrics and the (rate-limited) log of disk errors.
 * Never fails the start: without a temp dir, buffering works in memory only.
 */
export async function startBuffering(config: PolicyConfig, parts: { logger: Logger; registry: Registry; clock: Clock; timers?: Timers }): Promise<Buffering> {
  const { logger } = parts;
  const dir = tempDirOf(config);
  const problem = await prepareTempDir(dir);
  if (problem !== null && config.buffering.enabled) {
    logger.warn(
      { code: problem.code, err: problem.message, temp_dir: dir },
      `buffering.temp_dir ${dir} cannot be written: request bodies over buffering.request_memory get 413, and responses over buffering.response_memory are passed on at the client's pace, holding their upstream slot; set buffering.temp_dir to a directory this user can write`,
    );
  }
  const failures = new RateLimitedLog(logger, parts.clock);
  const buffering = new Buffering(bufferingSettings(config.buffering), problem === null ? dir : null, {
    // metrics is assigned below; these fire only once requests flow.
    spilled: (side) => metrics.countSpill(side),
    exhausted: (side) => metrics.countExhausted(side),
    diskError: (error) => failures.warn('buffer_temp', { code: error.code, err: error.message }, 'a buffering temp file failed: the request is refused with 503, or its response passed on unbuffered'),
  }, { timers: parts.timers ?? systemTimers, clock: parts.clock });
  const metrics = new BufferingMetrics(parts.registry, { memory: () => buffering.memory, disk: () => buffering.disk });
  return buffering;
}

/** The buffering settings of a policy (start and reload). */
export function bufferingSettings(config: BufferingConfig): BufferingSettings {
  return {
    enabled: config.enabled,
    requestMemoryBytes: config.request_memory,
    responseMemoryBytes: config.response_memory,
    memoryTotalBytes: config.memory_total,
    tempTotalBytes: config.temp_total,
    streamPaths: config.stream_paths,
    sendTimeoutMs: config.send_timeout,
  };
}

function tempDirOf(config: PolicyConfig): string {
  return config.buffering.temp_dir ?? join(config.state_dir, 'tmp');
}
