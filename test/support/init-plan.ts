/**
 * Reading and running the plan `portcullis init` prints, on a layout from
 * apache-layout.ts instead of /etc/apache2.
 */
import { execFile } from 'node:child_process';
import { symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { APACHE_BIN } from './apache.js';
import { enableModule, type ApacheLayout } from './apache-layout.js';

const run = promisify(execFile);

/** The plan's lines under its numbered step `step` (`# 4. ...`), empty lines dropped; throws when it has no such step. */
export function planStep(stdout: string, step: number): string[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`# ${step}. `));
  if (start < 0) throw new Error(`the plan has no step ${step}:\n${stdout}`);
  const end = lines.findIndex((line, index) => index > start && /^# \d\. /.test(line));
  return lines.slice(start + 1, end < 0 ? undefined : end).filter((line) => line !== '');
}

/**
 * Runs the plan's Apache step on the layout as root would: its cp, install
 * and sed lines for real; the a2* tools, which only know /etc/apache2, by
 * what they do to the layout's folders; configtest as apache2 -t of it.
 * Throws on a command it does not know, so a new kind of step is noticed.
 */
export async function applyApacheStep(layout: ApacheLayout, commands: readonly string[]): Promise<void> {
  for (const command of commands.flatMap((line) => line.split(' && '))) {
    const [tool, ...args] = command.split(' ');
    if (command.startsWith('#')) continue;
    else if (tool === 'a2enmod') for (const name of args) await enableModule(layout.modsEnabled, name);
    else if (tool === 'a2dismod') for (const name of args) await unlink(join(layout.modsEnabled, `${name}.load`));
    else if (tool === 'a2enconf') for (const name of args) await symlink(join('..', 'conf-available', `${name}.conf`), join(layout.confEnabled, `${name}.conf`));
    else if (tool === 'a2dissite') for (const name of args) await unlink(join(layout.sitesEnabled, `${name}.conf`));
    else if (command === 'apache2ctl configtest') await run(APACHE_BIN, ['-f', layout.configFile, '-t']);
    else if (tool === 'cp' || tool === 'install' || tool === 'sed') await run('sh', ['-c', command]);
    else throw new Error(`the plan's Apache step has a command this helper does not know: ${command}`);
  }
}
