// The Files API through tapedeck with the official TypeScript SDK (docs/files.md): upload
// (multipart/form-data), list, metadata, download (bytes), a message citing the file —
// recorded in mode `once` through the Python suite's stand-in Files API
// (tests/files_upstream.py), then replayed in `none` with the stand-in gone: the same ids,
// the same bytes. The Python twin is tests/test_files_api.py.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, it } from 'node:test';

import { SDK_PACKAGE } from './sdk.mjs';
import { startTapedeck } from './servers.mjs';
import { ROOT } from './table.mjs';

// The SDK the suite runs with: @anthropic-ai/sdk, or the oldest supported (`npm run test:floor`).
const { default: Anthropic, toFile } = await import(SDK_PACKAGE);
const PYTHON = process.env.TAPEDECK_PYTHON ?? `${ROOT}.venv/bin/python`;
const BETA = 'files-api-2025-04-14';
const CASSETTE = 'files/ts-round-trip';
// Not UTF-8: a NUL, high bytes, a CR LF.
const DOCUMENT = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x0a, 0xe2, 0xe3, 0xcf, 0xd3, 0x00, 0x0d, 0x0a, 0xff, 0x41]);

/** tests/files_upstream.py on a free port; resolves with its URL and a way to stop it. */
function startFilesUpstream() {
  const child = spawn(PYTHON, ['tests/files_upstream.py'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`tests/files_upstream.py exited with status ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const found = line.match(/^files upstream on (http:\/\/\S+)$/);
      if (found) {
        child.removeAllListeners('exit');
        resolve({ baseURL: found[1], stop: () => new Promise((done) => { child.on('exit', done); child.stdin.end(); }) });
      }
    });
  });
}

async function roundTrip(baseURL) {
  const client = new Anthropic({
    baseURL, apiKey: 'test-key', maxRetries: 0, defaultHeaders: { 'x-tapedeck-cassette': CASSETTE },
  });
  const uploaded = await client.beta.files.upload({
    file: await toFile(DOCUMENT, 'report.pdf', { type: 'application/pdf' }), betas: [BETA],
  });
  const listed = await client.beta.files.list({ betas: [BETA] });
  const metadata = await client.beta.files.retrieveMetadata(uploaded.id, { betas: [BETA] });
  const download = await client.beta.files.download(uploaded.id, { betas: [BETA] });
  const content = Buffer.from(await download.arrayBuffer());
  const message = await client.beta.messages.create({
    model: 'claude-sonnet-4-5',
    max_tokens: 64,
    betas: [BETA],
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'What does it say?' },
        { type: 'document', source: { type: 'file', file_id: uploaded.id } },
      ],
    }],
  });
  return {
    id: uploaded.id,
    uploaded: JSON.parse(JSON.stringify(uploaded)),
    listed: listed.data.map((f) => f.id),
    metadata: JSON.parse(JSON.stringify(metadata)),
    content: content.toString('hex'),
    contentType: download.headers.get('content-type'),
    message: message.content[0].text,
  };
}

let directory;
let recorded;
let replayer;

before(async () => {
  directory = mkdtempSync(join(tmpdir(), 'tapedeck-files-'));
  const upstream = await startFilesUpstream();
  try {
    const recorder = await startTapedeck({ cassettes: directory, mode: 'once', upstream: upstream.baseURL });
    try {
      recorded = await roundTrip(recorder.baseURL);
    } finally {
      await recorder.stop();
    }
  } finally {
    await upstream.stop(); // replay must not need it
  }
  replayer = await startTapedeck({ cassettes: directory });
});

after(async () => {
  await replayer?.stop();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

it('records the round trip through the stand-in', () => {
  assert.equal(recorded.id, 'file_up_0001');
  assert.deepEqual(recorded.listed, ['file_up_0001']);
  assert.equal(recorded.metadata.size_bytes, DOCUMENT.length);
  assert.equal(recorded.content, DOCUMENT.toString('hex'));
  assert.equal(recorded.contentType, 'application/pdf');
  assert.equal(recorded.message, `file_up_0001 holds ${DOCUMENT.length} bytes`);
});

it('keeps the bytes beside the cassette, named by their sha256', () => {
  const digest = createHash('sha256').update(DOCUMENT).digest('hex');
  const folder = join(directory, `${CASSETTE}.files`);
  assert.deepEqual(readdirSync(folder), [digest]);
  assert.deepEqual(readFileSync(join(folder, digest)), DOCUMENT);
  const yaml = readFileSync(join(directory, `${CASSETTE}.yaml`), 'utf8');
  assert.match(yaml, new RegExp(`binary: \\{sha256: ${digest}, size: ${DOCUMENT.length}\\}`));
  assert.match(yaml, /filename: report\.pdf/);
});

it('replays it with the stand-in gone: the recorded ids, the same bytes', async () => {
  assert.deepEqual(await roundTrip(replayer.baseURL), recorded);
});
