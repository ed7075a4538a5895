import { configDefaults, defineConfig } from 'vitest/config';

const shared = { testTimeout: 30_000, hookTimeout: 30_000, pool: 'forks' } as const;
const TIMING = 'test/**/*.timing.test.ts';

export default defineConfig({
  test: {
    // the root's globalSetup runs once for both projects
    globalSetup: ['test/global-setup.ts'],
    projects: [
      {
        test: {
          ...shared,
          name: 'core',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, TIMING],
        },
      },
      {
        // Wall-clock bounds (a deadline kept within N s) hold only without other test
        // files loading the machine: these files run after all the others, one at a time.
        test: {
          ...shared,
          name: 'core-timing',
          include: [TIMING],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
