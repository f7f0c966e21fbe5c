import { pino, type Logger } from 'pino';

/** The process logger: JSON lines on stdout, one per event worth reading (never one per allowed request). */
export function createLogger(level: string = process.env['PORTCULLIS_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ level, base: { name: 'portcullis' } });
}

export type { Logger };
