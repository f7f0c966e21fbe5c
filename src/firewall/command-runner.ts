/*
 * The only place in src/ that starts a process. Firewall backends hand it an
 * argument array; nothing is ever passed through a shell, so no ban target
 * can become a second command. Batch files (`nft -f -`, `ipset restore`,
 * `iptables-restore`) go to the child's stdin.
 */
import { execFile, type ExecFileException } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendUnavailableError, FirewallCommandError } from '../core/errors.js';

/** The Debian package that ships each tool a backend runs, for the "install X" message. */
const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  nft: 'nftables',
  ipset: 'ipset',
  iptables: 'iptables',
  ip6tables: 'iptables',
  'iptables-restore': 'iptables',
  'ip6tables-restore': 'iptables',
  'iptables-save': 'iptables',
  'ip6tables-save': 'iptables',
  conntrack: 'conntrack',
  ip: 'iproute2',
};

/** Options of one command. */
export interface RunOptions {
  /** Written to the child's stdin, which is then closed (batch files: `nft -f -`, `ipset restore`). */
  readonly input?: string;
  /** The child is killed (SIGKILL) and the call rejects after this long. @default 10_000 */
  readonly timeoutMs?: number;
  /**
   * Most bytes kept of stdout and of stderr; beyond it the child is killed and
   * the call rejects. Listing a big set needs more than the default: nft's
   * JSON costs ~70 bytes per element. @default 16 MiB
   */
  readonly maxOutputBytes?: number;
}

export interface CommandOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** @default 10 s: a firewall command that takes longer is stuck, not busy. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
/** @default 16 MiB of output per stream: enough to list ~200,000 nft set elements as JSON. */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export interface CommandRunnerOptions {
  /**
   * Runs every command inside this network namespace (`ip netns exec NS ...`).
   * For tests, which must never touch the host's firewall; production leaves it unset.
   */
  readonly netns?: string;
}

/**
 * Runs firewall commands, optionally inside a network namespace. Backends
 * take one in their constructor, so tests can point them at a namespace (or
 * subclass it to record commands without running anything).
 */
export class CommandRunner {
  /** The namespace commands run in, or undefined for the caller's own. */
  readonly netns: string | undefined;

  constructor(options: CommandRunnerOptions = {}) {
    if (options.netns !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(options.netns)) {
      throw new RangeError(`netns must be a namespace name (letters, digits, _ . -, not starting with - or .), got ${JSON.stringify(options.netns)}`);
    }
    this.netns = options.netns;
  }

  /**
   * Runs `file args...` and resolves with its output when it exits 0.
   * Rejects with BackendUnavailableError when `file` is not installed, and
   * with FirewallCommandError (carrying stderr) on a non-zero exit, a
   * timeout or too much output.
   */
  run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandOutput> {
    if (this.netns === undefined) return runCommand(file, args, options);
    return runCommand('ip', ['netns', 'exec', this.netns, file, ...args], options).catch((error: unknown) => {
      // `ip netns exec` reports a missing binary itself and exits 255.
      if (error instanceof FirewallCommandError && /exec of "[^"]*" failed: No such file or directory/.test(error.stderr)) {
        throw missingTool(file, error);
      }
      throw error;
    });
  }

  /**
   * Runs `file` with `input` in a private temporary file (mode 0600, in a
   * fresh 0700 directory under the system's temp dir) whose path `args`
   * receives, and removes it when the command ends. For tools that open
   * their batch by name: `conntrack -R -` opens /dev/stdin, which fails on
   * the socket Node gives a child as stdin. Rejects like run(), and with the
   * file system's error when the file cannot be written.
   */
  async runWithInputFile(file: string, args: (path: string) => readonly string[], input: string, options: Omit<RunOptions, 'input'> = {}): Promise<CommandOutput> {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-'));
    try {
      const path = join(dir, 'input');
      await writeFile(path, input, { mode: 0o600 });
      return await this.run(file, args(path), options);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Runs one command without a shell (see CommandRunner.run for the contract).
 * Production code goes through a CommandRunner; this is its engine.
 */
export function runCommand(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandOutput> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const maxBuffer = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    return Promise.reject(new RangeError(`timeoutMs must be a positive whole number of milliseconds, got ${timeoutMs}`));
  }
  if (!Number.isInteger(maxBuffer) || maxBuffer <= 0) {
    return Promise.reject(new RangeError(`maxOutputBytes must be a positive whole number, got ${maxBuffer}`));
  }
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      // SIGKILL: a firewall tool stuck on a kernel lock ignores nothing else we could send either.
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer, windowsHide: true },
      (error: ExecFileException | null, stdout: string, stderr: string) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        if (error.code === 'ENOENT') {
          reject(missingTool(file, error));
          return;
        }
        let detail = stderr;
        if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') detail = `${stderr}\noutput exceeded ${maxBuffer} bytes`;
        else if (error.killed === true && error.signal === 'SIGKILL') detail = `${stderr}\ntimed out after ${timeoutMs} ms`;
        reject(new FirewallCommandError(file, args, detail, { cause: error }));
      },
    );
    // A child that exits before reading its stdin makes the write fail with
    // EPIPE; the exit status (reported above) says what went wrong.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
}

