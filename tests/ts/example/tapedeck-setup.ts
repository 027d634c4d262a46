// tapedeck-setup.ts
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    tapedeckURL: string;
  }
}

const env = process.env;

export default async function setup(project: TestProject) {
  const mode = env.TAPEDECK_MODE ?? 'none'; // none (replay) in CI; once or new_episodes to record
  const args = ['serve', '--port', '0', '--timing', 'instant', '--mode', mode];
  args.push('--cassettes', env.TAPEDECK_CASSETTES ?? 'tests/cassettes');
  if (mode !== 'none' && mode !== 'replay' && env.ANTHROPIC_API_KEY) {
    // Recording: tapedeck sends your key upstream; the tests keep their dummy one.
    args.push('--upstream-api-key-env', 'ANTHROPIC_API_KEY');
  }
  const tapedeck = spawn(env.TAPEDECK_BIN ?? 'tapedeck', args, {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await once(tapedeck, 'spawn').catch((error) => {
    throw new Error(`could not start tapedeck (install it: see its README's Install; or set TAPEDECK_BIN): ${error}`);
  });

  // "10:21:27 tapedeck none mode on http://127.0.0.1:PORT, 7 cassettes from ..."
  const lines = createInterface({ input: tapedeck.stderr });
  const said: string[] = [];
  let baseURL: string | undefined;
  for await (const line of lines) {
    said.push(line);
    baseURL = line.match(/ mode on (http:\/\/[^\s,]+)/)?.[1];
    if (baseURL) break;
  }
  if (!baseURL) throw new Error(`tapedeck did not start:\n${said.join('\n')}`);
  tapedeck.stderr.resume(); // keep reading its request lines, so the pipe never fills

  for (let tries = 0; !(await fetch(`${baseURL}/_tapedeck/health`).then((r) => r.ok)); tries++) {
    if (tries === 100) throw new Error('tapedeck does not answer /_tapedeck/health');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  project.provide('tapedeckURL', baseURL);

  return async () => {
    tapedeck.kill('SIGTERM');
    await once(tapedeck, 'exit');
  };
}
