import { WardError } from '@ward/protocol';
import type { Command } from 'commander';
import { apiJson, apiSend, resolveTarget } from '../api-client.js';
import { print, table } from '../output.js';

interface ServiceAccount extends Record<string, unknown> {
  name: string;
  description: string;
  roles: string[];
  groups: string[];
  federated: { issuer: string; subject: string } | null;
  disabled: boolean;
  createdAt: string;
}

const GATEWAY_OPTION = ['--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)'] as const;
const ROLES = ['admin', 'auditor', 'approver', 'user'];

function printSecret(name: string, secret: string, gateway: string): void {
  print(`secret for ${name} (shown once; the gateway keeps only its hash):\n  ${secret}\n`);
  print(
    `get a token (valid minutes):\n  curl -s ${gateway}/api/v1/token -d grant_type=client_credentials -d client_id=${name} -d client_secret=<secret>`,
  );
}

/** `ward service-accounts create|list|disable|enable|rotate-secret` (admin role). */
export function registerServiceAccounts(program: Command): void {
  const sa = program
    .command('service-accounts')
    .description(
      'Service accounts: non-human identities (AI agents, jobs). Each gets short-lived tokens from\n' +
        'POST /api/v1/token with its secret (grant_type=client_credentials) or by exchanging a token\n' +
        'from its federated identity (token exchange). Needs the admin role. Grants apply as to people\n' +
        "(access.grants with identities: [service:<name>] or the account's groups).",
    );
  sa.command('create')
    .description('Create a service account and print its secret once')
    .argument('<name>', 'lower-case name, e.g. support-bot (its identity is service:<name>)')
    .option('--role <role...>', `roles: ${ROLES.join(', ')} (default user)`)
    .option('--group <group...>', 'groups, matched by access.grants[].groups')
    .option('--description <text>', 'what the account is for')
    .option(
      '--federated-issuer <iss>',
      'issuer of tokens that may be exchanged for this account (with --federated-subject)',
    )
    .option('--federated-subject <sub>', 'subject of those tokens')
    .option(...GATEWAY_OPTION)
    .addHelpText(
      'after',
      '\nExample:\n  ward service-accounts create support-bot --group llm-users --description "support triage agent"\n',
    )
    .action(
      async (
        name: string,
        opts: {
          role?: string[];
          group?: string[];
          description?: string;
          federatedIssuer?: string;
          federatedSubject?: string;
          gateway?: string;
        },
      ) => {
        if ((opts.federatedIssuer === undefined) !== (opts.federatedSubject === undefined)) {
          throw new WardError(
            'ERR_CLI_BAD_OPTION',
            'invalid_argument',
            '--federated-issuer and --federated-subject go together',
          );
        }
        const target = resolveTarget(opts);
        const { account, secret } = await apiSend<{ account: ServiceAccount; secret: string }>(
          target,
          'POST',
          '/api/v1/service-accounts',
          {
            name,
            ...(opts.role ? { roles: opts.role } : {}),
            ...(opts.group ? { groups: opts.group } : {}),
            ...(opts.description !== undefined ? { description: opts.description } : {}),
            ...(opts.federatedIssuer !== undefined
              ? { federated: { issuer: opts.federatedIssuer, subject: opts.federatedSubject } }
              : {}),
          },
        );
        print(
          `created service:${account.name} roles=${account.roles.join(',')} groups=${account.groups.join(',') || '-'}`,
        );
        printSecret(account.name, secret, target.gateway);
      },
    );
  sa.command('list')
    .description('List service accounts')
    .option('--json', 'print JSON')
    .option(...GATEWAY_OPTION)
    .action(async (opts: { json?: boolean; gateway?: string }) => {
      const { accounts } = await apiJson<{ accounts: ServiceAccount[] }>(
        resolveTarget(opts),
        '/api/v1/service-accounts',
      );
      if (opts.json) print(JSON.stringify(accounts, null, 2));
      else if (accounts.length === 0)
        print('No service accounts. Create one with `ward service-accounts create <name>`.');
      else print(table(accounts, ['name', 'roles', 'groups', 'disabled', 'federated', 'description', 'createdAt']));
    });
  for (const [verb, what] of [
    ['disable', 'Disable an account: its open sessions end at once and its tokens are refused'],
    ['enable', 'Enable a disabled account again'],
  ] as const) {
    sa.command(verb)
      .description(what)
      .argument('<name>', 'the account name')
      .option(...GATEWAY_OPTION)
      .action(async (name: string, opts: { gateway?: string }) => {
        const r = await apiSend<{ sessionsEnded: number }>(
          resolveTarget(opts),
          'POST',
          `/api/v1/service-accounts/${encodeURIComponent(name)}/${verb}`,
        );
        print(verb === 'disable' ? `disabled ${name}; ${r.sessionsEnded} open session(s) ended` : `enabled ${name}`);
      });
  }
  sa.command('rotate-secret')
    .description('Give an account a new secret (printed once); the old one stops working at once')
    .argument('<name>', 'the account name')
    .option(...GATEWAY_OPTION)
    .action(async (name: string, opts: { gateway?: string }) => {
      const target = resolveTarget(opts);
      const { secret } = await apiSend<{ secret: string }>(
        target,
        'POST',
        `/api/v1/service-accounts/${encodeURIComponent(name)}/rotate-secret`,
      );
      printSecret(name, secret, target.gateway);
    });
}
