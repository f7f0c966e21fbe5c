/**
 * What `apache2ctl -S` does not say about a vhost, read from the lines of its
 * `<VirtualHost>` block (the file and line -S names): whether it speaks TLS,
 * the certificate it serves, the aliases of an address's only vhost, and
 * whether it redirects every request to https:// as certbot's Apache plugin
 * makes a site's :80 vhost do. Only the block's own lines are read: a
 * directive that reaches it through Include, Use (mod_macro) or a Define is
 * not seen, so each answer is "found in the block", never "certainly not".
 */

/** A line of the block, 1-based as in the file, with its directive. */
export interface BlockLine {
  readonly line: number;
  readonly text: string;
}

export interface VirtualHostBlock {
  /** The `<VirtualHost ADDR...>` line. */
  readonly opening: BlockLine;
  /** ServerAlias names, in order. */
  readonly aliases: readonly string[];
  /** `SSLEngine on` or an SSLCertificateFile in the block. */
  readonly tls: boolean;
  /** SSLCertificateFile's path, when given. */
  readonly certificateFile?: string;
  /** DocumentRoot, when given (where certbot's webroot plugin writes challenges). */
  readonly documentRoot?: string;
  /** Each redirect to https:// in the block, in file order; empty when it has none. */
  readonly httpsRedirects: readonly HttpsRedirect[];
  /** The TLS directives of the block (SSL*, certbot's `Include .../options-ssl-apache.conf`). */
  readonly tlsLines: readonly BlockLine[];
}

/**
 * One redirect to https://: a RewriteRule with an https:// substitution and
 * an R flag, with the RewriteCond lines just before it (they belong to it),
 * or a Redirect, RedirectPermanent or RedirectMatch to https://.
 */
export interface HttpsRedirect {
  readonly kind: 'rewrite' | 'redirect';
  /** Its lines, conditions first. */
  readonly lines: readonly BlockLine[];
  /**
   * True when it sends every request of the vhost away, as certbot's does: a
   * pattern that matches every path (`^`, `^/?(.*)$`, `.*`; Redirect's `/`)
   * and conditions only on the host, the port or the scheme. A judgement of
   * the text: `^/wp-admin` or a condition on the path makes it partial.
   */
  readonly everyRequest: boolean;
}

/** Patterns that match every URL path (after their groups are dropped): `^`, `^/`, `^/?`, `.*`, `^/?.*$`. */
const EVERY_PATH = /^\^?\/?\??(?:\.\*\$?)?$/;
/** What certbot's conditions (and the usual hand-written ones) test: which host, port or scheme, never which path. */
const HOST_OR_SCHEME_CONDITION = /^%\{(?:SERVER_NAME|HTTP_HOST|HTTPS|SERVER_PORT|REQUEST_SCHEME|HTTP:X-Forwarded-Proto)\}$/i;

/**
 * Reads the `<VirtualHost>` block that starts on `line` (1-based) of `text`;
 * null when that line does not open one or the block never closes.
 */
export function readVirtualHostBlock(text: string, line: number): VirtualHostBlock | null {
  const lines = text.split('\n');
  const first = lines[line - 1];
  if (first === undefined || !/^\s*<VirtualHost\s[^>]*>/i.test(first)) return null;
  const body: BlockLine[] = [];
  let closed = false;
  for (let index = line; index < lines.length; index++) {
    const raw = (lines[index] as string).replace(/\r$/, '');
    if (/^\s*<\/VirtualHost\s*>/i.test(raw)) {
      closed = true;
      break;
    }
    const trimmed = raw.trim();
    if (trimmed !== '' && !trimmed.startsWith('#')) body.push({ line: index + 1, text: trimmed });
  }
  if (!closed) return null;
  const aliases: string[] = [];
  let tls = false;
  let certificateFile: string | undefined;
  let documentRoot: string | undefined;
  const httpsRedirects: HttpsRedirect[] = [];
  const tlsLines: BlockLine[] = [];
  let conditions: BlockLine[] = [];
  for (const entry of body) {
    const [directive = '', ...args] = words(entry.text);
    const name = directive.toLowerCase();
    if (name === 'serveralias') aliases.push(...args);
    if (name === 'documentroot' && args[0] !== undefined) documentRoot = args[0];
    if (name.startsWith('ssl') || (name === 'include' && /options-ssl-apache\.conf$/.test(args[0] ?? ''))) tlsLines.push(entry);
    if (name === 'sslengine' && args[0]?.toLowerCase() === 'on') tls = true;
    if (name === 'sslcertificatefile' && args[0] !== undefined) {
      tls = true;
      certificateFile = args[0];
    }
    if (name === 'rewritecond') {
      conditions.push(entry);
      continue;
    }
    if (name === 'rewriterule' && isHttpsSubstitution(args[1]) && /^\[(?:.*,)?R(?:=[^,\]]*)?(?:,.*)?\]$/i.test(args[2] ?? '')) {
      const everyRequest = matchesEveryPath(args[0]) && conditions.every((condition) => HOST_OR_SCHEME_CONDITION.test(words(condition.text)[1] ?? ''));
      httpsRedirects.push({ kind: 'rewrite', lines: [...conditions, entry], everyRequest });
    } else if ((name === 'redirect' || name === 'redirectpermanent' || name === 'redirectmatch') && args.some(isHttpsSubstitution)) {
      // Redirect [status] URL-path URL: the path is the word before the https:// one.
      const path = args[args.findIndex(isHttpsSubstitution) - 1];
      httpsRedirects.push({ kind: 'redirect', lines: [entry], everyRequest: name === 'redirectmatch' ? matchesEveryPath(path) : path === '/' });
    }
    conditions = [];
  }
  const opening = { line, text: first.trim() };
  return { opening, aliases, tls, httpsRedirects, tlsLines, ...(certificateFile === undefined ? {} : { certificateFile }), ...(documentRoot === undefined ? {} : { documentRoot }) };
}

function matchesEveryPath(pattern: string | undefined): boolean {
  return pattern !== undefined && EVERY_PATH.test(pattern.replace(/[()]/g, ''));
}

function isHttpsSubstitution(arg: string | undefined): boolean {
  return arg !== undefined && /^https:\/\//i.test(arg);
}

/** A directive's words: quoted arguments kept whole, as Apache reads them. */
function words(text: string): string[] {
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((match) => match[1] ?? (match[2] as string));
}
