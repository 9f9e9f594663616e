import { randomUUID } from 'node:crypto';
import { WardError } from '@ward/protocol';
import type Database from 'better-sqlite3';

export type AccessRequestStatus = 'pending' | 'approved' | 'rejected';

/** A just-in-time access request (`ward access request`). */
export interface AccessRequestRecord {
  id: string;
  /** Identity label of who asked (`user:bob`). */
  requester: string;
  connection: string;
  action: 'connect' | 'exec';
  durationMs: number;
  reason: string;
  status: AccessRequestStatus;
  createdAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionComment: string | null;
  grantId: string | null;
}

/** A time-boxed grant, made when a request is approved. */
export interface JitGrantRecord {
  id: string;
  requestId: string | null;
  identity: string;
  connection: string;
  action: 'connect' | 'exec';
  startsAt: string;
  expiresAt: string;
  grantedBy: string;
  revokedAt: string | null;
  revokedBy: string | null;
  revokeReason: string | null;
}

export interface AccessGrantRepository {
  createRequest(r: {
    requester: string;
    connection: string;
    action: 'connect' | 'exec';
    durationMs: number;
    reason: string;
  }): AccessRequestRecord;
  getRequest(id: string): AccessRequestRecord | undefined;
  /** Newest first; `requester` limits to one identity's requests. */
  listRequests(q: {
    status?: AccessRequestStatus | undefined;
    requester?: string | undefined;
    limit: number;
  }): AccessRequestRecord[];
  /**
   * Approves a pending request and creates its grant, starting `now`, in one transaction.
   * ERR_ACCESS_REQUEST_NOT_FOUND, ERR_ACCESS_REQUEST_DECIDED.
   */
  approve(
    id: string,
    approver: string,
    comment: string | undefined,
    now: Date,
  ): { request: AccessRequestRecord; grant: JitGrantRecord };
  reject(id: string, approver: string, reason: string, now: Date): AccessRequestRecord;
  getGrant(id: string): JitGrantRecord | undefined;
  /** Grants neither revoked nor expired at `now`. */
  liveGrants(now: Date): JitGrantRecord[];
  listGrants(q: { identity?: string | undefined; liveAt?: Date | undefined; limit: number }): JitGrantRecord[];
  /** ERR_ACCESS_GRANT_NOT_FOUND; a grant already revoked or expired is returned unchanged. */
  revoke(id: string, by: string, reason: string, now: Date): JitGrantRecord;
}

interface RequestRow {
  id: string;
  requester: string;
  connection: string;
  action: 'connect' | 'exec';
  duration_ms: number;
  reason: string;
  status: AccessRequestStatus;
  created_at: string;
  decided_by: string | null;
  decided_at: string | null;
  decision_comment: string | null;
  grant_id: string | null;
}

interface GrantRow {
  id: string;
  request_id: string | null;
  identity: string;
  connection: string;
  action: 'connect' | 'exec';
  starts_at: string;
  expires_at: string;
  granted_by: string;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason: string | null;
}

const toRequest = (r: RequestRow): AccessRequestRecord => ({
  id: r.id,
  requester: r.requester,
  connection: r.connection,
  action: r.action,
  durationMs: r.duration_ms,
  reason: r.reason,
  status: r.status,
  createdAt: r.created_at,
  decidedBy: r.decided_by,
  decidedAt: r.decided_at,
  decisionComment: r.decision_comment,
  grantId: r.grant_id,
});

const toGrant = (r: GrantRow): JitGrantRecord => ({
  id: r.id,
  requestId: r.request_id,
  identity: r.identity,
  connection: r.connection,
  action: r.action,
  startsAt: r.starts_at,
  expiresAt: r.expires_at,
  grantedBy: r.granted_by,
  revokedAt: r.revoked_at,
  revokedBy: r.revoked_by,
  revokeReason: r.revoke_reason,
});

function notFound(id: string): WardError {
  return new WardError('ERR_ACCESS_REQUEST_NOT_FOUND', 'not_found', `no access request ${id}`);
}

/**
 * The `access_requests` and `access_grants` tables (migration 4). Decisions go through
 * AccessControl, which checks roles and records them; this only keeps the rows consistent
 * (a request is decided once; an approval and its grant commit together).
 *
 * @example
 * const repo = createAccessGrantRepository(db);
 * const req = repo.createRequest({ requester: 'user:bob', connection: 'prod-pg', action: 'connect', durationMs: 3_600_000, reason: 'INC-42' });
 * const { grant } = repo.approve(req.id, 'user:carol', 'ok', new Date());
 */
