// A real OpenID provider for Portico's end-to-end tests: panva's certified `oidc-provider`
// (pinned in package.json), configured from a JSON file the test harness writes
// (tests/e2e/src/oidc.rs).
//
//   node provider.mjs CONFIG.json
//
// It listens on 127.0.0.1, port 0, over HTTPS when the config names a certificate and key (the
// gateway, like kube-apiserver, accepts only https issuers), and prints one line
// `issuer <URL>` on stdout once it serves. Then it reads commands on stdin, one a line:
//   rotate        a new RS256 signing key goes first in the JWKS (old keys stay published);
//                 prints `rotated <kid>`
//   rotate-only   the same, but the old keys are dropped from the JWKS
//   reload-clients  reads the clients from CONFIG.json again; prints `reloaded`
//   stop          exits (so does the end of stdin)
// No HTTP endpoint controls it: only the process that started it can.
//
// Sign-in and consent are oidc-provider's development interactions (plain HTML forms); the
// account is the login field, which must name a configured user (the password is not checked).
// ID tokens carry the user's `email`, `email_verified`, `name` and `groups` claims
// (`conformIdTokenClaims: false`).

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import readline from 'node:readline';

import Provider from 'oidc-provider';
// The package's own in-memory adapter, made once: every Provider built here (one per key
// rotation or client reload) shares its store. (No `exports` map: the deep import is allowed,
// and the version is pinned.)
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node provider.mjs CONFIG.json');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));

const users = new Map((config.users ?? []).map((u) => [u.id, u]));
// Cookie signing keys and the storage stay the same across key rotations (a rotation builds a
// new Provider, so sessions, grants and refresh tokens survive it).
const cookieKeys = [randomUUID(), randomUUID()];
const adapter = createMemoryAdapter();

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig',
  };
}

let keys = [newSigningKey()];

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    adapter,
    clients: config.clients,
    jwks: { keys },
    cookies: { keys: cookieKeys },
    async findAccount(_ctx, id) {
      const user = users.get(id);
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: user.email,
            email_verified: user.email_verified ?? true,
            name: user.name ?? id,
            preferred_username: id,
            groups: user.groups ?? [],
          };
        },
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      // Like Keycloak and Entra ID, groups come with every ID token; Dex's `groups` scope
      // is accepted too.
      groups: ['groups'],
    },
    conformIdTokenClaims: false,
    // Like Dex and Keycloak: a refresh token whenever the client may refresh (oidc-provider's
    // default also wants `prompt=consent` with `offline_access` in the code flow).
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
    },
    pkce: { required: () => true },
    ttl: {
      IdToken: config.idTokenTtl ?? 600,
      AccessToken: config.idTokenTtl ?? 600,
      RefreshToken: 24 * 3600,
      DeviceCode: 600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
    },
  });
  for (const event of ['server_error', 'grant.error', 'authorization.error', 'end_session.error']) {
    provider.on(event, (_ctx, err) => {
      console.error(`oidc-provider ${event}: ${err?.name}: ${err?.message} ${err?.error_description ?? ''} ${err?.error_detail ?? ''}`);
    });
  }
  return provider;
}

let handler = (_req, res) => { res.statusCode = 503; res.end(); };
const listener = (req, res) => handler(req, res);
const server = config.tls
  ? https.createServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, listener)
  : http.createServer(listener);

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  let provider = buildProvider(issuer);
  handler = provider.callback();
  process.stdout.write(`issuer ${issuer}\n`);

  const commands = readline.createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    const command = line.trim();
    if (command === 'rotate' || command === 'rotate-only') {
      const key = newSigningKey();
      keys = command === 'rotate' ? [key, ...keys] : [key];
      provider = buildProvider(issuer);
      handler = provider.callback();
      process.stdout.write(`rotated ${key.kid}\n`);
    } else if (command === 'reload-clients') {
      config.clients = JSON.parse(readFileSync(configPath, 'utf8')).clients;
      provider = buildProvider(issuer);
      handler = provider.callback();
      process.stdout.write('reloaded\n');
    } else if (command === 'stop') {
      process.exit(0);
    } else if (command) {
      console.error(`unknown command: ${command}`);
    }
  });
  commands.on('close', () => process.exit(0));
});
