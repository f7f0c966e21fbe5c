import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { POLICY_SCHEMA_FILE, policyJsonSchema, policyJsonSchemaText } from '../../../src/config/policy-json-schema.js';

const ROOT = join(import.meta.dirname, '../../..');
const validate = new Ajv2020({ strict: false, allErrors: true }).compile(JSON.parse(readFileSync(join(ROOT, POLICY_SCHEMA_FILE), 'utf8')));

/** The README's YAML blocks that are whole policies (they start with a top-level key the schema knows). */
function readmePolicies(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] as string).filter((block) => /^(sites|limits|block|listen|escalation|store|tls):/m.test(block));
}

describe('the policy JSON Schema for editors', () => {
  it('is the file in the package, as generated from the zod schema (run `npm run schema` after changing the schema)', () => {
    expect(readFileSync(join(ROOT, POLICY_SCHEMA_FILE), 'utf8')).toBe(policyJsonSchemaText());
  });

  it('accepts the shipped policy and the README\'s policies', () => {
    const policies = [readFileSync(join(ROOT, 'config/portcullis.yaml'), 'utf8'), ...readmePolicies()];
    expect(policies.length).toBeGreaterThan(3);
    for (const text of policies) {
      const valid = validate(parse(text) ?? {});
      expect(valid, `${JSON.stringify(validate.errors)}\n${text.slice(0, 300)}`).toBe(true);
    }
  });

  it('flags what the loader refuses as you type: an unknown key, a rate in words, a bad duration, a wrong enum', () => {
    for (const bad of [
      { limts: [] },
      { limits: [{ name: 'x', methods: ['GET'], per_ip: { rate: '20 per second', burst: 5 } }] },
      { escalation: { ban: '10 minutes' } },
      { store: { type: 'postgres' } },
      { buffering: { memory_total: '1 gig' } },
    ]) {
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
    }
    expect(validate({ listen: '0.0.0.0:80', escalation: { ban: '1h30m' }, limits: [{ name: 'x', methods: ['GET'], per_ip: { rate: '300/min', burst: 5 } }] })).toBe(true);
  });

  it('is draft 2020-12 and names itself', () => {
    expect(policyJsonSchema()).toMatchObject({ $schema: 'https://json-schema.org/draft/2020-12/schema', title: 'portcullis policy' });
  });
});
