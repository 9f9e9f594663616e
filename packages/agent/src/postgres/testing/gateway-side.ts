/**
 * Plays the gateway's part of a Postgres session in tests: waits for SessionReady, sends
 * PgFrontend bytes, parses PgBackend bytes with pg-protocol's Parser, and returns credit either
 * at once or only when told (`hold`/`release`) to act as a slow client.
 */
import { create, type PostgresReady, type SessionChannel, SessionFrameSchema, type WardError } from '@ward/protocol';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';

export interface QueryResult {
  /** Every message except DataRow, in order. */
  messages: BackendMessage[];
  /** The first `keepRows` rows (text values). */
  rows: Array<Array<string | null>>;
  rowCount: number;
}

export class GatewaySide {
  readonly channel: SessionChannel;
  readonly ready: Promise<PostgresReady>;
  readonly closed: Promise<WardError | undefined>;
  /** PgBackend payload bytes received. */
  received = 0;
  /** Largest amount of payload ever received and not yet credited back. */
  maxUncredited = 0;
  #parser = new Parser();
  #held = 0;
  #hold = false;
  #listener: ((m: BackendMessage) => void) | undefined;
  /** Messages that arrived while no query was waiting. */
  readonly unsolicited: BackendMessage[] = [];

  constructor(channel: SessionChannel) {
    this.channel = channel;
    this.closed = new Promise((resolve) => channel.onClose(resolve));
    this.ready = new Promise((resolve, reject) => {
      channel.onClose((reason) => reject(reason ?? new Error('closed before ready')));
      channel.onFrame((frame) => {
        if (frame.frame.case === 'ready' && frame.frame.value.detail.case === 'postgres') {
          resolve(frame.frame.value.detail.value);
          return;
        }
        if (frame.frame.case !== 'pgBackend') throw new Error(`unexpected frame ${frame.frame.case}`);
        const bytes = frame.frame.value.messages;
        this.received += bytes.byteLength;
        this.#parser.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (m) => {
          if (this.#listener) this.#listener(m);
          else this.unsolicited.push(m);
        });
        this.#held += bytes.byteLength;
        this.maxUncredited = Math.max(this.maxUncredited, this.#held);
        if (!this.#hold) this.#credit();
      });
    });
    // Callers that only look at `closed` must not see an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** Stops returning credit (a client that does not read). */
  hold(): void {
    this.#hold = true;
  }

  release(): void {
    this.#hold = false;
    this.#credit();
  }

  #credit(): void {
    const n = this.#held;
    this.#held = 0;
    if (n > 0) this.channel.delivered(n);
  }

  send(bytes: Uint8Array): Promise<void> {
    return this.channel.sendData(bytes, (messages) =>
      create(SessionFrameSchema, { frame: { case: 'pgFrontend', value: { messages } } }),
    );
  }

  cancel(): void {
    this.channel.send(create(SessionFrameSchema, { frame: { case: 'pgCancel', value: {} } }));
  }

  /**
   * Collects backend messages until ReadyForQuery (simple query protocol) or until the session
   * closes (then `closeReason` tells why).
   */
  collect(options: { keepRows?: number; onRow?: (fields: Array<string | null>) => void } = {}): Promise<QueryResult> {
    const keepRows = options.keepRows ?? 1000;
    const result: QueryResult = { messages: [], rows: [], rowCount: 0 };
    return new Promise((resolve) => {
      const done = () => {
        this.#listener = undefined;
        resolve(result);
      };
      this.channel.onClose(done);
      this.#listener = (m) => {
        if (m.name === 'dataRow') {
          const fields = (m as unknown as { fields: Array<string | null> }).fields;
          result.rowCount++;
          options.onRow?.(fields);
          if (result.rows.length < keepRows) result.rows.push(fields);
          return;
        }
        result.messages.push(m);
        if (m.name === 'readyForQuery') done();
      };
    });
  }

  async query(sql: string): Promise<QueryResult> {
    const result = this.collect();
    await this.send(serialize.query(sql));
    return result;
  }
}
