// vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One tapedeck for the whole run, started before the first test file and stopped after.
    globalSetup: ['./tapedeck-setup.ts'],
    // The SDK warns about the model name of the example cassettes on every call.
    onConsoleLog: (log) => !log.startsWith("The model 'claude-sonnet-4-5' is deprecated"),
  },
});
