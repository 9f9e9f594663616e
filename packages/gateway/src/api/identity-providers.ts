import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../http/index.js';
import type { IdentityProviderInfo } from '../identity/index.js';

/**
 * `GET /api/v1/identity/providers`, unauthenticated: the OIDC issuers this gateway trusts,
 * each with the client id and audience `ward login` should ask for. Nothing in it is secret.
 *
 * @example
 * curl -s http://127.0.0.1:7400/api/v1/identity/providers
 * // {"providers":[{"issuer":"https://idp.example.com","clientId":"ward-cli","audience":["urn:ward"]}]}
 */
export function identityProvidersRoute(
  providers: () => IdentityProviderInfo[],
): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  return async (req, res, url) => {
    if (url.pathname.replace(/\/+$/, '') !== '/api/v1/identity/providers') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    sendJson(res, 200, { providers: providers() });
    return true;
  };
}
