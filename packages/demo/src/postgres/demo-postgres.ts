import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { WardError } from '@ward/protocol';
import { seedDemoDatabase } from './seed.js';

export interface DemoPostgresOptions {
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Directory to persist the database in; omitted = in memory (gone on close). */
  dataDir?: string;
  /**
   * How many client connections may be open at once. Default 16. PGlite itself is a single
   * session; see README.md for how pglite-socket shares it.
   */
  maxConnections?: number;
}

export interface DemoPostgres {
  host: string;
  port: number;
  database: string;
  user: string;
  /** True when this start created and filled the schema (false: the data dir had it). */
  seeded: boolean;
  close(): Promise<void>;
}

/**
 * Starts PGlite (Postgres compiled to WASM) behind pglite-socket's wire-protocol server and
 * seeds it with the demo schema and fake PII on first start. Any user name, database name and
 * password are accepted (PGlite answers the startup with AuthenticationOk); the session is
 * always `postgres`@`postgres`.
 *
 * @example
 * const pg = await startDemoPostgres({ port: 0 });
 * // psql -h 127.0.0.1 -p ${pg.port} -U postgres postgres -c 'select count(*) from customers'
 * await pg.close();
 */
export async function startDemoPostgres(opts: DemoPostgresOptions = {}): Promise<DemoPostgres> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  const maxConnections = opts.maxConnections ?? 16;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WardError(
      'ERR_DEMO_INVALID_OPTIONS',
      'invalid_argument',
      `port must be an integer in 0..65535, got ${port}`,
    );
  }
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new WardError(
      'ERR_DEMO_INVALID_OPTIONS',
      'invalid_argument',
      `maxConnections must be a positive integer, got ${maxConnections}`,
    );
  }
  if (opts.dataDir !== undefined) mkdirSync(opts.dataDir, { recursive: true });

  let db: PGlite;
  try {
    db = opts.dataDir === undefined ? await PGlite.create() : await PGlite.create({ dataDir: opts.dataDir });
  } catch (cause) {
    throw new WardError(
      'ERR_DEMO_PG_START',
      'unavailable',
      `PGlite could not open ${opts.dataDir ?? 'an in-memory database'}`,
      { cause },
    );
  }

  let server: PGLiteSocketServer | undefined;
  try {
    const seeded = await seedDemoDatabase(db);
    server = new PGLiteSocketServer({ db, host, port, maxConnections });
    await server.start();
    const bound = Number(server.getServerConn().slice(server.getServerConn().lastIndexOf(':') + 1));
    let closing: Promise<void> | undefined;
    const running = server;
    return {
      host,
      port: bound,
      database: 'postgres',
      user: 'postgres',
      seeded,
      close() {
        closing ??= (async () => {
          await running.stop();
          await db.close();
        })();
        return closing;
      },
    };
  } catch (cause) {
    await server?.stop().catch(() => {});
    await db.close().catch(() => {});
    if (cause instanceof WardError) throw cause;
    throw new WardError('ERR_DEMO_PG_START', 'unavailable', `demo Postgres could not start on ${host}:${port}`, {
      cause,
    });
  }
}
