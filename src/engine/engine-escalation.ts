import type { BanLedger } from '../escalation/ban-ledger.js';
import type { Escalator } from '../escalation/escalator.js';

/** Bans and strikes, as the engine sees them; absent when escalation is not wired (unit tests of limits alone). */
export interface EngineEscalation {
  readonly ledger: BanLedger;
  readonly escalator: Escalator;
}
