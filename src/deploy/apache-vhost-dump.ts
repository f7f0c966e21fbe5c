/**
 * Apache's own account of its virtual hosts, as `apache2ctl -S` (the same as
 * `apachectl -t -D DUMP_VHOSTS`) prints it, read without guessing at the
 * configuration files. The shape comes from `dump_a_vhost()` in Apache's
 * server/vhost.c:
 *
 * ```
 * VirtualHost configuration:
 * 127.0.0.1:8081         internal.example.org (/etc/apache2/sites-enabled/x.conf:6)
 * *:80                   is a NameVirtualHost
 *          default server example.org (/etc/apache2/sites-enabled/a.conf:1)
 *          port 80 namevhost example.org (/etc/apache2/sites-enabled/a.conf:1)
 *                  alias www.example.org
 *                  wild alias *.example.org
 * ServerRoot: "/etc/apache2"
 * ```
 *
 * An address with one vhost gets one line, without its aliases: Apache
 * serves every name on that address from it, so it has no name list to
 * print. A vhost without a ServerName is shown with the server's name (the
 * global ServerName, or the host name Apache guessed).
 */
import { PortcullisError } from '../core/errors.js';

/** One `<VirtualHost>` as Apache reports it. */
export interface DumpedVirtualHost {
  /** Its ServerName (or the server's, when it has none). */
  readonly serverName: string;
  /** ServerAlias names, exact ones then wildcards, as listed; empty for an address's only vhost (Apache does not print them). */
  readonly aliases: readonly string[];
  /** The file that defines it and the line of its `<VirtualHost>`. */
  readonly file: string;
  readonly line: number;
}

/** One address Apache's vhosts are bound to, and the vhosts on it in Apache's order (the first is its default). */
export interface DumpedAddress {
  /** As Apache prints it: `*:80`, `127.0.0.1:8081`, `[::1]:8080`, `*:*`. */
  readonly address: string;
  /** `*` for every address, else the IP (without brackets). */
  readonly host: string;
  /** `null` for `*` (any port). */
  readonly port: number | null;
  /** True when Apache chooses among several vhosts by name here. */
  readonly nameBased: boolean;
  /** At least one; the first answers names none of them has. */
  readonly vhosts: readonly DumpedVirtualHost[];
}

export interface ApacheVhostDump {
  readonly addresses: readonly DumpedAddress[];
  /** `ServerRoot: "..."`, when printed. */
  readonly serverRoot?: string;
}

const HEADER = 'VirtualHost configuration:';
const LONE = /^(\S+)\s+(\S+) \((.+):(\d+)\)$/;
const NAME_BASED = /^(\S+)\s+is a NameVirtualHost$/;
const DEFAULT_SERVER = /^\s+default server (\S+) \((.+):(\d+)\)$/;
const NAME_VHOST = /^\s+port (\d+|\*) namevhost (\S+) \((.+):(\d+)\)$/;
const ALIAS = /^\s+(?:wild )?alias (\S+)$/;
const SERVER_ROOT = /^ServerRoot: "(.*)"$/;

/**
 * Parses `apache2ctl -S` standard output. Lines after the vhost list
 * (ServerRoot, Mutex, PidFile, Define, User) are skipped but ServerRoot;
 * Apache's warnings go to standard error and are not expected here.
 * Throws PC_ERR_APACHE_LAYOUT naming the line it cannot read.
 */
export function parseApacheVhostDump(output: string): ApacheVhostDump {
  const lines = output.split('\n').map((line) => line.replace(/\r$/, ''));
  const start = lines.indexOf(HEADER);
  if (start < 0) throw layoutError(`no "${HEADER}" line: is this the output of apache2ctl -S?`);
  const addresses: DumpedAddress[] = [];
  let current: { address: string; vhosts: { serverName: string; aliases: string[]; file: string; line: number }[] } | null = null;
  let serverRoot: string | undefined;
  const close = (): void => {
    if (current === null) return;
    if (current.vhosts.length === 0) throw layoutError(`address ${current.address} is a NameVirtualHost with no namevhost lines`);
    addresses.push({ ...splitAddress(current.address), nameBased: true, vhosts: current.vhosts });
    current = null;
  };
  for (const [index, line] of lines.slice(start + 1).entries()) {
    if (line.trim() === '') continue;
    const where = `line ${start + index + 2}`;
    let match: RegExpExecArray | null;
    if (/^\s/.test(line)) {
      if (current === null) throw layoutError(`${where}: "${line.trim()}" is not under a NameVirtualHost address`);
      if ((match = NAME_VHOST.exec(line))) {
        current.vhosts.push({ serverName: match[2] as string, aliases: [], file: match[3] as string, line: Number(match[4]) });
      } else if ((match = ALIAS.exec(line))) {
        const last = current.vhosts.at(-1);
        if (last === undefined) throw layoutError(`${where}: an alias before any namevhost line`);
        last.aliases.push(match[1] as string);
      } else if (!DEFAULT_SERVER.test(line)) {
        // The default server is repeated as the first namevhost line; anything else is a format we do not know.
        throw layoutError(`${where}: cannot read "${line.trim()}"`);
      }
      continue;
    }
    close();
    if ((match = NAME_BASED.exec(line))) {
      current = { address: match[1] as string, vhosts: [] };
    } else if ((match = LONE.exec(line))) {
      const vhost = { serverName: match[2] as string, aliases: [], file: match[3] as string, line: Number(match[4]) };
      addresses.push({ ...splitAddress(match[1] as string), nameBased: false, vhosts: [vhost] });
    } else {
      // The run-time settings that follow the vhost list: ServerRoot is kept, the vhost list is over.
      serverRoot = SERVER_ROOT.exec(line)?.[1];
      break;
    }
  }
  close();
  return serverRoot === undefined ? { addresses } : { addresses, serverRoot };
}

function splitAddress(address: string): { address: string; host: string; port: number | null } {
  const match = /^(\*|\[[0-9A-Fa-f:.]+\]|[^:\s]+):(\d+|\*)$/.exec(address);
  if (match === null) throw layoutError(`cannot read the address "${address}"`);
  const host = (match[1] as string).replace(/^\[(.*)\]$/, '$1');
  return { address, host, port: match[2] === '*' ? null : Number(match[2]) };
}

function layoutError(message: string): PortcullisError {
  return new PortcullisError('PC_ERR_APACHE_LAYOUT', `apache2ctl -S: ${message}`);
}
