import type { BanBackend, KernelBan } from './ban-backend.js';

/**
 * No kernel bans: the proxy alone refuses banned clients (`backend: none`,
 * and what portcullis falls back to when a kernel backend is unavailable).
 * Every method succeeds and does nothing; list() is always empty.
 */
export class NoneBackend implements BanBackend {
  readonly name = 'none';

  async init(): Promise<void> {}

  add(_ban: KernelBan): void {}

  remove(_target: string): void {}

  async commit(): Promise<void> {}

  async replaceAll(_bans: readonly KernelBan[]): Promise<void> {}

  async list(): Promise<string[]> {
    return [];
  }

  async forgetConnections(_bans: readonly KernelBan[]): Promise<void> {}
}
