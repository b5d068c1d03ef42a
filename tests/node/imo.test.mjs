// imo's component in a second host: Node.js, through jco and preview2-shim.
// pull, vet and push run against real docker-registry instances; results are
// checked with skopeo and by hashing, as in the Rust tests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync, mkdirSync, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const imoBin = process.env.IMO_BIN ?? join(root, 'target', 'release', 'imo');
const work = mkdtempSync(join(tmpdir(), 'imo-node-'));
const registries = [];
let api;
let events;

const sha256 = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRegistry(name) {
  const port = await freePort();
  const config = join(work, `${name}.yml`);
  writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, name)}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  registries.push(child);
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`);
      if (r.ok) return `127.0.0.1:${port}`;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry ${name} did not start`);
}

// A tar with one file, and an OCI layout holding v1 = [os, app1], v2 = [os, app2].
function tarOf(name, data) {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  header.write('00000000000\0', 136);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, pad, Buffer.alloc(1024)]);
}

function makeLayout() {
  const dir = join(work, 'layout');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (bytes) => {
    const d = sha256(bytes);
    writeFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), bytes);
    return { digest: d, size: bytes.length };
  };
  const rawOs = tarOf('etc/os-release', Buffer.from('ID=node-test\n'.repeat(200)));
  const os = put(gzipSync(rawOs));
  const images = {};
  const entries = [];
  for (const v of ['v1', 'v2']) {
    const rawApp = tarOf('app/version', Buffer.from(v));
    const app = put(gzipSync(rawApp));
    const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(rawOs), sha256(rawApp)] } })));
    const layer = (d) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...d });
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [layer(os), layer(app)],
    }));
    const m = put(manifest);
    images[v] = { digest: m.digest, os: os.digest, app: app.digest, config: config.digest };
    entries.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': v } });
  }
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: entries }));
  return { dir, images };
}

const skopeo = (...args) => execFileSync('skopeo', ['--insecure-policy', ...args], { encoding: 'buffer' });

let src, dest, images;
const options = (extra = {}) => ({
  platform: undefined,
  allPlatforms: false,
  hostPlatform: { os: 'linux', architecture: 'amd64', variant: undefined },
  tlsVerify: true,
  retryTimes: 2,
  jobs: 4,
  split: 0n,
  attachments: true,
  attachmentTypes: [],
  delta: false,
  ...extra,
});
const pushOptions = { tlsVerify: true, mountFrom: [], chunkSize: 1n << 25n, verify: true, retryTimes: 2, jobs: 4, attachments: true };

before(async () => {
  // The exact component the imo binary embeds, transpiled for Node.
  const wasm = join(work, 'imo.wasm');
  execFileSync(imoBin, ['component', '-o', wasm], { stdio: 'ignore' });
  // Inside this package, so the shim resolves from its node_modules.
  const out = join(here, 'out');
  execFileSync(join(here, 'node_modules', '.bin', 'jco'), ['transpile', wasm, '-o', out, '--map', 'imo:incremental/*=./host.js#*', '--quiet'], { stdio: 'inherit' });
  copyFileSync(join(here, 'host.js'), join(out, 'host.js'));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}');
  // Grant the component one directory, as the imo binary does.
  const { _setPreopens } = await import('@bytecodealliance/preview2-shim/filesystem');
  mkdirSync(join(work, 'files'));
  _setPreopens({ [join(work, 'files')]: join(work, 'files') });
  ({ api } = await import(join(out, 'imo.js')));
  ({ events } = await import(join(out, 'host.js')));

  src = await startRegistry('src');
  dest = await startRegistry('dest');
  const layout = makeLayout();
  images = layout.images;
  for (const v of ['v1', 'v2']) {
    skopeo('copy', '-q', '--dest-tls-verify=false', `oci:${layout.dir}:${v}`, `docker://${src}/app:${v}`);
  }
});

after(() => {
  for (const r of registries) r.kill();
});

test('pull, vet and push run in Node with the same component', () => {
  const files = join(work, 'files');
  const full = join(files, 'v1.tar');
  const r = api.pull('scratch', `${src}/app:v1`, full, options());
  assert.equal(r.digest, images.v1.digest);
  assert.ok(existsSync(full));
  assert.ok(events.some((e) => e.tag === 'blob-finished'), 'progress reached the JS host');
  const raw = skopeo('inspect', '--raw', `oci-archive:${full}`);
  assert.equal(sha256(raw), images.v1.digest, 'skopeo reads the archive');

  const pushed = api.push(full, `${dest}/app:v1`, pushOptions);
  assert.equal(pushed.uploaded, 3);

  const diff = join(files, 'diff.tar');
  const d = api.pull(`${src}/app:v1`, `${src}/app:v2`, diff, options());
  assert.equal(d.layersLeftOut, 1);
  const inspected = api.inspect(diff);
  assert.deepEqual(inspected.missing.map((b) => b.digest), [images.v2.os]);

  const vet = api.vet(diff, `${dest}/app:v2`, pushOptions);
  assert.equal(vet.missing.length, 0);
  const p = api.push(diff, `${dest}/app:v2`, pushOptions);
  assert.equal(p.skipped, 1);
  const atDest = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${dest}/app:v2`);
  assert.equal(sha256(atDest), images.v2.digest, 'v2 resolves at the destination with its original digest');
});

test('errors arrive as the typed variant', () => {
  const files = join(work, 'files');
  assert.throws(() => api.pull('scratch', 'Not A Reference', join(files, 'x.tar'), options()), (e) => e.payload?.tag === 'invalid-reference');
  assert.throws(() => api.pull('scratch', `${src}/app:missing`, join(files, 'x.tar'), options()), (e) => e.payload?.tag === 'not-found' && e.payload.val.includes('app:missing'));
  assert.equal(existsSync(join(files, 'x.tar')), false);
});

test('the sandbox: nothing outside the granted directory', () => {
  const outside = join(work, 'outside.tar');
  assert.throws(() => api.pull('scratch', `${src}/app:v1`, outside, options()), (e) => e.payload?.tag === 'io');
  assert.throws(() => api.pull('scratch', `${src}/app:v1`, join(work, 'files', '..', 'escape.tar'), options()), (e) => e.payload?.tag === 'io');
  assert.equal(existsSync(outside), false);
  assert.equal(existsSync(join(work, 'escape.tar')), false);
  assert.throws(() => api.inspect('/etc/passwd'), (e) => e.payload?.tag === 'io' || e.payload?.tag === 'corrupt-archive');
  assert.ok(!readFileSync(join(here, 'host.js'), 'utf8').includes('process.env'), 'the JS host hands over no environment');
});
