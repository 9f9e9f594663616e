import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WardError } from '@ward/protocol';
import { type Command, Option } from 'commander';
import { apiJson } from '../api-client.js';
import { credentialsPath, deleteCredentials, loadCredentials, saveCredentials } from '../credentials.js';
import {
  client,
  DEFAULT_SCOPE,
  describeTokens,
  discoverIdp,
  type IdentityProvider,
  pickProvider,
  revokeAtIdp,
} from '../oidc.js';
import { print } from '../output.js';

type Tokens = client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;

interface LoginOptions {
  gateway?: string;
  device?: boolean;
  browser?: boolean;
  open: boolean;
  issuer?: string;
  scope?: string;
  timeout: string;
}

/**
 * The browser flow is the default where a browser can open on this machine: macOS, Windows,
 * or a graphical session (DISPLAY / WAYLAND_DISPLAY) that is not reached over SSH. Elsewhere
 * (a server, a container, an SSH session) the device flow is, since the user approves on
 * another device.
 */
export function browserLikely(env: NodeJS.ProcessEnv = process.env, platform = process.platform): boolean {
  if (env['SSH_CONNECTION'] || env['SSH_TTY']) return false;
  return platform === 'darwin' || platform === 'win32' || Boolean(env['DISPLAY'] || env['WAYLAND_DISPLAY']);
}

function openInBrowser(url: string): void {
  const [cmd, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args as string[], { detached: true, stdio: 'ignore' });
    child.on('error', () => {}); // no opener: the URL is printed anyway
    child.unref();
  } catch {
    // same
  }
}

function page(title: string, text: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>ward: ${esc(title)}</title></head><body style="font-family:sans-serif;margin:3em"><h1>${esc(title)}</h1><p>${esc(text)}</p></body></html>`;
}

function idpError(err: unknown): WardError {
  if (err instanceof WardError) return err;
  const oauth = (err as { error?: unknown }).error;
  if (oauth === 'access_denied')
    return new WardError(
      'ERR_CLI_LOGIN_DENIED',
      'permission_denied',
      'the sign-in was denied at the identity provider',
      {
        cause: err,
      },
    );
  if (oauth === 'expired_token')
    return new WardError(
      'ERR_CLI_LOGIN_TIMEOUT',
      'deadline_exceeded',
      'the device code expired before the sign-in was approved: run `ward login` again',
      { cause: err },
    );
  const { name, code } = err as { name?: unknown; code?: unknown };
  if (name === 'TimeoutError' || name === 'AbortError' || code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT')
    return new WardError(
      'ERR_CLI_LOGIN_TIMEOUT',
      'deadline_exceeded',
      'gave up waiting for the sign-in: run `ward login` again',
      {
        cause: err,
      },
    );
  const detail = typeof oauth === 'string' ? oauth : ((err as Error).message ?? String(err));
  return new WardError('ERR_CLI_LOGIN_FAILED', 'unauthenticated', `the sign-in failed (${detail})`, { cause: err });
}

/**
 * Authorization code with PKCE (S256) through a one-shot listener on 127.0.0.1, port chosen
 * by the OS (RFC 8252 §7.3); state and nonce are checked by openid-client.
 */
async function browserLogin(
  config: client.Configuration,
  params: { scope: string; resource: string },
  o: { open: boolean; timeoutMs: number },
): Promise<Tokens> {
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: params.scope,
    resource: params.resource,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    prompt: 'consent',
  });
  print(`Open this URL in a browser to sign in:\n  ${url.href}`);
  if (o.open) openInBrowser(url.href);
  print(`Waiting for the identity provider to send you back to ${redirectUri} ...`);
  try {
    return await new Promise<Tokens>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new WardError(
              'ERR_CLI_LOGIN_TIMEOUT',
              'deadline_exceeded',
              `no answer from the browser within ${Math.round(o.timeoutMs / 1000)} s: run \`ward login\` again`,
            ),
          ),
        o.timeoutMs,
      );
      const finish = (res: ServerResponse, status: number, title: string, text: string) => {
        res.writeHead(status, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'close',
        });
        res.end(page(title, text));
      };
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const current = new URL(req.url ?? '/', redirectUri);
        if (req.method !== 'GET' || current.pathname !== '/callback') {
          finish(res, 404, 'Not found', 'This is ward login’s one-shot sign-in listener.');
          return;
        }
        // A callback without our state is not the answer to our request (a stale tab, or a
        // forged link): refuse it and keep waiting for the real one.
        if (current.searchParams.get('state') !== state) {
          finish(res, 400, 'Sign-in not accepted', 'This answer does not belong to the running `ward login`.');
          return;
        }
        client
          .authorizationCodeGrant(
            config,
            current,
            { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
            { resource: params.resource },
          )
          .then(
            (tokens) => {
              clearTimeout(timer);
              finish(res, 200, 'Signed in to ward', 'You can close this tab and go back to the terminal.');
              resolve(tokens);
            },
            (err: unknown) => {
              clearTimeout(timer);
              const error = idpError(err);
              finish(res, 400, 'Sign-in failed', `${error.message}. Go back to the terminal.`);
              reject(error);
            },
          );
      });
    });
  } finally {
    // Let the last page finish writing (it closes its connection), then drop whatever the
    // browser still holds open (preconnects) so the CLI can exit.
    server.close();
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  }
}

