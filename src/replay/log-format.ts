import { PortcullisError } from '../core/errors.js';
import type { LoggedRequest } from './access-log-line.js';
import { parseApacheTime, unescapeApache } from './apache-time.js';

/** Apache's own definitions of the formats it ships (apache2.conf on Debian). */
export const NAMED_LOG_FORMATS = {
  common: '%h %l %u %t "%r" %>s %b',
  combined: '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
  vhost_combined: '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
} as const;

/** A compiled LogFormat: reads the lines one `LogFormat` string writes. */
export interface LogFormat {
  readonly text: string;
  /** The request a line tells; null when the line does not fit the format or its `%r` is no request. */
  parse(line: string): LoggedRequest | null;
}

/** What a directive's value is for. */
type Field = 'peer' | 'client' | 'vhost' | 'requestHost' | 'time' | 'request' | 'status' | 'userAgent' | 'forwardedFor' | 'ignored';

const READ = '%h %a %l %u %t %r %>s %s %b %B %O %I %D %T %p %v %V %{Referer}i %{User-Agent}i %{X-Forwarded-For}i (and any other %{Header}i)';

/** Directives without an argument, and what their value is for. */
const SIMPLE: Readonly<Record<string, Field>> = {
  h: 'peer', a: 'client', l: 'ignored', u: 'ignored', t: 'time', r: 'request', s: 'status',
  b: 'ignored', B: 'ignored', O: 'ignored', I: 'ignored', D: 'ignored', T: 'ignored', p: 'ignored', v: 'vhost', V: 'requestHost',
};

const NUMBER = '(-|\\d+)';
const WORD = '(\\S*)';
const QUOTED = '((?:[^"\\\\]|\\\\.)*)';

/**
 * Compiles an Apache `LogFormat` string (as in apache2.conf) into a line
 * reader. `%h` is the connection's peer, `%a` the client (mod_remoteip's,
 * when it runs): with both, `%a` wins; `%V` (the name the client asked for)
 * wins over `%v` (the vhost's ServerName) to choose the site. Throws a
 * PortcullisError (PC_ERR_USAGE) that names what the format lacks or which
 * directive it cannot read.
 */
export function compileLogFormat(text: string): LogFormat {
  const fields: Field[] = [];
  let source = '^';
  for (let i = 0; i < text.length; ) {
    const char = text[i] as string;
    if (char !== '%') {
      source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i++;
      continue;
    }
    const match = /^%([<>]?)(?:\{([^}]*)\})?([a-zA-Z%])/.exec(text.slice(i));
    if (match === null) throw formatError(text, `"${text.slice(i, i + 3)}" at column ${i + 1} is not a directive`);
    const [whole, , argument, letter] = match as unknown as [string, string, string | undefined, string];
    i += whole.length;
    if (letter === '%') {
      source += '%';
      continue;
    }
    const quoted = text[i - whole.length - 1] === '"' && text[i] === '"';
    const field = argument === undefined ? SIMPLE[letter] : letter === 'i' ? headerField(argument) : undefined;
    if (field === undefined) {
      const why = argument !== undefined && letter === 't' ? 'is not supported (replay reads %t, Apache\'s default time)' : `is not a directive portcullis replay reads; it reads ${READ}`;
      throw formatError(text, `${whole} ${why}`);
    }
    fields.push(field);
    source += field === 'time' ? '\\[([^\\]]*)\\]' : quoted ? QUOTED : isNumber(letter) ? NUMBER : WORD;
  }
  if (!fields.includes('request')) throw formatError(text, 'needs %r, the request line, to know what was asked for');
  if (!fields.includes('time')) throw formatError(text, 'needs %t to know when');
  if (!fields.includes('peer') && !fields.includes('client')) throw formatError(text, 'needs %h or %a to know who asked');
  const line = new RegExp(`${source}\\s*$`);
  return { text, parse: (input) => readLine(line, fields, input) };
}

function readLine(line: RegExp, fields: readonly Field[], input: string): LoggedRequest | null {
  const m = line.exec(input);
  if (m === null) return null;
  let peer: string | undefined;
  let client: string | undefined;
  let vhost: string | undefined;
  let requestHost: string | undefined;
  let epochMs: number | null = null;
  let request: string[] | undefined;
  let status = 0;
  let userAgent: string | null = null;
  let forwardedFor: string | undefined;
  for (let index = 0; index < fields.length; index++) {
    const value = m[index + 1] as string;
    switch (fields[index]) {
      case 'peer': peer = value; break;
      case 'client': client = value; break;
      case 'vhost': vhost = value; break;
      case 'requestHost': requestHost = value; break;
      case 'time': epochMs = parseApacheTime(value); break;
      case 'request': request = unescapeApache(value).split(' '); break;
      case 'status': status = Number(value); break;
      case 'userAgent': userAgent = value === '-' ? null : unescapeApache(value); break;
      case 'forwardedFor': if (value !== '-' && value !== '') forwardedFor = unescapeApache(value); break;
      default: break;
    }
  }
  // "-" or a bare target: Apache logs what it got, even when it is no request line.
  if (epochMs === null || request === undefined || request.length !== 3 || request[0] === '') return null;
  const host = requestHost !== undefined && requestHost !== '-' ? requestHost : vhost !== undefined && vhost !== '-' ? vhost : null;
  return {
    vhost: host === null ? null : host.replace(/:\d+$/, ''),
    client: (client ?? peer) as string,
    epochMs,
    method: request[0] as string,
    target: request[1] as string,
    status,
    userAgent,
    ...(forwardedFor === undefined ? {} : { forwardedFor }),
  };
}

function headerField(name: string): Field {
  const lower = name.toLowerCase();
  return lower === 'user-agent' ? 'userAgent' : lower === 'x-forwarded-for' ? 'forwardedFor' : 'ignored';
}

function isNumber(letter: string): boolean {
  return 'sbBOIDTp'.includes(letter);
}

function formatError(text: string, why: string): PortcullisError {
  return new PortcullisError('PC_ERR_USAGE', `--format "${text}": ${why}`);
}
