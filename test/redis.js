'use strict';
// A real redis-server for the fleet tests: its own process on a free loopback port, no persistence,
// stopped after the tests. Debian's redis-server package; a missing binary fails the tests loudly.
const { spawn, spawnSync } = require('node:child_process');
const net = require('node:net');

const BINARY = 'redis-server';

/** A port nothing listens on right now (the kernel's pick for port 0). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function checkInstalled() {
  const r = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`${BINARY} is needed by the fleet tests and was not found: apt-get install redis-server`);
  }
}

/**
 * Starts redis-server; resolves to { url, port, stop() } once it accepts connections.
 * With { password }: the server requires it (requirepass) and url carries it (redis://:PASSWORD@...).
 * With { tls: { cert, key, ca } } (PEM files): TLS only, url is rediss://.
 * Retries on another port when the one picked was taken in between.
 */
async function startRedis({ password, tls } = {}) {
  checkInstalled();
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(port, password, tls);
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/.test(err.message)) throw err;
    }
  }
}

function launch(port, password, tls) {
  return new Promise((resolve, reject) => {
    const listen = tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key,
        '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no']
      : ['--port', String(port)];
    const args = [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', require('node:os').tmpdir(), '--loglevel', 'notice', ...(password ? ['--requirepass', password] : [])];
    const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let ready = false;
    const exited = new Promise((done) => child.once('exit', done));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    };
    const onData = (d) => {
      log += d;
      if (!ready && /Ready to accept connections/.test(log)) {
        ready = true;
        const auth = password ? `:${encodeURIComponent(password)}@` : '';
        resolve({ port, url: `${tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`, stop, log: () => log });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (!ready) reject(new Error(`redis-server exited (${signal ?? code}) before it was ready:\n${log}`));
    });
  });
}

module.exports = { startRedis, freePort };