function missingTool(file: string, cause: unknown): BackendUnavailableError {
  const tool = file.slice(file.lastIndexOf('/') + 1);
  const pkg = DEBIAN_PACKAGES[tool];
  const hint = pkg === undefined ? '' : ` (Debian/Ubuntu: apt-get install ${pkg})`;
  return new BackendUnavailableError(`${tool} is not installed or not on PATH${hint}`, { cause });
}

/**
 * What backends' `init()` rethrows: a FirewallCommandError whose tool said it
 * lacks privilege (nft "Operation not permitted", iptables "you must be root",
 * conntrack "CAP_NET_ADMIN") becomes a BackendUnavailableError naming
 * CAP_NET_ADMIN; anything else is returned unchanged.
 */
export function unavailableWhenUnprivileged(error: unknown): unknown {
  if (error instanceof FirewallCommandError && /Operation not permitted|Permission denied|must be root|CAP_NET_ADMIN/i.test(error.stderr)) {
    return new BackendUnavailableError(
      `${error.command} was refused by the kernel: portcullis needs root or CAP_NET_ADMIN for kernel bans (${error.stderr.trim().split('\n')[0] ?? ''})`,
      { cause: error },
    );
  }
  return error;
}

/** The path a ScriptedCommandRunner passes for the input file of runWithInputFile (nothing is written). */
export const SCRIPTED_INPUT_FILE = '<input file>';

/** One command a ScriptedCommandRunner was asked to run. */
export interface RecordedCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly input: string | undefined;
}

/**
 * A test double that runs nothing: it records each command and answers with
 * what `respond` returns (or throws). Shipped, like undici's MockAgent, so
 * every test of code that drives a backend can use the same one.
 *
 *   const runner = new ScriptedCommandRunner((command) => ({ stdout: '', stderr: '' }));
 *   await new NftablesBackend(options, runner).init();
 *   runner.commands[0]?.input // the batch nft would have read
 */
export class ScriptedCommandRunner extends CommandRunner {
  readonly commands: RecordedCommand[] = [];
  readonly #respond: (command: RecordedCommand) => CommandOutput | Promise<CommandOutput>;

  /** @param respond Answers a command; throw a FirewallCommandError to play a failure. @default empty output */
  constructor(respond: (command: RecordedCommand) => CommandOutput | Promise<CommandOutput> = () => ({ stdout: '', stderr: '' })) {
    super();
    this.#respond = respond;
  }

  override async run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandOutput> {
    const command = { file, args: [...args], input: options.input };
    this.commands.push(command);
    return this.#respond(command);
  }

  /** Writes no file: records the command with SCRIPTED_INPUT_FILE as the path and the input as `input`. */
  override runWithInputFile(file: string, args: (path: string) => readonly string[], input: string, options: Omit<RunOptions, 'input'> = {}): Promise<CommandOutput> {
    return this.run(file, args(SCRIPTED_INPUT_FILE), { ...options, input });
  }
}
