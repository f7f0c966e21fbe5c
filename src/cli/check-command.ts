import { loadPolicyFile } from '../config/policy-loader.js';
import { ConfigError, formatConfigProblem, PortcullisError } from '../core/errors.js';
import { parseCommandArgs } from './usage-error.js';

export const CHECK_HELP = `Usage: portcullis check FILE

Validates a policy file without starting anything. Exits 0 when it is valid;
otherwise prints one line per problem as FILE:LINE:COL: message and exits 1.

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
    out.write(`${file}: OK (${config.limits.length} limit rules, ${config.block.length} blocks, upstream ${config.upstream})\n`);
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
