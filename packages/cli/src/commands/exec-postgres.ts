import type { Duplex, Writable } from 'node:stream';
import { WardError } from '@ward/protocol';
import pg from 'pg';
import { csvLine, formatTable, jsonLine, type SqlFormat } from './sql-output.js';

/** What pg hands a submittable for each backend message (pg-protocol's parsed messages). */
interface Field {
  name: string;
}
interface PgNotice {
  severity?: string;
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
}
interface PgConnection {
  once(event: 'readyForQuery', listener: () => void): void;
  query(text: string): void;
  sendCopyFail(message: string): void;
  stream: Duplex;
}

export interface SqlRunResult {
  /** The first error's SQLSTATE, when a statement failed (the rest of the input did not run). */
  sqlState?: string;
}

/** `ERROR:  42P01: relation "x" does not exist` plus DETAIL/HINT lines, as psql's verbose mode writes. */
export function describeServerMessage(m: PgNotice, fallbackSeverity: string): string {
  const lines = [`${m.severity ?? fallbackSeverity}:  ${m.code ? `${m.code}: ` : ''}${m.message}`];
  if (m.detail) lines.push(`DETAIL:  ${m.detail}`);
  if (m.hint) lines.push(`HINT:  ${m.hint}`);
  return `${lines.join('\n')}\n`;
}

/**
 * One simple-protocol Query (so several statements run in one go, as with `psql -c`), printed
 * as the rows arrive. csv and json stream (the connection pauses while stdout is full);
 * table collects one result at a time, to align it.
 */
class PrintingQuery {
  readonly #text: string;
  readonly #format: SqlFormat;
  readonly #out: Writable;
  readonly #err: Writable;
  #connection: PgConnection | undefined;
  #columns: string[] = [];
  #rows: Array<Array<string | null>> = [];
  #results = 0;
  #error: PgNotice | undefined;
  readonly done: Promise<SqlRunResult>;
  #resolve!: (r: SqlRunResult) => void;

  constructor(text: string, format: SqlFormat, out: Writable, err: Writable) {
    this.#text = text;
    this.#format = format;
    this.#out = out;
    this.#err = err;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  submit(connection: PgConnection): void {
    this.#connection = connection;
    connection.query(this.#text);
  }

  #write(stream: Writable, text: string): void {
    if (!stream.write(text) && this.#connection) {
      const source = this.#connection.stream;
      source.pause();
      stream.once('drain', () => source.resume());
    }
  }

  handleRowDescription(msg: { fields: Field[] }): void {
    this.#columns = msg.fields.map((f) => f.name);
    this.#rows = [];
    if (this.#results++ > 0 && this.#format !== 'json') this.#write(this.#out, this.#format === 'csv' ? '\r\n' : '\n');
    if (this.#format === 'csv') this.#write(this.#out, csvLine(this.#columns));
  }

  handleDataRow(msg: { fields: Array<string | null> }): void {
    if (this.#format === 'table') this.#rows.push(msg.fields);
    else if (this.#format === 'csv') this.#write(this.#out, csvLine(msg.fields));
    else this.#write(this.#out, jsonLine(this.#columns, msg.fields));
  }

  handleCommandComplete(msg: { text: string }): void {
    if (this.#format === 'table') {
      if (this.#columns.length > 0) this.#write(this.#out, formatTable(this.#columns, this.#rows));
      // psql prints the tag for statements without rows (SELECT's is the "(n rows)" line).
      else this.#write(this.#out, `${msg.text}\n`);
    } else {
      // csv and json keep stdout to the data; the tags go to stderr.
      this.#write(this.#err, `${msg.text}\n`);
    }
    this.#columns = [];
    this.#rows = [];
  }

  handleEmptyQuery(): void {}

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: PgConnection): void {
    connection.sendCopyFail('ward exec does not send COPY FROM STDIN data: use psql through `ward connect`');
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    this.#write(this.#out, msg.chunk as unknown as string);
  }

  handleError(err: PgNotice): void {
    // The server ends the whole query string at the first error, then sends ReadyForQuery,
    // which pg hands to no query once an error was delivered: wait for it on the connection,
    // so the session ends cleanly after the statement is complete (and recorded as such).
    this.#error ??= err;
    this.#err.write(describeServerMessage(err, 'ERROR'));
    const result = { sqlState: err.code ?? 'XX000' };
    if (this.#connection) this.#connection.once('readyForQuery', () => this.#resolve(result));
    else this.#resolve(result);
  }

  /** The SQLSTATE of the error this query ended with, once one came. */
  get failed(): string | undefined {
    return this.#error ? (this.#error.code ?? 'XX000') : undefined;
  }

  handleReadyForQuery(): void {
    this.#resolve(this.#error ? { sqlState: this.#error.code ?? 'XX000' } : {});
  }
}

/**
 * Runs `sql` on a Postgres connection through the `ward connect` stream (the gateway's
 * PostgresSession: policy, recording), printing results to `out` and notices, tags (csv/json)
 * and errors to `err`.
 */
export async function runSql(
  stream: Duplex,
  connection: string,
  sql: string,
  format: SqlFormat,
  out: Writable,
  err: Writable,
): Promise<SqlRunResult> {
  // pg drives a socket: connect() then 'connect'. The WebSocket stream is open already.
  const socket = Object.assign(stream, {
    connect: () => process.nextTick(() => stream.emit('connect')),
    setNoDelay: () => socket,
    setKeepAlive: () => socket,
  });
  const client = new pg.Client({
    stream: () => socket as unknown as import('node:net').Socket,
    // The gateway took the identity from the WebSocket handshake and fixed the connection;
    // user and database here are placeholders it does not pass on.
    user: 'ward',
    database: connection,
    application_name: 'ward exec',
  });
  client.on('notice', (n) => err.write(describeServerMessage(n as unknown as PgNotice, 'NOTICE')));
  let lost: Error | undefined;
  client.on('error', (e) => {
    lost = e;
  });
  try {
    await client.connect();
  } catch (e) {
    const m = e as PgNotice & Error;
    throw new WardError(
      'ERR_CLI_CONNECT_FAILED',
      'unavailable',
      `could not start a session on "${connection}": ${m.code ? `${m.code}: ` : ''}${m.message}`,
      { cause: e },
    );
  }
  const query = new PrintingQuery(sql, format, out, err);
  const closed = new Promise<undefined>((resolve) => stream.once('close', () => resolve(undefined)));
  client.query(query as unknown as pg.Submittable);
  const result = await Promise.race([query.done, closed]);
  if (!result) {
    // A FATAL error (the session was ended) comes with no ReadyForQuery: it said why already.
    if (query.failed) return { sqlState: query.failed };
    err.write(`ward exec: the connection closed before the query finished${lost ? ` (${lost.message})` : ''}\n`);
    return { sqlState: '08006' };
  }
  await client.end().catch(() => {});
  return result;
}
