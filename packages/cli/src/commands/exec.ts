import type { Readable } from 'node:stream';
import { toWardError, WardError } from '@ward/protocol';
import { type Command, CommanderError, Option } from 'commander';
import { resolveTarget } from '../api-client.js';
import { findConnection, openConnectStream } from './connect-stream.js';
import { runSql } from './exec-postgres.js';
import { runSshCommand } from './exec-ssh.js';
import { SQL_FORMATS, type SqlFormat } from './sql-output.js';
import { fetchHostKey } from './ssh-known-hosts.js';

/** `ward exec`'s own exit statuses (an SSH command's status passes through instead). */
export const EXIT = {
  ok: 0,
  /** A SQL statement failed (its SQLSTATE is on stderr). */
  sqlError: 1,
  /** Bad usage: options, no input, an HTTP connection. */
  usage: 2,
  /** Could not connect or authenticate: gateway unreachable, bad or expired token, unknown connection, no agent, refused. */
  connect: 3,
} as const;

const USAGE_CODES = new Set(['ERR_CLI_BAD_OPTION', 'ERR_CLI_NO_INPUT', 'ERR_CONN_TYPE_MISMATCH']);

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface ExecOptions {
  format: SqlFormat;
  tty?: boolean;
  stdin: boolean;
  user?: string;
  gateway?: string;
}

async function execute(name: string, words: string[], opts: ExecOptions): Promise<number> {
  const target = resolveTarget(opts);
  const connection = await findConnection(target, name);
  const given = words.length > 0 ? words.join(' ') : undefined;
  if (connection.type === 'postgres') {
    if (opts.tty) throw new WardError('ERR_CLI_BAD_OPTION', 'invalid_argument', '-t is for SSH connections');
    const sql = given ?? (process.stdin.isTTY ? '' : await readAll(process.stdin));
    if (sql.trim() === '')
      throw new WardError(
        'ERR_CLI_NO_INPUT',
        'invalid_argument',
        'no SQL: give it as an argument or on stdin (ward exec db "select 1", or ward exec db < script.sql)',
      );
    const stream = await openConnectStream(target, name);
    const result = await runSql(stream, name, sql, opts.format, process.stdout, process.stderr);
    return result.sqlState ? EXIT.sqlError : EXIT.ok;
  }
  if (connection.type !== 'ssh')
    throw new WardError('ERR_CONN_TYPE_MISMATCH', 'invalid_argument', `"${name}" is a ${connection.type} connection`);
  if (given === undefined)
    throw new WardError(
      'ERR_CLI_NO_INPUT',
      'invalid_argument',
      'give the command to run (ward exec web "uptime"); for a shell use ward connect and ssh',
    );
  const hostKey = await fetchHostKey(target);
  const stream = await openConnectStream(target, name);
  const tty = opts.tty === true && process.stdin.isTTY === true && process.stdout.isTTY === true;
  if (opts.tty && !tty)
    process.stderr.write('ward exec: -t needs a terminal on stdin and stdout; running without a pty\n');
  // Piped stdin goes to the command (then EOF); a terminal's only with -t (raw, like ssh -t).
  const forwardStdin = opts.stdin && (tty || !process.stdin.isTTY);
  if (tty) process.stdin.setRawMode(true);
  try {
    return await runSshCommand(stream, {
      command: given,
      user: opts.user ?? '',
      connection: name,
      hostKey,
      stdin: forwardStdin ? process.stdin : undefined,
      stdout: process.stdout,
      stderr: process.stderr,
      ...(tty
        ? {
            pty: { rows: process.stdout.rows, cols: process.stdout.columns, term: process.env['TERM'] ?? 'xterm' },
            onResize: (resize: (rows: number, cols: number) => void) =>
              process.stdout.on('resize', () => resize(process.stdout.rows, process.stdout.columns)),
          }
        : {}),
    });
  } finally {
    if (tty) process.stdin.setRawMode(false);
    // stdin may still be open (a command that did not read it): let the process end.
    if (forwardStdin) process.stdin.destroy();
  }
}

