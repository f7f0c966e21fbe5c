import { readFile } from 'node:fs/promises';
import { loadPolicyFile, locateInPolicy } from '../config/policy-loader.js';
import { ConfigError, formatConfigProblem, PortcullisError } from '../core/errors.js';
import { findHostOverlaps } from '../policy/host-overlaps.js';
import { findUnreachableRules } from '../policy/unreachable-rules.js';
import { checkCertificates } from '../tls/certificate-check.js';
import { formatCertificateProblem } from '../tls/certificate-problem.js';
import { parseCommandArgs } from './usage-error.js';

export const CHECK_HELP = `Usage: portcullis check FILE

Validates a policy file without starting anything, and reports what it can
never use as a problem too: a site host pattern an earlier site covers (it can
never choose its site), and a rule whose every request an earlier block on the
same site refuses first (on every site where the rule is in force). Then it
reads and checks the TLS certificates it names (tls.certificates,
tls.certbot_live) as serve would.
Exits 0 when all is valid; otherwise prints one line per problem, as
FILE:LINE:COL: message for the policy and CERTFILE: message for a certificate,
and exits 1.

Options:
  -h, --help   show this help`;

/** `portcullis check FILE`: returns the exit code. */
export async function runCheck(args: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseCommandArgs('check', { args, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    out.write(`${CHECK_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new PortcullisError('PC_ERR_USAGE', `check takes exactly one policy file, got ${positionals.length}\nRun 'portcullis check --help' for usage.`);
  }
  const file = positionals[0] as string;
  try {
    const config = await loadPolicyFile(file);
    // Valid, but dead: a site some host pattern can never choose (the first matching site wins, as in Apache), or a rule an earlier block always answers for.
    const dead = [...findHostOverlaps(config), ...findUnreachableRules(config)];
    if (dead.length > 0) throw new ConfigError(locateInPolicy(await readFile(file, 'utf8'), file, dead));
    // The certificates the policy names are read and checked as serve would, so a bad renewal is found before a reload keeps the old one.
    const certificates = await checkCertificates(config.tls);
    if (certificates.problems.length > 0) {
      for (const problem of certificates.problems) err.write(`${formatCertificateProblem(problem)}\n`);
      err.write(`${file}: ${certificates.problems.length} certificate problem${certificates.problems.length === 1 ? '' : 's'}\n`);
      return 1;
    }
    const served = certificates.served.length === 0 ? '' : `, ${certificates.served.length} certificate${certificates.served.length === 1 ? '' : 's'}: ${certificates.served.map((certificate) => certificate.name).join(', ')}`;
    out.write(`${file}: OK (${config.limits.length} limit rules, ${config.block.length} blocks, upstream ${config.upstream}${served})\n`);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) err.write(`${formatConfigProblem(problem)}\n`);
      err.write(`${file}: ${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}\n`);
      return 1;
    }
    throw error;
  }
}
