import { WardError } from '@ward/protocol';
import type Database from 'better-sqlite3';
import type { AuditLog } from '../audit/audit-log.js';
import { canonicalJson } from '../audit/canonical.js';
import { assertNoSecrets } from '../audit/secret-guard.js';
import type { JsonObject } from '../audit/types.js';

export type SessionStatus = 'active' | 'ok' | 'error' | 'cut';

export interface SessionStart {
  id: string;
  connection: string;
  /** `postgres`, `ssh`, `http`, … */
  protocol: string;
  identity: string;
  /** Client address, e.g. `203.0.113.7:51234`. */
  source: string;
  /** Who vouched for the identity and what it held then (issuer, groups, roles): in the `session.start` record. */
  principal?: { issuer: string; groups: readonly string[]; roles: readonly string[] } | undefined;
}

export interface SessionEnd {
  status: Exclude<SessionStatus, 'active'>;
  errorCode?: string | undefined;
  errorMessage?: string | undefined;
  /** Redacted counters and facts about the session (bytes, statements, exit status, …). */
  summary?: Readonly<Record<string, unknown>> | undefined;
}

export interface Session {
  id: string;
  connection: string;
  protocol: string;
  identity: string;
  source: string;
  startedAt: string;
  endedAt: string | null;
  status: SessionStatus;
  errorCode: string | null;
  errorMessage: string | null;
  summary: JsonObject | null;
  /** Seq of the `session.start` / `session.end` audit records. */
  startSeq: number;
  endSeq: number | null;
}

export interface SessionQuery {
  /** Default 100, at most 10,000; newest first. */
  limit?: number | undefined;
  connection?: string | undefined;
  identity?: string | undefined;
  activeOnly?: boolean | undefined;
}

export interface SessionRepository {
  /** Records the start (row + `session.start` audit record, one transaction); resolves when durable. */
  start(s: SessionStart): Promise<Session>;
  /** Records the end (row + `session.end` audit record, one transaction); resolves when durable. */
  end(id: string, e: SessionEnd): Promise<Session>;
  get(id: string): Session | undefined;
  list(q?: SessionQuery): Session[];
}

interface SessionRow {
  id: string;
  connection: string;
  protocol: string;
  identity: string;
  source: string;
  started_at: string;
  ended_at: string | null;
  status: SessionStatus;
  error_code: string | null;
  error_message: string | null;
  summary: string | null;
  start_seq: number;
  end_seq: number | null;
}

const END_STATUSES = new Set(['ok', 'error', 'cut']);

export function createSessionRepository(db: Database.Database, audit: AuditLog): SessionRepository {
  const insert = db.prepare(
    `INSERT INTO sessions (id, connection, protocol, identity, source, started_at, status, start_seq)
     VALUES (@id, @connection, @protocol, @identity, @source, @started_at, 'active', @start_seq)`,
  );
  const finish = db.prepare(
    `UPDATE sessions SET ended_at = @ended_at, status = @status, error_code = @error_code,
       error_message = @error_message, summary = @summary, end_seq = @end_seq
     WHERE id = @id AND ended_at IS NULL`,
  );
  const select = db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?');

  const get = (id: string): Session | undefined => {
    const row = select.get(id);
    return row ? toSession(row) : undefined;
  };

  return {
    async start(s) {
      for (const k of ['id', 'connection', 'protocol', 'identity', 'source'] as const) {
        if (typeof s[k] !== 'string' || s[k].length === 0) {
          throw new WardError('ERR_STORE_INVALID', 'invalid_argument', `session ${k} must be a non-empty string`);
        }
      }
      await audit.appendWith(
        {
          kind: 'session.start',
          sessionId: s.id,
          identity: s.identity,
          source: s.source,
          connection: s.connection,
          data: {
            protocol: s.protocol,
            ...(s.principal
              ? { issuer: s.principal.issuer, groups: [...s.principal.groups], roles: [...s.principal.roles] }
              : {}),
          },
        },
        (rec) => {
          if (select.get(s.id)) {
            throw new WardError('ERR_STORE_SESSION_EXISTS', 'invalid_argument', `session ${s.id} already exists`);
          }
          const { principal: _, ...row } = s;
          insert.run({ ...row, started_at: rec.ts, start_seq: rec.seq });
        },
      );
      return get(s.id)!;
    },

    async end(id, e) {
      if (!END_STATUSES.has(e.status)) {
        throw new WardError('ERR_STORE_INVALID', 'invalid_argument', `session status must be ok, error or cut`);
      }
      const known = get(id);
      if (!known) throw new WardError('ERR_STORE_SESSION_NOT_FOUND', 'not_found', `no session ${id}`);
      if (e.summary !== undefined) assertNoSecrets(e.summary, 'summary');
      const summary = e.summary === undefined ? null : canonicalJson(e.summary);
      const data: Record<string, unknown> = { status: e.status };
      if (e.errorCode !== undefined) data['error_code'] = e.errorCode;
      if (e.errorMessage !== undefined) data['error_message'] = e.errorMessage;
      if (e.summary !== undefined) data['summary'] = e.summary;
      await audit.appendWith(
        {
          kind: 'session.end',
          sessionId: id,
          identity: known.identity,
          source: known.source,
          connection: known.connection,
          data,
        },
        (rec) => {
          const changed = finish.run({
            id,
            ended_at: rec.ts,
            status: e.status,
            error_code: e.errorCode ?? null,
            error_message: e.errorMessage ?? null,
            summary,
            end_seq: rec.seq,
          }).changes;
          if (changed === 0) {
            throw new WardError('ERR_STORE_SESSION_ENDED', 'invalid_argument', `session ${id} has already ended`);
          }
        },
      );
      return get(id)!;
    },

    get,

    list(q = {}) {
      const where: string[] = [];
      const params: Record<string, string | number> = { limit: clamp(q.limit) };
      if (q.connection !== undefined) {
        where.push('connection = @connection');
        params['connection'] = q.connection;
      }
      if (q.identity !== undefined) {
        where.push('identity = @identity');
        params['identity'] = q.identity;
      }
      if (q.activeOnly) where.push('ended_at IS NULL');
      const sql = `SELECT * FROM sessions ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
                   ORDER BY started_at DESC, start_seq DESC LIMIT @limit`;
      return db.prepare<Record<string, string | number>, SessionRow>(sql).all(params).map(toSession);
    },
  };
}

function clamp(limit: number | undefined): number {
  if (limit === undefined) return 100;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new WardError('ERR_STORE_INVALID', 'invalid_argument', 'limit must be a positive integer');
  }
  return Math.min(limit, 10_000);
}

function toSession(r: SessionRow): Session {
  return {
    id: r.id,
    connection: r.connection,
    protocol: r.protocol,
    identity: r.identity,
    source: r.source,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    status: r.status,
    errorCode: r.error_code,
    errorMessage: r.error_message,
    summary: r.summary === null ? null : (JSON.parse(r.summary) as JsonObject),
    startSeq: r.start_seq,
    endSeq: r.end_seq,
  };
}
