import { z } from 'zod';
import { parseCidr } from '../../identity/cidr-set.js';
import { parseByteSize, SIZE_PATTERN } from '../byte-size.js';
import { DURATION_PATTERN, parseDurationMs } from '../duration.js';
import { parseListenAddress } from '../listen-address.js';
import { parseRate, RATE_PATTERN } from '../rate.js';

/* The value shapes the policy sections share (text, durations, rates, sizes, addresses, URLs, methods, statuses, ports), each with the message a user sees when a value does not fit. */

/** Methods a rule may name. `OTHER` stands for every method no rule names, `*` for all. */
export const KNOWN_METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT',
  // WebDAV, served by mod_dav and by PHP scripts alike.
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK',
  'OTHER', '*',
] as const;

/** A string, with `what` in the message when the value is something else. */
export const text = (what: string) => z.string({ error: (issue) => expected(what, issue.input) });

/** "must be WHAT, got …": the message for a value of the wrong shape. */
export function expected(what: string, input: unknown): string {
  return input === undefined ? 'is required' : `must be ${what}, got ${describe(input)}`;
}

/** Renders a value as the user wrote it, for "got …" in messages. */
export function describe(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  return JSON.stringify(input);
}

/**
 * Marks a schema that also takes a plain string (a preprocess turns it into
 * the object form): the JSON Schema for editors says so (policy-json-schema.ts).
 */
export const ALSO_A_STRING = 'x-portcullis-also-a-string';

/** A duration in milliseconds; positive, or 0 too when `zero` says what 0 means. */
export const durationMs = (example: string, zero?: string) =>
  text(zero ? `a duration like ${example} or 0s` : `a duration like ${example}`).meta({ pattern: DURATION_PATTERN, description: `a duration like ${example} (units: ms, s, m, h, d, w)`, examples: [example] }).transform((value, ctx) => {
    const ms = parseDurationMs(value);
    if (ms === null || (ms === 0 && !zero)) {
      const shape = zero ? `a duration like ${example} or 0s for ${zero}` : `a positive duration like ${example}`;
      ctx.issues.push({ code: 'custom', input: value, message: `must be ${shape} (units: ms, s, m, h, d, w), got ${describe(value)}` });
      return z.NEVER;
    }
    return ms;
  });

/** A rate like `20/s`, parsed to tokens per millisecond. */
export const rate = text('a rate like 20/s').meta({ pattern: RATE_PATTERN, description: 'a rate like 20/s, 300/min or 5/h', examples: ['20/s', '300/min'] }).transform((value, ctx) => {
  const parsed = parseRate(value);
  if (parsed === null) {
    ctx.issues.push({ code: 'custom', input: value, message: `must be a rate like 20/s, 300/min or 5/h, got ${describe(value)}` });
    return z.NEVER;
  }
  return parsed;
});

/** A size like `64MiB`, parsed to bytes. */
export const byteSize = text('a size like 64MiB').meta({ pattern: SIZE_PATTERN, description: 'a size like 64MiB or 10MB', examples: ['64MiB'] }).transform((value, ctx) => {
  const bytes = parseByteSize(value);
  if (bytes === null || bytes <= 0) {
    ctx.issues.push({ code: 'custom', input: value, message: `must be a size like 64MiB or 10MB (units: B, KB, MB, GB, KiB, MiB, GiB), got ${describe(value)}` });
    return z.NEVER;
  }
  return bytes;
});

/** A whole number of at least 1. */
export const positiveInt = (what = 'a positive whole number') =>
  z.int({ error: (issue) => expected(what, issue.input) }).min(1, { error: (issue) => `must be ${what}, got ${describe(issue.input)}` });

/** An address or CIDR, checked by the same parser the allowlists use. */
export const cidr = text('an address or CIDR like 10.0.0.0/8').superRefine((value, ctx) => {
  try {
    parseCidr(value);
  } catch (error) {
    // parseCidr says what is wrong ("host bits set: write 1.2.3.0/24 ..."): pass it on.
    ctx.addIssue({ code: 'custom', input: value, message: `must be an IP address or CIDR like 10.0.0.0/8 or 2001:db8::/32: ${(error as Error).message}` });
  }
});

/** A `HOST:PORT` to listen on. */
export const listenAddress = text('HOST:PORT').refine((value) => parseListenAddress(value) !== null, {
  error: (issue) => `must be HOST:PORT like 0.0.0.0:8000 or [::]:8000, got ${describe(issue.input)}`,
});

/** An `http://` or `https://` origin URL without a path, query or fragment. */
export const upstreamUrl = text('a URL like http://127.0.0.1:8080').transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.issues.push({ code: 'custom', input: value, message: `must be a URL like http://127.0.0.1:8080, got ${describe(value)}` });
    return z.NEVER;
  }
  const problem =
    url.protocol !== 'http:' && url.protocol !== 'https:' ? 'must use http:// or https://'
    : url.username || url.password ? 'must not contain credentials'
    : url.pathname !== '/' || url.search || url.hash ? 'must not have a path, query or fragment (portcullis forwards the path as the client sent it)'
    : null;
  if (problem) {
    ctx.issues.push({ code: 'custom', input: value, message: `${problem}, got ${describe(value)}` });
    return z.NEVER;
  }
  return url.origin;
});

/**
 * A URL whose scheme is one of `schemes` (`described` says which, for the
 * message: "an http:// or https:// URL"); `example` names the shape when the
 * value is not a string at all.
 */
export const urlWithScheme = (example: string, schemes: readonly string[], described: string) =>
  text(example).refine(
    (value) => {
      try {
        return schemes.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { error: (issue) => `must be ${described}, got ${describe(issue.input)}` },
  );

/** An HTTP method a rule may name. */
export const method = z.enum(KNOWN_METHODS, {
  error: (issue) => `must be an HTTP method in capitals (${KNOWN_METHODS.join(', ')}), got ${describe(issue.input)}`,
});

/** A status code portcullis may answer with. */
export const httpStatus = z
  .int({ error: (issue) => expected('an HTTP status code', issue.input) })
  .min(400, { error: (issue) => `must be a 4xx or 5xx status code, got ${describe(issue.input)}` })
  .max(599, { error: (issue) => `must be a 4xx or 5xx status code, got ${describe(issue.input)}` });

/** A TCP port number. */
export const port = z
  .int({ error: (issue) => expected('a TCP port 1–65535', issue.input) })
  .min(1, { error: (issue) => `must be a TCP port 1–65535, got ${describe(issue.input)}` })
  .max(65_535, { error: (issue) => `must be a TCP port 1–65535, got ${describe(issue.input)}` });
