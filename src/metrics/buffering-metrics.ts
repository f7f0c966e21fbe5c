import { Counter, Gauge, type Registry } from 'prom-client';

/** Which way a buffer carries bytes. Mirrors BufferSide in src/proxy/buffering/buffering.ts. */
type Side = 'request' | 'response';
const SIDES: readonly Side[] = ['request', 'response'];

/** Live values the gauges read on each scrape, so they can never drift from the budgets. */
export interface BufferingGaugeSources {
  /** Bytes held now and the cap, for memory and for temp files. */
  memory(): { usedBytes: number; limitBytes: number };
  disk(): { usedBytes: number; limitBytes: number };
}

/**
 * Metrics of request and response buffering: what the buffers hold against
 * their caps, how often a buffer outgrows memory (tune request_memory and
 * response_memory by it), and how often the budgets run out (then bodies are
 * refused and responses hold Apache again: raise the budgets or find who
 * fills them).
 */
export class BufferingMetrics {
  readonly #spills: Counter<'side'>;
  readonly #exhausted: Counter<'side'>;

  constructor(registry: Registry, sources: BufferingGaugeSources) {
    const registers = [registry];
    new Gauge({
      name: 'portcullis_buffer_bytes',
      help: 'Bytes held by request and response buffers now, by store: memory, or disk (temp file sizes).',
      labelNames: ['store'],
      registers,
      collect() {
        this.set({ store: 'memory' }, sources.memory().usedBytes);
        this.set({ store: 'disk' }, sources.disk().usedBytes);
      },
    });
    new Gauge({
      name: 'portcullis_buffer_limit_bytes',
      help: 'Caps on portcullis_buffer_bytes, by store: buffering.memory_total, and buffering.temp_total (0 when no temp dir could be written).',
      labelNames: ['store'],
      registers,
      collect() {
        this.set({ store: 'memory' }, sources.memory().limitBytes);
        this.set({ store: 'disk' }, sources.disk().limitBytes);
      },
    });
    this.#spills = new Counter({
      name: 'portcullis_buffer_spills_total',
      help: 'Request bodies and responses that outgrew their share of memory and went on to a temp file, by side.',
      labelNames: ['side'],
      registers,
    });
    this.#exhausted = new Counter({
      name: 'portcullis_buffer_budget_exhausted_total',
      help: 'Request bodies refused (413 or 503), and responses passed on at the client\'s pace holding their upstream slot, for want of buffer space (budgets spent, no usable temp dir, disk errors), by side.',
      labelNames: ['side'],
      registers,
    });
    for (const side of SIDES) {
      this.#spills.inc({ side }, 0);
      this.#exhausted.inc({ side }, 0);
    }
  }

  /** Counts a buffer's first write to disk. */
  countSpill(side: Side): void {
    this.#spills.inc({ side });
  }

  /** Counts a body refused or a response left unbuffered for want of buffer space. */
  countExhausted(side: Side): void {
    this.#exhausted.inc({ side });
  }
}
