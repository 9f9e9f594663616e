import type { IncomingMessage, ServerResponse } from 'node:http';
import { NAME_PATTERN, parseDuration, WardError } from '@ward/protocol';
import type { AccessAction } from '../config/access-config.js';
import type { ApiHandler } from '../http/index.js';
import { sendJson } from '../http/index.js';
import { readJsonObject } from '../http/json-body.js';
import type { Identity } from '../identity/index.js';
import { identityLabel, type Recorder } from '../recording/index.js';
import { peerAddress } from '../sessions/index.js';
import type { ServiceAccountRepository } from '../store/service-accounts.js';
import type { AccessControl } from './access-control.js';

export interface AccessApiContext {
  access: AccessControl;
  accounts: ServiceAccountRepository;
  recorder: Recorder;
}

const ROLES: ReadonlySet<string> = new Set(['admin', 'auditor', 'approver', 'user']);
const ID = /^[a-z]{3}_[0-9a-f-]{36}$/;

function str(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new WardError('ERR_API_BAD_BODY', 'invalid_argument', `${key} must be a string`);
  return v;
}

function strings(body: Record<string, unknown>, key: string): string[] {
  const v = body[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 200)) {
    throw new WardError('ERR_API_BAD_BODY', 'invalid_argument', `${key} must be a list of names`);
  }
  return v as string[];
}

function requireAdmin(who: Identity): void {
  if (!who.roles.includes('admin')) {
    throw new WardError('ERR_ACCESS_DENIED', 'permission_denied', 'managing service accounts needs the admin role');
  }
}

function action(v: string | undefined): AccessAction {
  if (v === undefined || v === 'connect' || v === 'exec') return v ?? 'connect';
  throw new WardError('ERR_API_BAD_BODY', 'invalid_argument', 'action must be connect or exec');
}

function duration(body: Record<string, unknown>): number {
  const v = body['duration'];
  if (typeof v === 'number' && Number.isFinite(v)) return v * 1000;
  if (typeof v === 'string') {
    try {
      return parseDuration(v);
    } catch {
      // Same answer as a missing duration.
    }
  }
  throw new WardError(
    'ERR_ACCESS_BAD_DURATION',
    'invalid_argument',
    'duration must be a duration such as "30m" or "1h" (or a number of seconds)',
  );
}

/**
 * Access routes under /api/v1 (chained into the gateway's API):
 *
 * - `POST /api/v1/access/requests` `{connection, action?, duration, reason}` → 201 `{request}`
 * - `GET /api/v1/access/requests[?status=pending]` → `{requests}` (approvers, admins and
 *   auditors see all; others their own); `GET /api/v1/access/requests/<id>` → `{request}`
 * - `POST /api/v1/access/requests/<id>/approve` `{comment?}` → `{request, grant}`;
 *   `…/reject` `{reason}` → `{request}` (approver or admin, never the requester)
 * - `GET /api/v1/access/grants[?live=true]` → `{grants}`;
 *   `POST /api/v1/access/grants/<id>/revoke` `{reason?}` → `{grant, sessionsEnded}`
 * - `POST /api/v1/service-accounts` `{name, roles?, groups?, description?, federated?}` →
 *   201 `{account, secret}` (the secret is shown once); `GET /api/v1/service-accounts`;
 *   `POST /api/v1/service-accounts/<name>/disable|enable|rotate-secret` (admin only)
 *
 * @example
 * const api = createAccessApi({ access, accounts, recorder });
 */
