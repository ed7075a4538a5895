import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // packing four packages and an npm install from the registry happen in beforeAll
    hookTimeout: 90_000,
    pool: 'forks',
  },
});
