import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PortcullisError } from '../core/errors.js';

/** parseArgs with strict checking, turning its errors into PC_ERR_USAGE with the command's help hint. */
export function parseCommandArgs<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs({ ...config, strict: true }) as ReturnType<typeof parseArgs<T>>;
  } catch (error) {
    throw new PortcullisError('PC_ERR_USAGE', `${(error as Error).message}\nRun 'portcullis ${command} --help' for usage.`, { cause: error });
  }
}
