import { z } from 'zod';
import { describe, durationMs, expected, text, urlWithScheme } from './schema-values.js';

/* `alerts`: webhooks told when an attack starts and ends. */

const webhookUrl = urlWithScheme('a URL like https://hooks.example.com/portcullis', ['http:', 'https:'], 'an http:// or https:// URL');

const webhook = z.strictObject({
  url: webhookUrl,
  /** Extra request headers, e.g. an Authorization the receiver expects. */
  headers: z.record(z.string(), text('a header value')).default({}),
});

/** `alerts`: webhooks, the attack threshold and delivery timeout. */
export const alerts = z.strictObject({
  /** Receivers of a JSON POST on every ban and when an attack starts and ends. */
  webhooks: z.array(webhook).default([]),
  /** Refused requests per second (averaged over 10 s) that make an attack; it ends when the rate stays below for a minute. */
  attack_threshold: z
    .number({ error: (issue) => expected('a number of refused requests per second', issue.input) })
    .positive({ error: (issue) => `must be a positive number of refused requests per second, got ${describe(issue.input)}` })
    .default(50),
  /** How long one delivery attempt may take. */
  timeout: durationMs('5s').default(5_000),
});
