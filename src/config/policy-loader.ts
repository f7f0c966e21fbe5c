import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isMap, isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, PortcullisError, type ConfigProblem } from '../core/errors.js';
import { suggestClosest } from './did-you-mean.js';
import { describe, policySchema, type PolicyConfig } from './schema.js';

/** The documented default policy shipped with portcullis, used when no file is given. */
export const DEFAULT_POLICY_FILE = fileURLToPath(new URL('../../config/portcullis.yaml', import.meta.url));

/** Reads and validates a policy file; throws ConfigError listing every problem with FILE:LINE:COL. */
export async function loadPolicyFile(file: string): Promise<PolicyConfig> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (error) {
    throw new PortcullisError('PC_ERR_CONFIG_READ', `cannot read policy file ${file}: ${(error as Error).message}`, { cause: error });
  }
  return parsePolicy(source, file);
}

/** Validates policy text; `file` is only used to locate problems. Throws ConfigError. */
export function parsePolicy(source: string, file: string): PolicyConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number, message: string): ConfigProblem => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col, message };
  };

  // YAML-level problems (bad indentation, duplicate keys, tabs) come first: the
  // document cannot be trusted to mean anything until they are fixed.
  const yamlProblems = [...doc.errors, ...doc.warnings].map((error) => at(error.pos[0], error.message));
  if (yamlProblems.length > 0) throw new ConfigError(yamlProblems);

  const data = doc.toJS() ?? {};
  const result = policySchema.safeParse(data, { reportInput: true });
  if (result.success) return result.data;

  const problems = withoutEchoes(result.error.issues).flatMap((issue) => describeIssue(issue, doc, at));
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  throw new ConfigError(problems);
}

/**
 * A misspelt key (`brust`) also leaves its real key (`burst`) missing; saying
 * both is noise, so "is required" is dropped where a did-you-mean points at it.
 */
function withoutEchoes(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const suggested = new Set<string>();
  for (const issue of issues) {
    if (issue.code !== 'unrecognized_keys') continue;
    const known = knownKeysAt(policySchema, issue.path as (string | number)[]);
    for (const key of issue.keys) {
      const suggestion = suggestClosest(key, known);
      if (suggestion) suggested.add(formatPath([...issue.path, suggestion]));
    }
  }
  return issues.filter((issue) => !(issue.code === 'invalid_type' && issue.input === undefined && suggested.has(formatPath(issue.path))));
}

type Locate = (offset: number, message: string) => ConfigProblem;

function describeIssue(issue: z.core.$ZodIssue, doc: Document, at: Locate): ConfigProblem[] {
  const path = issue.path as (string | number)[];
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(policySchema, path);
    return issue.keys.map((key) => {
      const suggestion = suggestClosest(key, known);
      const hint = suggestion ? `; did you mean "${suggestion}"?` : known.length > 0 ? `; expected one of: ${known.join(', ')}` : '';
      return at(keyOffset(doc, path, key), `${formatPath([...path, key])}: unknown key "${key}"${hint}`);
    });
  }
  let message = friendlyMessage(issue);
  if (issue.code === 'invalid_value' && typeof issue.input === 'string') {
    const suggestion = suggestClosest(issue.input, issue.values.map(String));
    if (suggestion) message += `; did you mean "${suggestion}"?`;
  }
  const where = path.length === 0 ? 'policy' : formatPath(path);
  return [at(valueOffset(doc, path), `${where}: ${message}`)];
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  array: 'a list',
  object: 'a mapping',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

/**
 * Zod's own wording ("Invalid input: expected array, received number") is for
 * programmers; where the schema did not give its own message, say it in the
 * policy's terms.
 */
function friendlyMessage(issue: z.core.$ZodIssue): string {
  const got = `got ${describe(issue.input)}`;
  if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')) {
    return issue.input === undefined ? 'is required' : `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}, ${got}`;
  }
  if (issue.code === 'too_small' && issue.message.startsWith('Too small')) return `must be at least ${String(issue.minimum)}, ${got}`;
  if (issue.code === 'too_big' && issue.message.startsWith('Too big')) return `must be at most ${String(issue.maximum)}, ${got}`;
  return issue.message;
}

/** `limits[1].per_ip.burst` — the way the README and messages name a key. */
export function formatPath(path: readonly (string | number | symbol)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/**
 * Places findings about a valid policy (each a path into it and a message,
 * e.g. a host pattern no request can reach) at FILE:LINE:COL of its source,
 * the way schema problems are placed.
 */
export function locateInPolicy(source: string, file: string, findings: readonly { readonly path: readonly (string | number)[]; readonly message: string }[]): ConfigProblem[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter });
  return findings.map(({ path, message }) => ({ file, ...lineCounter.linePos(valueOffset(doc, path)), message }));
}

/** Offset of the value at `path`, or of its nearest existing ancestor when it is missing. */
function valueOffset(doc: Document, path: readonly (string | number)[]): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return 0;
}

/** Offset of the key itself (not its value), so an unknown key points at its own name. */
function keyOffset(doc: Document, parentPath: readonly (string | number)[], key: string): number {
  const parent = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
  if (isMap(parent)) {
    const pair = parent.items.find((item) => isNode(item.key) && (item.key as { value?: unknown }).value === key);
    if (pair && isNode(pair.key) && pair.key.range) return pair.key.range[0];
  }
  return valueOffset(doc, parentPath);
}

/** The keys the schema allows at `path`, for did-you-mean; empty where it cannot tell. */
function knownKeysAt(schema: z.core.$ZodType, path: readonly (string | number)[]): string[] {
  let current: z.core.$ZodType | undefined = schema;
  for (const part of [...path, null]) {
    current = unwrap(current);
    if (current === undefined) return [];
    const def = current._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType };
    if (part === null) return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
    current = def.type === 'array' ? def.element : def.type === 'object' ? def.shape?.[String(part)] : undefined;
  }
  return [];
}

/** Sees through optional/default/transform wrappers to the shape underneath. */
function unwrap(schema: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  let current = schema;
  for (let guard = 0; current && guard < 16; guard++) {
    const def = current._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType; out?: z.core.$ZodType };
    if (def.innerType) current = def.innerType;
    // `schema.transform(f)` is pipe(schema, f); `z.preprocess(f, schema)` is pipe(f, schema): the shape is the side that is not the function.
    else if (def.type === 'pipe' && def.in) current = (def.in._zod.def as { type: string }).type === 'transform' ? def.out : def.in;
    else return current;
  }
  return current;
}
