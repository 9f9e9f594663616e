import type { Command } from 'commander';
import { apiJson, resolveTarget } from '../api-client.js';
import { print, table } from '../output.js';

interface Session extends Record<string, unknown> {
  id: string;
  connection: string;
  protocol: string;
  identity: string;
  source: string;
  startedAt: string;
  endedAt: string | null;
  status: string | null;
}

export function registerSessions(program: Command): Command {
  const sessions = program
    .command('sessions')
    .description('List and inspect recorded sessions (needs a login: `ward demo` or `ward login`)');

  sessions
    .command('list')
    .description('List recent sessions, newest first. Auditors and admins see all; users see their own.')
    .option('-n, --limit <n>', 'how many', '20')
    .option('-c, --connection <name>', 'only this connection')
    .option('--active', 'only sessions still open')
    .option('--json', 'print JSON')
    .option('--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)')
    .action(
      async (opts: { limit: string; connection?: string; active?: boolean; json?: boolean; gateway?: string }) => {
        const q = new URLSearchParams({ limit: opts.limit });
        if (opts.connection) q.set('connection', opts.connection);
        if (opts.active) q.set('active', 'true');
        const { sessions: rows } = await apiJson<{ sessions: Session[] }>(resolveTarget(opts), `/api/v1/sessions?${q}`);
        if (opts.json) print(JSON.stringify(rows, null, 2));
        else if (rows.length === 0) print('No sessions recorded yet.');
        else print(table(rows, ['id', 'connection', 'protocol', 'identity', 'source', 'startedAt', 'status']));
      },
    );

  sessions
    .command('show')
    .description('Show one session and every audit record tied to it')
    .argument('<id>', 'session id, as printed by `ward sessions list`')
    .option('--json', 'print JSON')
    .option('--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)')
    .action(async (id: string, opts: { json?: boolean; gateway?: string }) => {
      const result = await apiJson<{ session: Session; records: Array<Record<string, unknown>> }>(
        resolveTarget(opts),
        `/api/v1/sessions/${encodeURIComponent(id)}`,
      );
      if (opts.json) {
        print(JSON.stringify(result, null, 2));
        return;
      }
      const s = result.session;
      print(
        `session    ${s.id}\nconnection ${s.connection} (${s.protocol})\nidentity   ${s.identity}\nsource     ${s.source}\nstarted    ${s.startedAt}\nended      ${s.endedAt ?? '(open)'}\nstatus     ${s.status ?? '(open)'}\n`,
      );
      print(table(result.records, ['seq', 'ts', 'kind', 'decision', 'rule', 'data']));
    });
  return sessions;
}
