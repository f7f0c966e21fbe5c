import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PortcullisError } from '../core/errors.js';

/** The environment variable that overrides `admin.token_file`. */
export const ADMIN_TOKEN_ENV = 'PORTCULLIS_ADMIN_TOKEN';

/** Shorter tokens can be guessed by anyone who can reach the admin port. */
const MIN_TOKEN_LENGTH = 16;

/**
 * Reads the admin token: PORTCULLIS_ADMIN_TOKEN if set, else the first line of
 * `tokenFile`, else null (state-changing calls are then refused). Throws
 * PC_ERR_ADMIN_TOKEN when the file cannot be read or the token is too short.
 */
export async function loadAdminToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const fromEnv = env[ADMIN_TOKEN_ENV];
  let token: string;
  let origin: string;
  if (fromEnv !== undefined && fromEnv !== '') {
    token = fromEnv.trim();
    origin = ADMIN_TOKEN_ENV;
  } else if (tokenFile !== undefined) {
    try {
      token = (await readFile(tokenFile, 'utf8')).split('\n')[0]?.trim() ?? '';
    } catch (error) {
      throw new PortcullisError('PC_ERR_ADMIN_TOKEN', `cannot read admin.token_file ${tokenFile}: ${(error as Error).message}`, { cause: error });
    }
    origin = `admin.token_file ${tokenFile}`;
  } else {
    return null;
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new PortcullisError(
      'PC_ERR_ADMIN_TOKEN',
      `the admin token from ${origin} has ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32)`,
    );
  }
  return token;
}

/** Checks an Authorization header against the token in constant time. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  // Hashing first makes the comparison constant-time whatever the lengths.
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(header.slice('Bearer '.length).trim()), digest(token));
}
