import { Agent, request } from 'undici';

/** One POST of an alert to one webhook. */
export interface WebhookRequest {
  readonly url: string;
  /** Extra headers from `alerts.webhooks[].headers` (e.g. Authorization). */
  readonly headers: Readonly<Record<string, string>>;
  /** The alert, already JSON. */
  readonly body: string;
}

/**
 * How alerts reach a webhook. The notifier owns retries, timeouts and
 * bounds; a transport only sends one request and reports the status, so a
 * test can swap it for ScriptedWebhookTransport.
 */
export interface WebhookTransport {
  /**
   * POSTs `request.body` as JSON. Resolves with the HTTP status, whatever it
   * is; rejects on a network error, or soon after `signal` aborts.
   */
  post(request: WebhookRequest, signal: AbortSignal): Promise<number>;
  /** Drops idle connections; in-flight requests must already have been aborted. */
  close(): Promise<void>;
}

/** Headers every alert carries; configured headers of the same name replace them. */
const DEFAULT_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json',
  'user-agent': 'portcullis',
};

/**
 * Sends alerts with undici on its own Agent (not the global dispatcher), so
 * `close()` can drop its keep-alive connections and never hold the process
 * open, and so alert traffic shares no connection limits with anything else.
 */
export class UndiciWebhookTransport implements WebhookTransport {
  readonly #agent = new Agent({
    // Alerts come in bursts (a flood bans many clients at once), then nothing
    // for hours: keep a connection for the burst, not beyond it.
    keepAliveTimeout: 4_000,
  });

  async post(webhook: WebhookRequest, signal: AbortSignal): Promise<number> {
    const headers: Record<string, string> = { ...DEFAULT_HEADERS };
    // Lower-cased, so a configured `Content-Type` replaces ours instead of
    // being sent alongside it.
    for (const [name, value] of Object.entries(webhook.headers)) headers[name.toLowerCase()] = value;
    const response = await request(webhook.url, { method: 'POST', headers, body: webhook.body, signal, dispatcher: this.#agent });
    // The body is not used, but must be read (or discarded) to free the connection.
    await response.body.dump();
    return response.statusCode;
  }

  async close(): Promise<void> {
    await this.#agent.destroy();
  }
}

/** One request a ScriptedWebhookTransport was asked to send. */
export interface RecordedWebhookRequest extends WebhookRequest {
  /** 1 for the first request to this URL, counting every request to it. */
  readonly nthToUrl: number;
}

/**
 * A test double that sends nothing: it records each request and answers with
 * what `respond` returns (a status), throws (a network error) or never
 * settles (a hung receiver; the abort signal still ends it). Shipped, like
 * ScriptedCommandRunner, so every test of alerting can use the same one.
 *
 *   const transport = new ScriptedWebhookTransport((req) => (req.nthToUrl < 3 ? 500 : 200));
 */
export class ScriptedWebhookTransport implements WebhookTransport {
  readonly requests: RecordedWebhookRequest[] = [];
  readonly #respond: (request: RecordedWebhookRequest) => number | Promise<number>;
  readonly #perUrl = new Map<string, number>();
  closed = false;

  /** @param respond Answers a request with a status; throw to play a network error. @default 200 */
  constructor(respond: (request: RecordedWebhookRequest) => number | Promise<number> = () => 200) {
    this.#respond = respond;
  }

  async post(webhook: WebhookRequest, signal: AbortSignal): Promise<number> {
    const nthToUrl = (this.#perUrl.get(webhook.url) ?? 0) + 1;
    this.#perUrl.set(webhook.url, nthToUrl);
    const recorded = { ...webhook, nthToUrl };
    this.requests.push(recorded);
    signal.throwIfAborted();
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      Promise.resolve()
        .then(() => this.#respond(recorded))
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
