// The real tapedeck server, and the stand-in upstream API of the Python suite
// (tests/fake_upstream.py), each started as a subprocess on a free port of 127.0.0.1.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

import { ROOT } from './table.mjs';

// The project's virtualenv (`make .venv/.installed`), unless the environment names others.
const TAPEDECK = process.env.TAPEDECK_BIN ?? `${ROOT}.venv/bin/tapedeck`;
const PYTHON = process.env.TAPEDECK_PYTHON ?? `${ROOT}.venv/bin/python`;
const START_TIMEOUT_MS = 20_000;

/** Start `command`; resolve with its process and the first line of `stream` matching `pattern`. */
function startProcess(command, args, stream, pattern, what) {
  if (!existsSync(command)) {
    throw new Error(`${command} not found: run 'make .venv/.installed' in ${ROOT} (or set TAPEDECK_BIN and TAPEDECK_PYTHON)`);
  }
  const child = spawn(command, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const seen = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not start in ${START_TIMEOUT_MS} ms:\n${seen.join('\n')}`));
    }, START_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with status ${code}:\n${seen.join('\n')}`));
    });
    for (const output of [child.stdout, child.stderr]) {
      // Keep reading everything, so the pipe never fills; keep the last lines for errors.
      createInterface({ input: output }).on('line', (line) => {
        seen.push(line);
        if (seen.length > 50) seen.shift();
        const found = output === child[stream] && line.match(pattern);
        if (found) {
          clearTimeout(timer);
          resolve({ child, url: found[1] });
        }
      });
    }
  });
}

/** Stop a child started here: SIGTERM, then SIGKILL if it is still there after 5 s. */
function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.removeAllListeners('exit');
    child.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function waitForHealth(baseURL) {
  for (let tries = 0; ; tries++) {
    try {
      const response = await fetch(`${baseURL}/_tapedeck/health`);
      if (response.ok) return await response.json();
    } catch (error) {
      if (tries > 100) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * `tapedeck serve --port 0 --timing instant ...`: resolves once it answers its health check.
 * Returns `{ baseURL, health, stop }`.
 */
export async function startTapedeck({ cassettes, mode = 'none', upstream, timing = 'instant', recordErrors = false, extra = [] }) {
  const args = ['serve', '--port', '0', '--mode', mode, '--timing', timing, '--cassettes', cassettes, ...extra];
  if (upstream) args.push('--upstream', upstream);
  if (recordErrors) args.push('--record-errors', 'true');
  // The start line: "10:21:27 tapedeck none mode on http://127.0.0.1:PORT, 6 cassettes ..."
  const { child, url } = await startProcess(TAPEDECK, args, 'stderr', / mode on (http:\/\/[^\s,]+)/, 'tapedeck');
  const health = await waitForHealth(url);
  return { baseURL: url, health, stop: () => stopProcess(child) };
}

/** The platforms' stand-in endpoints (tests/platform_standins.py), checking credentials. */
export async function startPlatformStandIn() {
  const { child, url } = await startProcess(
    PYTHON, ['tests/platform_standins.py'], 'stdout', /^platform stand-in on (http:\/\/\S+)$/, 'the platform stand-in',
  );
  return { baseURL: url, stop: () => stopProcess(child) };
}

/** The Python suite's stand-in upstream API; it exits when its standard input closes. */
export async function startFakeUpstream() {
  const { child, url } = await startProcess(
    PYTHON, ['tests/fake_upstream.py'], 'stdout', /^fake upstream on (http:\/\/\S+)$/, 'the fake upstream',
  );
  return { baseURL: url, stop: () => stopProcess(child) };
}

/**
 * A forwarding proxy on a free port of 127.0.0.1 whose upstream can be changed between
 * requests (`to(url)`): one recording tapedeck in front of one stand-in after another. It passes
 * everything on as it comes, and a cut on either side cuts the other.
 */
export async function startRelay() {
  const { createServer, request } = await import('node:http');
  let target = null;
  const server = createServer((incoming, outgoing) => {
    const upstream = request(new URL(incoming.url, target), { method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode, answer.statusMessage, answer.rawHeaders);
      answer.pipe(outgoing);
      answer.on('close', () => {
        if (!answer.complete) outgoing.destroy(); // the stand-in dropped the connection mid-body
      });
    });
    upstream.on('error', () => outgoing.destroy());
    outgoing.on('close', () => {
      if (!outgoing.writableFinished) upstream.destroy(); // the client left
    });
    incoming.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseURL: `http://127.0.0.1:${server.address().port}`,
    to: (url) => { target = url; },
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
