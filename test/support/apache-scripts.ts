/**
 * An Apache with CGI scripts that behave like PHP pages for the proxy: they
 * accept any method, read bodies, and can be slow on request. Used where a
 * static file will not do (POST answers 405 on a static file; capping
 * concurrency needs requests that take time).
 */
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { startApache, type ApacheHandle, type StartApacheOptions } from './apache.js';

export const SCRIPTS: Readonly<Record<string, string>> = {
  // Reports the method and how many body bytes arrived.
  'echo.cgi': `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'method=%s length=%s\\n' "$REQUEST_METHOD" "$(cat | wc -c)"
`,
  // Reports the request line's target and every request header as Apache's CGI environment has it (HTTP_*).
  'env.cgi': `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'REQUEST_URI=%s\\n' "$REQUEST_URI"
env | grep '^HTTP_' | sort
`,
  // Sleeps for the number of seconds in the query string (?1.5), then answers.
  'slow.cgi': `#!/bin/sh
case "$QUERY_STRING" in *[!0-9.]*|'') s=1 ;; *) s="$QUERY_STRING" ;; esac
sleep "$s"
printf 'Content-Type: text/plain\\r\\n\\r\\nslept %s\\n' "$s"
`,
};

/** Starts Apache with mod_cgid and the SCRIPTS above in its docroot. */
export async function startApacheWithScripts(options: StartApacheOptions = {}): Promise<ApacheHandle> {
  const apache = await startApache({
    ...options,
    files: { ...SCRIPTS, ...options.files },
    modules: ['cgid', ...(options.modules ?? [])],
    directoryConfig: `Options +ExecCGI\nAddHandler cgi-script .cgi\n${options.directoryConfig ?? ''}`,
    extraConfig: `ScriptSock "\${SERVER_DIR}/run/cgid.sock"\n${options.extraConfig ?? ''}`,
  });
  for (const name of Object.keys(SCRIPTS)) await chmod(join(apache.root, name), 0o755);
  return apache;
}
