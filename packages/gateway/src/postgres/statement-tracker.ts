import type { FrontendMessages } from './codec/index.js';

/** One statement as the audit log keeps it: what ran, with which parameters, and how it ended. */
export interface StatementRecord {
  protocol: 'simple' | 'extended';
  sql: string;
  params?: Array<string | null | { binary: string }>;
  /** CommandComplete tags, in order (several for a multi-statement Query). */
  tags: string[];
  rows: number;
  /** SQLSTATE and message of the error that ended it. */
  error?: { sqlState: string; message: string };
  /** The backend never ran it: an earlier error in the same pipeline skipped it. */
  skipped?: boolean;
  /**
   * The session ended before the backend's answer was complete (client gone, backend down,
   * session terminated): what the backend did with it is unknown past the fields above.
   */
  interrupted?: boolean;
  durationMs: number;
}

interface Pending {
  record: StatementRecord;
  started: number;
}

/** A Sync the client sent: the ReadyForQuery that answers it ends that pipeline. */
const SYNC = 'sync' as const;

const PARAM_RECORD_LIMIT = 4096;

function recordParam(value: Buffer | null, format: number): string | null | { binary: string } {
  if (value === null) return null;
  const piece = value.subarray(0, PARAM_RECORD_LIMIT);
  const suffix = value.byteLength > PARAM_RECORD_LIMIT ? `…(${value.byteLength} bytes)` : '';
  return format === 1 ? { binary: piece.toString('base64') + suffix } : piece.toString('utf8') + suffix;
}

/**
 * Pairs what the client asked (Query, or Parse/Bind/Execute) with what the backend answered
 * (CommandComplete, ErrorResponse, ReadyForQuery), in order, so each statement is recorded once
 * with its outcome. The backend answers strictly in order, which is what makes a queue enough.
 */
export class StatementTracker {
  readonly #prepared = new Map<string, string>();
  readonly #portals = new Map<string, { sql: string; params: StatementRecord['params'] }>();
  readonly #queue: Array<Pending | typeof SYNC> = [];
  /** Statements in #queue, Syncs not counted: the session reads it at every ReadyForQuery. */
  #statements = 0;
  readonly #done: (record: StatementRecord) => void;

  constructor(onStatement: (record: StatementRecord) => void) {
    this.#done = onStatement;
  }

  /** Statements sent and not yet answered. */
  get pending(): number {
    return this.#statements;
  }

  frontend(msg: FrontendMessages.TaggedFrontendMessage): void {
    switch (msg.type) {
      case 'Query':
        this.#statements++;
        this.#queue.push({
          record: { protocol: 'simple', sql: msg.query, tags: [], rows: 0, durationMs: 0 },
          started: performance.now(),
        });
        return;
      case 'Parse':
        this.#prepared.set(msg.name, msg.query);
        return;
      case 'Bind': {
        const sql = this.#prepared.get(msg.statement) ?? '';
        const formatOf = (i: number) =>
          msg.paramFormats.length === 1 ? (msg.paramFormats[0] ?? 0) : (msg.paramFormats[i] ?? 0);
        this.#portals.set(msg.portal, { sql, params: msg.params.map((p, i) => recordParam(p, formatOf(i))) });
        return;
      }
      case 'Execute': {
        const portal = this.#portals.get(msg.portal);
        const record: StatementRecord = {
          protocol: 'extended',
          sql: portal?.sql ?? '',
          tags: [],
          rows: 0,
          durationMs: 0,
        };
        if (portal?.params && portal.params.length > 0) record.params = portal.params;
        this.#statements++;
        this.#queue.push({ record, started: performance.now() });
        return;
      }
      case 'Sync':
        this.#queue.push(SYNC);
        return;
      case 'Close':
        if (msg.target === 'S') this.#prepared.delete(msg.name);
        else this.#portals.delete(msg.name);
        return;
      default:
        return;
    }
  }

  #head(): Pending | undefined {
    const head = this.#queue[0];
    return head === SYNC ? undefined : head;
  }

  dataRow(): void {
    const head = this.#head();
    if (head) head.record.rows++;
  }

  /** CommandComplete, EmptyQueryResponse ('' tag) or PortalSuspended ('SUSPENDED'). */
  complete(tag: string): void {
    const head = this.#head();
    if (!head) return;
    head.record.tags.push(tag);
    if (head.record.protocol === 'extended') this.#finish();
  }

  error(sqlState: string, message: string): void {
    const head = this.#head();
    if (!head) return;
    head.record.error = { sqlState, message };
    if (head.record.protocol === 'extended') this.#finish();
  }

  /**
   * ReadyForQuery ends one simple Query, or one pipeline up to its Sync; an Execute in that
   * pipeline with no answer was skipped by the backend after an earlier error.
   */
  ready(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      if (head === SYNC) {
        this.#queue.shift();
        return;
      }
      if (head?.record.protocol === 'simple') {
        this.#finish();
        return;
      }
      if (head && head.record.tags.length === 0 && !head.record.error) head.record.skipped = true;
      this.#finish();
    }
  }

  /**
   * The session is over: every statement still waiting for its answer is recorded as
   * interrupted, with what was seen of it, so nothing sent to the backend goes unrecorded.
   */
  drain(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      if (head && head !== SYNC) head.record.interrupted = true;
      this.#finish();
    }
  }

  #finish(): void {
    const head = this.#queue.shift();
    if (!head || head === SYNC) return;
    this.#statements--;
    head.record.durationMs = Math.round((performance.now() - head.started) * 1000) / 1000;
    this.#done(head.record);
  }
}
