import { join } from 'node:path';
import { TokenService } from '@ward/gateway';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';
import type { Command } from 'commander';
import { apiJson, exchangeToken, freshToken, resolveTarget } from '../api-client.js';
import { loadCredentials } from '../credentials.js';
import { print } from '../output.js';

const ROLES = ['admin', 'auditor', 'approver', 'user'] as const;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

export function registerKeys(program: Command): void {
  const agentKey = program.command('agent-key').description('Create agent keys; the gateway stores only their hash');
  agentKey
    .command('create')
    .description('Generate a new agent key and print it with the hash to put in the gateway config')
    .option('--name <agent>', 'agent name for the printed config snippet', 'dc1')
    .action((opts: { name: string }) => {
      const key = generateAgentKey();
      print(`agent key (give it to the agent only, e.g. as WARD_AGENT_KEY; it is not shown again):\n  ${key}\n`);
      print(`gateway.yaml:\n  agents:\n    - name: ${opts.name}\n      keyHash: ${hashAgentKey(key)}`);
    });
  agentKey
    .command('hash')
    .description('Print the gateway-side hash of an agent key read from standard input')
    .action(async () => {
      const key = await readStdin();
      if (!key) throw new Error('pipe the agent key on standard input');
      print(hashAgentKey(key));
    });

  const token = program.command('token').description('Gateway-issued tokens (bootstrap admin, scripts)');
  token
    .command('issue')
    .description(
      "Issue a token signed with a gateway data dir's key (run on the gateway host; for bootstrap and automation)",
    )
    .requiredOption('--data-dir <dir>', 'the gateway data dir holding token-key.pem')
    .requiredOption('--subject <name>', 'who the token names')
    .option('--role <role...>', `roles: ${ROLES.join(', ')}`, ['user'])
    .option('--ttl <seconds>', 'lifetime in seconds', '3600')
    .option('--service', 'a service account (non-human identity)')
    .option('--issuer <iss>', 'issuer the gateway expects', 'urn:ward:gateway')
    .action(
      async (opts: {
        dataDir: string;
        subject: string;
        role: string[];
        ttl: string;
        service?: boolean;
        issuer: string;
      }) => {
        const bad = opts.role.filter((r) => !(ROLES as readonly string[]).includes(r));
        if (bad.length) throw new Error(`unknown role ${bad.join(', ')}: use ${ROLES.join(', ')}`);
        const ttl = Number(opts.ttl);
        if (!Number.isInteger(ttl) || ttl <= 0) throw new Error('--ttl must be a positive whole number of seconds');
        const tokens = await TokenService.open({ keyPath: join(opts.dataDir, 'token-key.pem'), issuer: opts.issuer });
        print(
          await tokens.issue({
            subject: opts.subject,
            roles: opts.role as (typeof ROLES)[number][],
            ttlSeconds: ttl,
            kind: opts.service ? 'service' : 'user',
          }),
        );
      },
    );
  token
    .command('print')
    .description(
      'Print the token saved by `ward demo`/`ward login`, refreshed first when it\n' +
        'expires within a minute. Example:\n' +
        '  OPENAI_API_KEY=$(ward token print)   # or PGPASSWORD=$(ward token print)',
    )
    .action(async () => {
      const saved = loadCredentials();
      if (!saved) throw new Error('not logged in: run `ward demo` or `ward login` first');
      print(await freshToken({ gateway: saved.gateway, token: saved.token, cached: saved }));
    });
  token
    .command('ssh')
    .description(
      'Print a short gateway-issued token for the same identity: the password for\n' +
        "an SSH login on the gateway's SSH listener (OpenSSH sends at most 1023 bytes\n" +
        'of password; an IdP token is often longer). The gateway issues it by token\n' +
        'exchange (RFC 8693, POST /api/v1/token) for your signed-in token; it lives\n' +
        'no longer than that token. Examples:\n' +
        '  ward token ssh   # then paste it at: ssh -p 7422 -l <conn> <host>\n' +
        '  sshpass -p "$(ward token ssh)" ssh -p 7422 -l <connection> <gateway host>',
    )
    .option('--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)')
    .action(async (opts: { gateway?: string }) => {
      const target = resolveTarget(opts);
      const exchanged = await exchangeToken(target, await freshToken(target));
      print(exchanged.access_token);
    });

  program
    .command('whoami')
    .description(
      'Show who the gateway thinks you are: subject, groups, roles, token issuer\n' +
        'and expiry (exit 1 with ERR_CLI_NOT_LOGGED_IN when not signed in). Example:\n' +
        '  ward whoami',
    )
    .option('--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)')
    .action(async (opts: { gateway?: string }) => {
      const target = resolveTarget(opts);
      const who = await apiJson<{
        subject: string;
        kind: string;
        roles: string[];
        groups?: string[];
        issuer?: string;
        expiresAt: string;
      }>(target, '/api/v1/whoami');
      const minutes = Math.round((Date.parse(who.expiresAt) - Date.now()) / 60_000);
      print(
        [
          `subject: ${who.subject} (${who.kind})`,
          `groups:  ${who.groups?.join(', ') || '-'}`,
          `roles:   ${who.roles.join(', ') || '-'}`,
          `issuer:  ${who.issuer ?? '-'}`,
          `expires: ${who.expiresAt}${Number.isFinite(minutes) ? ` (in ${minutes} min${target.cached?.refreshToken ? ', refreshed automatically' : ''})` : ''}`,
          `gateway: ${target.gateway}`,
        ].join('\n'),
      );
    });
}
