import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real Apache/proxy processes; a generous timeout
    // covers a busy 2-core CI machine without any test relying on timing.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: more workers only make the servers under test fight for CPU.
    maxWorkers: 2,
  },
});
