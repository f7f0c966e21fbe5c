import { z } from 'zod';
import { ALSO_A_STRING, policySchema } from './schema.js';

/** Where the schema is published in the package, for the `# yaml-language-server: $schema=` line. */
export const POLICY_SCHEMA_FILE = 'schema/portcullis.schema.json';

/**
 * The policy's JSON Schema, generated from the zod schema the loader uses,
 * so editors (the YAML language server) check and complete a policy as it is
 * written. The input side: durations, rates and sizes are strings with their
 * patterns, as written in the file. Cross-key rules (unique names, sites)
 * cannot be said in JSON Schema: `portcullis check` still has the last word.
 */
export function policyJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(policySchema, {
    io: 'input',
    unrepresentable: 'any',
    target: 'draft-2020-12',
    // `listen: "0.0.0.0:8000"` and a listener written as `HOST:PORT`: the string form the loader accepts too.
    override: (ctx) => {
      const json = ctx.jsonSchema as Record<string, unknown>;
      const description = json[ALSO_A_STRING];
      if (typeof description !== 'string') return;
      delete json[ALSO_A_STRING];
      const objectForm = { ...json };
      for (const key of Object.keys(json)) delete json[key];
      json.anyOf = [{ type: 'string', description }, objectForm];
    },
  }) as Record<string, unknown>;
  return {
    ...generated,
    title: 'portcullis policy',
    description: 'A portcullis policy file (portcullis.yaml). Validate fully with `portcullis check FILE`.',
  };
}

/** The schema as the file in the package holds it. */
export function policyJsonSchemaText(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}