export function registerExec(program: Command): void {
  program
    .command('exec')
    .summary('Run SQL (Postgres) or one command (SSH) through the gateway; exit status 0/1/2/3 or the remote one')
    .description(
      [
        'Run SQL on a Postgres connection, or one command on an SSH connection, through the gateway as you: the same policy, recording and audit as an interactive session (the connect WebSocket carries your token).',
        '',
        'Postgres: the SQL is the argument, or stdin when there is none. It is sent as one simple-protocol query, so several statements separated by ";" run in order, in one implicit transaction, and the first error stops the rest (as with psql -c). psql meta-commands (\\d, \\copy) are not understood; COPY … TO STDOUT prints the data, COPY FROM STDIN is refused.',
        '  --format table (default): aligned columns and "(n rows)"; the tags of other statements (INSERT 0 1) on stdout.',
        '  --format csv: a header line, then RFC 4180 rows, a blank line between results; tags on stderr.',
        '  --format json: one JSON object per row (values as Postgres prints them, NULL as null); tags on stderr.',
        'csv and json stream in constant memory; table holds one result at a time to align it. NOTICEs go to stderr; an error prints "ERROR:  <SQLSTATE>: message" (with DETAIL and HINT) to stderr.',
        '',
        'SSH: the words after the connection are the command, joined by spaces as ssh does (put "--" before a command with options of its own). stdout and stderr stream as they come, piped stdin is forwarded (then EOF), -t runs the command in a pseudo-terminal.',
        '',
        "Exit status: 0 success; 1 an SQL error; 2 usage (bad options, no input, an HTTP connection); 3 could not connect or authenticate (gateway unreachable, bad or expired token, unknown connection, no grant; for Postgres also no agent online or a refused session start). SSH: the remote command's status, 128+n when a signal ended it, 255 when the gateway refused the command after login ('ward: ERR_…' on stderr: no agent online, a policy refusal) or the session ended without a status, as with ssh.",
        '',
        'Examples:',
        '  ward exec demo-pg "select count(*) from customers; select now()"',
        '  ward exec demo-pg --format csv < report.sql > report.csv',
        '  ward exec demo-ssh uptime',
        '  ward exec demo-ssh -- ls -la /tmp',
        '  tar cz src | ward exec demo-ssh "tar xz -C /tmp"',
        '  ward exec -t demo-ssh top',
      ].join('\n'),
    )
    .argument('<connection>', 'a Postgres or SSH connection (see `ward connections`)')
    .argument('[command...]', 'SQL (Postgres) or the command line (SSH); stdin for SQL when absent')
    .addOption(new Option('-f, --format <format>', 'how to print SQL results').choices(SQL_FORMATS).default('table'))
    .option('-t, --tty', 'SSH: run the command in a pseudo-terminal (interactive programs), like ssh -t')
    .option('-n, --no-stdin', 'SSH: do not forward stdin (the command reads EOF), like ssh -n')
    .option('-u, --user <login>', "SSH: the remote login (default: the agent's configured user)")
    .option('--gateway <url>', 'gateway URL (default: WARD_GATEWAY or the saved login)')
    .exitOverride((err) => {
      // Usage errors exit 2 (help and --version stay 0).
      throw err.exitCode === 0 ? err : new CommanderError(EXIT.usage, err.code, err.message);
    })
    .action(async (name: string, words: string[], opts: ExecOptions) => {
      let status: number;
      // `ward exec db "select …" | head`: once the reader is gone there is no one to print to.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
      });
      try {
        status = await execute(name, words, opts);
      } catch (err) {
        const e = toWardError(err);
        process.stderr.write(`ward exec: ${e.code}: ${e.message}\n`);
        status = USAGE_CODES.has(e.code) ? EXIT.usage : EXIT.connect;
      }
      process.exitCode = status;
    });
}
