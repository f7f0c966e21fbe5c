/**
 * The systemd unit `portcullis init` writes: deploy/portcullis.service as
 * shipped (capabilities, sandbox and all), with its ExecStart's --config
 * naming the path the policy is installed at.
 */
import { PortcullisError } from '../core/errors.js';

/** The shipped unit's text with `--config PATH` of its ExecStart replaced. Pure. */
export function unitForPolicy(shippedUnit: string, policyPath: string): string {
  const execStart = /^(ExecStart=.*\s--config\s+)(\S+)(.*)$/m;
  if (!execStart.test(shippedUnit)) throw new PortcullisError('PC_ERR_INIT_OUTPUT', 'deploy/portcullis.service has no ExecStart=... --config PATH line to point at the policy');
  // systemd splits ExecStart on whitespace and takes its own quotes: a path with spaces would need them, so it is refused.
  if (/\s|["'\\]/.test(policyPath)) throw new PortcullisError('PC_ERR_USAGE', `--config-path must be a path without spaces or quotes (systemd's ExecStart), got ${JSON.stringify(policyPath)}`);
  return shippedUnit.replace(execStart, (_line, head: string, _old: string, tail: string) => `${head}${policyPath}${tail}`);
}