export function createAccessGrantRepository(db: Database.Database): AccessGrantRepository {
  const insertRequest = db.prepare(
    `INSERT INTO access_requests (id, requester, connection, action, duration_ms, reason, status, created_at)
     VALUES (@id, @requester, @connection, @action, @duration_ms, @reason, 'pending', @created_at)`,
  );
  const selectRequest = db.prepare<[string], RequestRow>('SELECT * FROM access_requests WHERE id = ?');
  const decide = db.prepare(
    `UPDATE access_requests SET status = @status, decided_by = @decided_by, decided_at = @decided_at,
       decision_comment = @comment, grant_id = @grant_id WHERE id = @id AND status = 'pending'`,
  );
  const insertGrant = db.prepare(
    `INSERT INTO access_grants (id, request_id, identity, connection, action, starts_at, expires_at, granted_by)
     VALUES (@id, @request_id, @identity, @connection, @action, @starts_at, @expires_at, @granted_by)`,
  );
  const selectGrant = db.prepare<[string], GrantRow>('SELECT * FROM access_grants WHERE id = ?');
  const live = db.prepare<[string], GrantRow>(
    'SELECT * FROM access_grants WHERE revoked_at IS NULL AND expires_at > ? ORDER BY expires_at',
  );
  const revokeStmt = db.prepare(
    `UPDATE access_grants SET revoked_at = @at, revoked_by = @by, revoke_reason = @reason
     WHERE id = @id AND revoked_at IS NULL`,
  );

  const approve = db.transaction((id: string, approver: string, comment: string | undefined, now: Date) => {
    const row = selectRequest.get(id);
    if (!row) throw notFound(id);
    if (row.status !== 'pending') {
      throw new WardError('ERR_ACCESS_REQUEST_DECIDED', 'invalid_argument', `request ${id} is already ${row.status}`);
    }
    const grant: GrantRow = {
      id: `grt_${randomUUID()}`,
      request_id: id,
      identity: row.requester,
      connection: row.connection,
      action: row.action,
      starts_at: now.toISOString(),
      expires_at: new Date(now.getTime() + row.duration_ms).toISOString(),
      granted_by: approver,
      revoked_at: null,
      revoked_by: null,
      revoke_reason: null,
    };
    insertGrant.run(grant);
    decide.run({
      id,
      status: 'approved',
      decided_by: approver,
      decided_at: now.toISOString(),
      comment: comment ?? null,
      grant_id: grant.id,
    });
    return { request: toRequest(selectRequest.get(id) as RequestRow), grant: toGrant(grant) };
  });

  const reject = db.transaction((id: string, approver: string, reason: string, now: Date) => {
    const row = selectRequest.get(id);
    if (!row) throw notFound(id);
    if (row.status !== 'pending') {
      throw new WardError('ERR_ACCESS_REQUEST_DECIDED', 'invalid_argument', `request ${id} is already ${row.status}`);
    }
    decide.run({
      id,
      status: 'rejected',
      decided_by: approver,
      decided_at: now.toISOString(),
      comment: reason,
      grant_id: null,
    });
    return toRequest(selectRequest.get(id) as RequestRow);
  });

  return {
    createRequest(r) {
      const row = {
        id: `req_${randomUUID()}`,
        requester: r.requester,
        connection: r.connection,
        action: r.action,
        duration_ms: Math.round(r.durationMs),
        reason: r.reason,
        created_at: new Date().toISOString(),
      };
      insertRequest.run(row);
      return toRequest(selectRequest.get(row.id) as RequestRow);
    },
    getRequest(id) {
      const row = selectRequest.get(id);
      return row ? toRequest(row) : undefined;
    },
    listRequests(q) {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.status) {
        where.push('status = ?');
        args.push(q.status);
      }
      if (q.requester) {
        where.push('requester = ?');
        args.push(q.requester);
      }
      const sql = `SELECT * FROM access_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY created_at DESC, id LIMIT ?`;
      return (db.prepare(sql).all(...args, q.limit) as RequestRow[]).map(toRequest);
    },
    approve: (id, approver, comment, now) => approve.immediate(id, approver, comment, now),
    reject: (id, approver, reason, now) => reject.immediate(id, approver, reason, now),
    getGrant(id) {
      const row = selectGrant.get(id);
      return row ? toGrant(row) : undefined;
    },
    liveGrants: (now) => live.all(now.toISOString()).map(toGrant),
    listGrants(q) {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.identity) {
        where.push('identity = ?');
        args.push(q.identity);
      }
      if (q.liveAt) {
        where.push('revoked_at IS NULL AND expires_at > ?');
        args.push(q.liveAt.toISOString());
      }
      const sql = `SELECT * FROM access_grants ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY starts_at DESC, id LIMIT ?`;
      return (db.prepare(sql).all(...args, q.limit) as GrantRow[]).map(toGrant);
    },
    revoke(id, by, reason, now) {
      const row = selectGrant.get(id);
      if (!row) throw new WardError('ERR_ACCESS_GRANT_NOT_FOUND', 'not_found', `no grant ${id}`);
      revokeStmt.run({ id, at: now.toISOString(), by, reason });
      return toGrant(selectGrant.get(id) as GrantRow);
    },
  };
}
