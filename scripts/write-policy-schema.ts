/** Writes schema/portcullis.schema.json from the zod schema (`npm run schema`); a test fails when it is out of date. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { POLICY_SCHEMA_FILE, policyJsonSchemaText } from '../src/config/policy-json-schema.js';

const file = join(import.meta.dirname, '..', POLICY_SCHEMA_FILE);
writeFileSync(file, policyJsonSchemaText());
console.log(`wrote ${file}`);
