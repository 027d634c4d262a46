// vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One tapedeck for the whole run, started before the first test file and stopped after.
    globalSetup: ['./tapedeck-setup.ts'],
  },
});
