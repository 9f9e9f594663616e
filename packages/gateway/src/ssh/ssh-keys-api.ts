import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardError } from '@ward/protocol';
import type { ApiHandler } from '../http/index.js';
import { readJsonObject, sendJson } from '../http/index.js';
import type { Identity } from '../identity/index.js';
import { identityLabel, type Recorder } from '../recording/index.js';
import type { Store } from '../store/index.js';
import type { SshKeyRepository } from '../store/ssh-keys.js';
import { parsePublicKeyLine } from './public-key.js';

export interface SshApiContext {
  keys: SshKeyRepository;
  store: Pick<Store, 'sessions' | 'audit' | 'blobs'>;
  recorder: Recorder;
  /** The gateway's SSH host key (public half), for `ward connect`/`ward exec` to pin. */
  hostKey?: () => { publicKey: string; fingerprint: string };
}

/** A key upload is one line; anything bigger is refused before parsing. */
const MAX_BODY_BYTES = 16 * 1024;

const canAudit = (who: Identity) => who.roles.includes('admin') || who.roles.includes('auditor');

/**
 * API routes for SSH, chained into the gateway's /api/v1 handler:
 *
 * - `POST /api/v1/ssh-keys` `{publicKey, comment?}` → 201 `{key}`: registers a public key to the
 *   caller (who must be allowed to open sessions). The key then logs in as the caller, with the
 *   roles the caller has now.
 * - `GET /api/v1/ssh-keys` → `{keys}`: the caller's keys.
 * - `DELETE /api/v1/ssh-keys/<fingerprint>` (URL-encoded `SHA256:…`) → `{removed: true}`.
 * - `GET /api/v1/ssh/host-key` → `{publicKey, fingerprint}`: the gateway's SSH host key, which
 *   `ward connect` writes to a known_hosts file so OpenSSH can check it (any caller: it is public).
 * - `GET /api/v1/sessions/<id>/recording` → the session's asciicast v2 recording
 *   (`application/x-asciicast`), for admins, auditors and the session's owner.
 *
 * @example
 * const sshApi = createSshApi({ keys, store, recorder });
 * const api: ApiHandler = async (req, res, url, who) => (await sshApi(req, res, url, who)) || mainApi(req, res, url, who);
 */
export function createSshApi(ctx: SshApiContext): ApiHandler {
  return async (req: IncomingMessage, res: ServerResponse, url: URL, who: Identity): Promise<boolean> => {
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    if (path === '/api/v1/ssh/host-key' && method === 'GET' && ctx.hostKey) {
      const { publicKey, fingerprint } = ctx.hostKey();
      sendJson(res, 200, { publicKey, fingerprint });
      return true;
    }
    if (path === '/api/v1/ssh-keys' || path.startsWith('/api/v1/ssh-keys/')) {
      const label = identityLabel(who) ?? '';
      if (path === '/api/v1/ssh-keys' && method === 'GET') {
        sendJson(res, 200, { keys: ctx.keys.list(label) });
        return true;
      }
      if (path === '/api/v1/ssh-keys' && method === 'POST') {
        if (!who.roles.some((r) => r === 'admin' || r === 'user')) {
          throw new WardError(
            'ERR_ACCESS_DENIED',
            'permission_denied',
            'only identities that may open sessions (admin, user) can register SSH keys',
          );
        }
        const body = await readJsonObject(req, MAX_BODY_BYTES, 'a JSON object: {"publicKey": "ssh-ed25519 AAAA…"}');
        if (typeof body['publicKey'] !== 'string') {
          throw new WardError('ERR_API_BAD_BODY', 'invalid_argument', 'publicKey must be a string');
        }
        const parsed = parsePublicKeyLine(body['publicKey']);
        const comment = typeof body['comment'] === 'string' ? body['comment'].slice(0, 200) : parsed.comment;
        const key = ctx.keys.add({
          fingerprint: parsed.fingerprint,
          algorithm: parsed.algorithm,
          publicKey: parsed.publicKey,
          comment,
          owner: {
            subject: who.subject,
            kind: who.kind,
            roles: [...who.roles],
            groups: [...who.groups],
            issuer: who.issuer,
          },
        });
        await ctx.recorder.record(undefined, 'ssh.key_added', {
          identity: who,
          decision: 'allow',
          data: { fingerprint: key.fingerprint, algorithm: key.algorithm, comment: key.comment, roles: [...who.roles] },
        });
        sendJson(res, 201, { key });
        return true;
      }
      const one = /^\/api\/v1\/ssh-keys\/([^/]{1,200})$/.exec(path);
      if (one && method === 'DELETE') {
        let fingerprint: string;
        try {
          fingerprint = decodeURIComponent(one[1] ?? '');
        } catch {
          throw new WardError('ERR_API_BAD_PARAM', 'invalid_argument', 'the fingerprint is not URL-encoded correctly');
        }
        if (!ctx.keys.remove(label, fingerprint)) {
          throw new WardError('ERR_SSH_KEY_NOT_FOUND', 'not_found', `you have no SSH key ${fingerprint}`);
        }
        await ctx.recorder.record(undefined, 'ssh.key_removed', {
          identity: who,
          decision: 'allow',
          data: { fingerprint },
        });
        sendJson(res, 200, { removed: true, fingerprint });
        return true;
      }
      return false;
    }
    const recording = /^\/api\/v1\/sessions\/([A-Za-z0-9_-]{1,80})\/recording$/.exec(path);
    if (recording && method === 'GET') {
      const session = ctx.store.sessions.get(recording[1] ?? '');
      if (!session || (!canAudit(who) && session.identity !== identityLabel(who))) {
        throw new WardError('ERR_SESSION_NOT_FOUND', 'not_found', `no session ${recording[1]}`);
      }
      const [record] = ctx.store.audit.listRecords({ sessionId: session.id, kind: 'ssh.session', limit: 1 });
      const sha = record?.data['recording'];
      const bytes = typeof sha === 'string' ? ctx.store.blobs.get(sha) : undefined;
      if (!bytes) {
        throw new WardError(
          'ERR_RECORDING_NOT_FOUND',
          'not_found',
          `session ${session.id} has no terminal recording (only shells and commands are recorded as asciicast)`,
        );
      }
      res.writeHead(200, {
        'content-type': 'application/x-asciicast',
        'content-length': bytes.length,
        'x-ward-recording-sha256': sha as string,
      });
      res.end(bytes);
      return true;
    }
    return false;
  };
}