/** Device authorization grant (RFC 8628); openid-client polls at the server's interval and slows down on `slow_down`. */
async function deviceLogin(
  config: client.Configuration,
  params: { scope: string; resource: string },
  o: { timeoutMs: number },
): Promise<Tokens> {
  if (!config.serverMetadata().device_authorization_endpoint)
    throw new WardError(
      'ERR_CLI_LOGIN_FAILED',
      'unauthenticated',
      'this identity provider has no device authorization endpoint: use `ward login --browser`',
    );
  let device: client.DeviceAuthorizationResponse;
  try {
    device = await client.initiateDeviceAuthorization(config, { scope: params.scope, resource: params.resource });
  } catch (err) {
    throw idpError(err);
  }
  const lines = [`To sign in, open ${device.verification_uri} on any device and enter the code ${device.user_code}`];
  if (device.verification_uri_complete) lines.push(`  or open ${device.verification_uri_complete}`);
  lines.push(`Waiting for you to approve (the code expires in ${Math.round(device.expires_in / 60)} min) ...`);
  print(lines.join('\n'));
  try {
    return await client.pollDeviceAuthorizationGrant(
      config,
      device,
      { resource: params.resource },
      { signal: AbortSignal.timeout(Math.min(o.timeoutMs, device.expires_in * 1000)) },
    );
  } catch (err) {
    throw idpError(err);
  }
}

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description(
      "Sign in with your organisation's identity provider (OIDC) and save the token\n" +
        'for every other ward command. The gateway names the IdP\n' +
        '(GET /api/v1/identity/providers).\n' +
        '  --browser  authorization code + PKCE: open the printed URL; the IdP sends\n' +
        '             the browser back to a one-shot listener on 127.0.0.1. Default\n' +
        '             on a desktop (macOS, Windows, DISPLAY/WAYLAND_DISPLAY set),\n' +
        '             unless over SSH.\n' +
        '  --device   device authorization: open the printed URL on any device and\n' +
        '             enter the code. Default elsewhere (servers, containers, SSH).\n' +
        'The token cache is $WARD_CONFIG_DIR/credentials.json (default\n' +
        '~/.config/ward/credentials.json, mode 0600): access token, refresh token,\n' +
        'expiry, issuer and gateway. Commands refresh the access token by themselves\n' +
        'a minute before it expires. Examples:\n' +
        '  ward login --gateway https://ward.example.com\n' +
        '  ward login --device --issuer https://idp.example.com \\\n' +
        '             --gateway https://ward.example.com',
    )
    .option('--gateway <url>', 'gateway URL (default: WARD_GATEWAY, else the gateway of the last sign-in)')
    .addOption(new Option('--device', 'use the device authorization flow').conflicts('browser'))
    .addOption(new Option('--browser', 'use the browser flow (authorization code + PKCE on loopback)'))
    .option('--no-open', 'print the sign-in URL but do not open a browser')
    .option('--issuer <url>', 'the IdP to use when the gateway accepts several (its issuer URL)')
    .option('--scope <scopes>', `scopes to request besides "${DEFAULT_SCOPE}" (space-separated)`)
    .option('--timeout <seconds>', 'how long to wait for the sign-in', '300')
    .action(async (opts: LoginOptions) => {
      const gateway = (opts.gateway ?? process.env['WARD_GATEWAY'] ?? loadCredentials()?.gateway)?.replace(/\/+$/, '');
      if (!gateway) throw new Error('which gateway? pass --gateway URL (or set WARD_GATEWAY)');
      const timeoutSec = Number(opts.timeout);
      if (!Number.isFinite(timeoutSec) || timeoutSec <= 0)
        throw new Error('--timeout must be a number of seconds above 0');
      const provider: IdentityProvider = await pickProvider(gateway, opts.issuer);
      const config = await discoverIdp(provider.issuer, provider.clientId);
      const scope = [
        ...new Set([...DEFAULT_SCOPE.split(' '), ...(provider.scopes ?? []), ...(opts.scope ?? '').split(/\s+/)]),
      ]
        .filter(Boolean)
        .join(' ');
      const params = { scope, resource: provider.audience };
      const useDevice = opts.device ?? (opts.browser ? false : !browserLikely());
      const tokens = useDevice
        ? await deviceLogin(config, params, { timeoutMs: timeoutSec * 1000 })
        : await browserLogin(config, params, { open: opts.open, timeoutMs: timeoutSec * 1000 });
      const described = describeTokens(tokens);
      const path = saveCredentials({
        gateway,
        token: described.token,
        subject: described.subject ?? 'unknown',
        expiresAt: described.expiresAt,
        issuer: config.serverMetadata().issuer,
        clientId: provider.clientId,
        resource: provider.audience,
        ...(described.refreshToken ? { refreshToken: described.refreshToken } : {}),
      });
      print(
        `Signed in as ${described.subject ?? 'unknown'} at ${provider.issuer}. Token cache: ${path}` +
          (described.refreshToken
            ? ' (refreshed automatically)'
            : ' (no refresh token: run `ward login` again when it expires)'),
      );
      try {
        const who = await apiJson<{ subject: string; roles: string[]; groups?: string[] }>(
          { gateway, token: described.token },
          '/api/v1/whoami',
        );
        print(
          `The gateway ${gateway} knows you as ${who.subject} (groups: ${who.groups?.join(', ') || '-'}; roles: ${who.roles?.join(', ') || '-'}).`,
        );
      } catch (err) {
        const e = err as { code?: string; message?: string };
        process.stderr.write(
          `ward: warning: the gateway at ${gateway} did not accept the new token: ${e.code ?? ''}: ${e.message ?? String(err)}\n`,
        );
      }
    });

  program
    .command('logout')
    .description(
      'Sign out: revoke the refresh token at the identity provider (when it has\n' +
        'a revocation endpoint) and delete the token cache. Safe to run when not\n' +
        'signed in. Example:\n' +
        '  ward logout',
    )
    .action(async () => {
      const saved = loadCredentials();
      if (!saved) {
        deleteCredentials(); // an unreadable cache goes too
        print(`Not signed in (no token cache at ${credentialsPath()}).`);
        return;
      }
      if (saved.refreshToken) {
        try {
          if (await revokeAtIdp(saved)) print(`Revoked the refresh token at ${saved.issuer}.`);
          else print(`${saved.issuer} has no revocation endpoint: the refresh token lapses by itself.`);
        } catch (err) {
          process.stderr.write(
            `ward: warning: could not revoke the refresh token at ${saved.issuer} (${(err as Error).message}); it lapses by itself\n`,
          );
        }
      }
      deleteCredentials();
      print(`Signed out: deleted ${credentialsPath()}.`);
    });
}
