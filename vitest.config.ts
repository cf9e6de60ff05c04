import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // No unit test asserts time; the default 5 s cut the brute-force conformance case at load average 15.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // The integration tests share one Redis and one Kafka broker; running files one at a time keeps them honest.
          fileParallelism: false,
        },
      },
    ],
  },
});
