import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardError } from '@ward/protocol';
import type { GatewayConnection } from '../gateway-options.js';
import type { ApiHandler } from '../http/index.js';
import { sendJson } from '../http/index.js';
import type { Identity } from '../identity/index.js';
import { identityLabel } from '../recording/index.js';
import { exportAuditLog, type Store } from '../store/index.js';
import type { TunnelServer } from '../tunnel/index.js';

export interface ApiContext {
  store: Store;
  tunnel: TunnelServer;
  connections: () => readonly GatewayConnection[];
}

const canAudit = (who: Identity) => who.roles.includes('admin') || who.roles.includes('auditor');

function requireAuditor(who: Identity): void {
  if (!canAudit(who))
    throw new WardError('ERR_ACCESS_DENIED', 'permission_denied', 'this needs the admin or auditor role');
}

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new WardError('ERR_API_BAD_PARAM', 'invalid_argument', `${name} must be a non-negative integer`);
  return Math.min(n, max);
}

/**
 * The gateway's JSON API under /api/v1, used by the CLI (`ward sessions`, `ward audit export`)
 * and later the web console. Auditors and admins read everything; users read their own sessions.
 */
export function createApi(ctx: ApiContext): ApiHandler {
  return async (req: IncomingMessage, res: ServerResponse, url: URL, who: Identity): Promise<boolean> => {
    if (req.method !== 'GET') return false;
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/api/v1/whoami') {
      sendJson(res, 200, {
        subject: who.subject,
        kind: who.kind,
        roles: who.roles,
        groups: who.groups,
        issuer: who.issuer,
        expiresAt: who.expiresAt.toISOString(),
      });
      return true;
    }
    if (path === '/api/v1/connections') {
      sendJson(res, 200, {
        connections: ctx.connections().map((c) => ({
          name: c.name,
          type: c.type,
          description: c.description ?? null,
          agent: ctx.tunnel.agentFor(c.name) ?? null,
          online: ctx.tunnel.agentFor(c.name) !== undefined,
        })),
      });
      return true;
    }
    if (path === '/api/v1/agents') {
      requireAuditor(who);
      sendJson(res, 200, { agents: ctx.tunnel.agents() });
      return true;
    }
    if (path === '/api/v1/sessions') {
      const limit = intParam(url, 'limit', 50, 1000);
      const connection = url.searchParams.get('connection') ?? undefined;
      const identity = canAudit(who) ? (url.searchParams.get('identity') ?? undefined) : identityLabel(who);
      sendJson(res, 200, {
        sessions: ctx.store.sessions.list({
          limit,
          connection,
          identity,
          activeOnly: url.searchParams.get('active') === 'true',
        }),
      });
      return true;
    }
    const sessionMatch = /^\/api\/v1\/sessions\/([A-Za-z0-9_-]{1,80})$/.exec(path);
    if (sessionMatch) {
      const session = ctx.store.sessions.get(sessionMatch[1] ?? '');
      if (!session || (!canAudit(who) && session.identity !== identityLabel(who))) {
        throw new WardError('ERR_SESSION_NOT_FOUND', 'not_found', `no session ${sessionMatch[1]}`);
      }
      const records = ctx.store.audit.listRecords({ sessionId: session.id, limit: 10_000 });
      sendJson(res, 200, { session, records });
      return true;
    }
    if (path === '/api/v1/audit/records') {
      requireAuditor(who);
      const records = ctx.store.audit.listRecords({
        afterSeq: intParam(url, 'afterSeq', 0, Number.MAX_SAFE_INTEGER),
        limit: intParam(url, 'limit', 100, 10_000),
        kind: url.searchParams.get('kind') ?? undefined,
      });
      sendJson(res, 200, { records });
      return true;
    }
    if (path === '/api/v1/audit/export') {
      requireAuditor(who);
      res.writeHead(200, {
        'content-type': 'application/x-ndjson',
        'content-disposition': 'attachment; filename="ward-audit.jsonl"',
      });
      await exportAuditLog(ctx.store, res);
      res.end();
      return true;
    }
    return false;
  };
}
