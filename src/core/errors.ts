/**
 * Every failure portcullis reports has a stable code, defined here and only
 * here. Users (and scripts) match on `code`; messages may improve over time.
 * The README's error table is checked against this list by a test.
 */
export const ERROR_CODES = {
  PC_ERR_USAGE: 'The command line is not valid; the message names the bad argument.',
  PC_ERR_CONFIG_READ: 'The policy file could not be read (missing, unreadable).',
  PC_ERR_CONFIG_INVALID: 'The policy file has one or more problems, each reported as FILE:LINE:COL.',
  PC_ERR_LISTEN: 'A listener could not bind its address (in use, or no permission for the port).',
  PC_ERR_FIREWALL_UNAVAILABLE: 'The firewall backend cannot be used (tool missing or no CAP_NET_ADMIN); bans are enforced by the proxy only.',
  PC_ERR_FIREWALL_COMMAND: 'A firewall command failed; the ban stays enforced by the proxy and the command is counted as a failure.',
  PC_ERR_STATE_FILE: 'The ban state file could not be read or written; a corrupt file is kept aside and portcullis starts without it.',
  PC_ERR_STATE_ENTRY: 'One entry of the ban state file is not valid (bad target, prefix, family, scope, times or fields); that entry is skipped and logged, the others are restored.',
  PC_ERR_ADMIN_TOKEN: 'The admin token could not be read from admin.token_file, or is too short to be safe (16 characters at least).',
  PC_ERR_ADMIN_REQUEST: 'The admin API refused a request: bad input, unknown route, or a missing or wrong bearer token. The JSON body says which.',
  PC_ERR_ADMIN_HOST: 'The admin API refused a request whose Host header names neither its own address, localhost nor an admin.allowed_hosts entry (a guard against DNS rebinding); add the name to admin.allowed_hosts if it is yours.',
  PC_ERR_INTERNAL: 'A bug in portcullis: the admin API or the proxy answered 500 (the proxy closes the connection when the answer had begun), or an access-log line could not be written and was lost, and the cause was logged; the process goes on. Please report it with that log line.',
  PC_ERR_ADMIN_UNREACHABLE: 'The CLI could not reach the admin API: is portcullis running, and is --admin (or admin.listen) right?',
  PC_ERR_REPLAY_INPUT: 'portcullis replay could not read a log file (missing, unreadable, or a damaged .gz); the message names it.',
  PC_ERR_ACCESS_LOG: 'The access log file could not be opened or written; requests are still served.',
  PC_ERR_BUFFER_TEMP: "A temp file for buffering could not be created, written or read in buffering.temp_dir; bodies that need one get 413 or 503, and responses are passed on at the client's pace instead.",
  PC_ERR_TLS_CERTIFICATE: 'A TLS certificate or key in tls.certificates or tls.certbot_live cannot be served (unreadable, not PEM, key not matching, expired, no host names); the message names the file and what to do. At a reload the previous certificate for that name stays.',
  PC_ERR_APACHE_LAYOUT: "portcullis init could not read Apache's layout: apache2ctl -S did not run, failed, or printed something it cannot read; the message says which (try --apachectl or --apache-config).",
  PC_ERR_INIT_OUTPUT: 'portcullis init wrote nothing: a file it would write exists already (--force replaces it), the output directory cannot be written, or a file it copies from the installation (deploy/) is missing.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of every error portcullis raises on purpose. */
export class PortcullisError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PortcullisError';
    this.code = code;
  }
}

/** The firewall backend cannot work here: its tool is missing or portcullis lacks CAP_NET_ADMIN. */
export class BackendUnavailableError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PC_ERR_FIREWALL_UNAVAILABLE', message, options);
    this.name = 'BackendUnavailableError';
  }
}

/** A firewall command exited non-zero or could not run; carries what it printed. */
export class FirewallCommandError extends PortcullisError {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super('PC_ERR_FIREWALL_COMMAND', `${command} ${args.join(' ')} failed: ${stderr.trim() || String((options?.cause as Error | undefined)?.message ?? 'unknown error')}`, options);
    this.name = 'FirewallCommandError';
  }
}

/** One change of a firewall batch that was refused, and the command failure that refused it. */
export interface RefusedBanChange {
  /** The ban's or lift's target (`192.0.2.7`, `198.51.100.0/24`). */
  readonly target: string;
  /** `add` for a ban, `remove` for a lift. */
  readonly kind: 'add' | 'remove';
  readonly error: FirewallCommandError;
}

/**
 * Some changes of a firewall commit were refused; every other change of the
 * batch was applied. Same code as FirewallCommandError: the refused bans
 * stay enforced by the proxy.
 */
export class FirewallBatchError extends FirewallCommandError {
  /** The refused changes, in batch order (at least one). */
  readonly refused: readonly RefusedBanChange[];
  /** How many changes the batch held; `refused.length === total` when none was applied. */
  readonly total: number;

  constructor(refused: readonly RefusedBanChange[], total: number) {
    const first = refused[0]?.error;
    // Each reason on one line, without the caret lines nft draws under the failing statement.
    const reason = (error: FirewallCommandError): string =>
      error.stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !/^\^+$/.test(line)).join(' ').slice(0, 300);
    const shown = refused.slice(0, 5).map((change) => `${change.kind} ${change.target} (${reason(change.error)})`);
    if (refused.length > shown.length) shown.push(`and ${refused.length - shown.length} more`);
    const outcome = refused.length === total ? 'all refused' : 'the others applied';
    super(first?.command ?? 'firewall', first?.args ?? [], `${refused.length} of ${total} changes refused, ${outcome}: ${shown.join('; ')}`, { cause: first });
    this.name = 'FirewallBatchError';
    this.refused = refused;
    this.total = total;
  }
}

/** One problem in a policy file, located so an editor can jump to it. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

/** The policy file is invalid; `problems` lists every problem found, not only the first. */
export class ConfigError extends PortcullisError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super('PC_ERR_CONFIG_INVALID', problems.map(formatConfigProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Formats a problem the way compilers do, `FILE:LINE:COL: message`, so editors can jump to it. */
export function formatConfigProblem(problem: ConfigProblem): string {
  return `${problem.file}:${problem.line}:${problem.col}: ${problem.message}`;
}

/** An admin API request portcullis refuses; `status` is the HTTP status it answers with. */
export class AdminRequestError extends PortcullisError {
  constructor(
    readonly status: number,
    message: string,
    code: 'PC_ERR_ADMIN_REQUEST' | 'PC_ERR_ADMIN_HOST' = 'PC_ERR_ADMIN_REQUEST',
  ) {
    super(code, message);
    this.name = 'AdminRequestError';
  }
}

/** The admin API refused a request because its Host header does not name the API (421 Misdirected Request). */
export class AdminHostError extends AdminRequestError {
  constructor(message: string) {
    super(421, message, 'PC_ERR_ADMIN_HOST');
    this.name = 'AdminHostError';
  }
}

/**
 * No certificate of the policy can be served, so TLS listeners cannot start.
 * `problems` lists every certificate file refused, each as `FILE: what to do`.
 */
export class TlsCertificateError extends PortcullisError {
  readonly problems: readonly { readonly file: string; readonly message: string }[];

  constructor(problems: readonly { readonly file: string; readonly message: string }[], summary = 'no TLS certificate can be served') {
    super('PC_ERR_TLS_CERTIFICATE', [summary, ...problems.map((problem) => `${problem.file}: ${problem.message}`)].join('\n'));
    this.name = 'TlsCertificateError';
    this.problems = problems;
  }
}