export function createAccessApi(ctx: AccessApiContext): ApiHandler {
  return async (req: IncomingMessage, res: ServerResponse, url: URL, who: Identity): Promise<boolean> => {
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const source = peerAddress(req.socket);
    if (path === '/api/v1/access/requests') {
      if (method === 'POST') {
        const body = await readJsonObject(req);
        const connection = str(body, 'connection') ?? '';
        const request = await ctx.access.request(
          who,
          {
            connection,
            action: action(str(body, 'action')),
            durationMs: duration(body),
            reason: str(body, 'reason') ?? '',
          },
          source,
        );
        sendJson(res, 201, { request });
        return true;
      }
      if (method === 'GET') {
        const status = url.searchParams.get('status') ?? undefined;
        if (status !== undefined && status !== 'pending' && status !== 'approved' && status !== 'rejected') {
          throw new WardError('ERR_API_BAD_PARAM', 'invalid_argument', 'status must be pending, approved or rejected');
        }
        sendJson(res, 200, { requests: ctx.access.listRequests(who, { status, limit: 500 }) });
        return true;
      }
      return false;
    }
    const requestMatch = /^\/api\/v1\/access\/requests\/([^/]+)(?:\/(approve|reject))?$/.exec(path);
    if (requestMatch) {
      const id = requestMatch[1] ?? '';
      if (!ID.test(id))
        throw new WardError('ERR_ACCESS_REQUEST_NOT_FOUND', 'not_found', `no access request ${id.slice(0, 80)}`);
      const verb = requestMatch[2];
      if (!verb && method === 'GET') {
        sendJson(res, 200, { request: ctx.access.getRequest(who, id) });
        return true;
      }
      if (verb && method === 'POST') {
        const body = await readJsonObject(req);
        if (verb === 'approve') sendJson(res, 200, await ctx.access.approve(who, id, str(body, 'comment'), source));
        else sendJson(res, 200, { request: await ctx.access.reject(who, id, str(body, 'reason') ?? '', source) });
        return true;
      }
      return false;
    }
    if (path === '/api/v1/access/grants' && method === 'GET') {
      sendJson(res, 200, {
        grants: ctx.access.listGrants(who, { liveOnly: url.searchParams.get('live') === 'true', limit: 500 }),
      });
      return true;
    }
    const revokeMatch = /^\/api\/v1\/access\/grants\/([^/]+)\/revoke$/.exec(path);
    if (revokeMatch && method === 'POST') {
      const id = revokeMatch[1] ?? '';
      if (!ID.test(id)) throw new WardError('ERR_ACCESS_GRANT_NOT_FOUND', 'not_found', `no grant ${id.slice(0, 80)}`);
      const body = await readJsonObject(req);
      sendJson(res, 200, await ctx.access.revoke(who, id, str(body, 'reason') ?? '', source));
      return true;
    }

    if (path === '/api/v1/service-accounts') {
      requireAdmin(who);
      if (method === 'GET') {
        sendJson(res, 200, { accounts: ctx.accounts.list() });
        return true;
      }
      if (method !== 'POST') return false;
      const body = await readJsonObject(req);
      const name = str(body, 'name') ?? '';
      if (!NAME_PATTERN.test(name)) {
        throw new WardError(
          'ERR_API_BAD_BODY',
          'invalid_argument',
          'name is lower-case letters, digits, - and _ (at most 63), e.g. support-bot',
        );
      }
      const roles = strings(body, 'roles');
      const bad = roles.filter((r) => !ROLES.has(r));
      if (bad.length > 0) {
        throw new WardError(
          'ERR_API_BAD_BODY',
          'invalid_argument',
          `unknown role ${bad.join(', ')}: use admin, auditor, approver, user`,
        );
      }
      const fed = body['federated'];
      let federated: { issuer: string; subject: string } | undefined;
      if (fed !== undefined && fed !== null) {
        const f = fed as Record<string, unknown>;
        if (typeof f['issuer'] !== 'string' || typeof f['subject'] !== 'string' || !f['issuer'] || !f['subject']) {
          throw new WardError(
            'ERR_API_BAD_BODY',
            'invalid_argument',
            'federated must be {"issuer": "…", "subject": "…"}',
          );
        }
        federated = { issuer: f['issuer'], subject: f['subject'] };
      }
      const created = ctx.accounts.create({
        name,
        description: (str(body, 'description') ?? '').slice(0, 500),
        roles: roles.length > 0 ? roles : ['user'],
        groups: strings(body, 'groups'),
        federated,
        createdBy: identityLabel(who) ?? '',
      });
      await ctx.recorder.record(undefined, 'service_account.create', {
        identity: who,
        source,
        rule: 'service-account',
        data: {
          account: name,
          roles: created.account.roles,
          groups: created.account.groups,
          federated: created.account.federated,
        },
      });
      sendJson(res, 201, created);
      return true;
    }
    const accountMatch = /^\/api\/v1\/service-accounts\/([^/]+)\/(disable|enable|rotate-secret)$/.exec(path);
    if (accountMatch && method === 'POST') {
      requireAdmin(who);
      const name = decodeURIComponent(accountMatch[1] ?? '');
      const verb = accountMatch[2];
      if (verb === 'rotate-secret') {
        const rotated = ctx.accounts.rotateSecret(name);
        await ctx.recorder.record(undefined, 'service_account.rotate_secret', {
          identity: who,
          source,
          rule: 'service-account',
          data: { account: name },
        });
        sendJson(res, 200, rotated);
      } else {
        sendJson(res, 200, await ctx.access.setServiceAccountDisabled(who, name, verb === 'disable', source));
      }
      return true;
    }
    return false;
  };
}
