import { parseDuration, WardError } from '@ward/protocol';
import type { Command } from 'commander';
import { apiJson, apiSend, resolveTarget } from '../api-client.js';
import { print, table } from '../output.js';

interface AccessRequest extends Record<string, unknown> {
  id: string;
  requester: string;
  connection: string;
  action: string;
  durationMs: number;
  reason: string;
  status: 'pending' | 'approved' | 'rejected';
  createdAt: string;
  decidedBy: string | null;
  decisionComment: string | null;
  grantId: string | null;
}

interface Grant extends Record<string, unknown> {
  id: string;
  identity: string;
  connection: string;
  action: string;
  startsAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

const GATEWAY_OPTION = ['--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)'] as const;

function durationText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `ward access request|list|approve|reject|revoke`: just-in-time access. A grant starts when
 * an approver (never the requester) approves, and ends by itself; open sessions end with it.
 */
export function registerAccess(program: Command): void {
  const access = program
    .command('access')
    .description(
      'Just-in-time access: ask for a time-boxed grant on a connection, approve or reject requests,\n' +
        'revoke grants. A grant starts at approval and expires by itself; when it expires or is revoked,\n' +
        "the grantee's open sessions on that connection end with the reason (psql, ssh, HTTP).",
    );
  access
    .command('request')
    .description('Ask for access to a connection for a while, with a reason an approver reads')
    .argument('<connection>', 'the connection, e.g. prod-pg')
    .requiredOption(
      '--for <duration>',
      'how long the grant lasts once approved: 30m, 1h, 2h30m (at most access.jit.maxDuration)',
    )
    .requiredOption('--reason <text>', 'why you need it (required; recorded), e.g. "INC-4211: fix stuck invoices"')
    .option('--action <action>', 'connect (psql, ssh shell, HTTP) or exec (ssh <command>, scp, sftp)', 'connect')
    .option('--wait', 'wait until the request is approved or rejected (exit 1 when rejected)')
    .option('--json', 'print JSON')
    .option(...GATEWAY_OPTION)
    .addHelpText(
      'after',
      '\nExample:\n  ward access request prod-pg --for 1h --reason "INC-4211: fix stuck invoices" --wait\n',
    )
    .action(
      async (
        connection: string,
        opts: { for: string; reason: string; action: string; wait?: boolean; json?: boolean; gateway?: string },
      ) => {
        if (opts.action !== 'connect' && opts.action !== 'exec') {
          throw new WardError('ERR_CLI_BAD_OPTION', 'invalid_argument', '--action must be connect or exec');
        }
        parseDuration(opts.for); // a clear local error before any request
        const target = resolveTarget(opts);
        const { request } = await apiSend<{ request: AccessRequest }>(target, 'POST', '/api/v1/access/requests', {
          connection,
          action: opts.action,
          duration: opts.for,
          reason: opts.reason,
        });
        if (!opts.wait) {
          if (opts.json) print(JSON.stringify(request, null, 2));
          else
            print(
              `requested ${request.id}: ${request.action} on ${connection} for ${durationText(request.durationMs)}; waiting for an approver (ward access approve ${request.id})`,
            );
          return;
        }
        if (!opts.json) print(`requested ${request.id}; waiting for an approver…`);
        let current = request;
        while (current.status === 'pending') {
          await sleep(1000);
          ({ request: current } = await apiJson<{ request: AccessRequest }>(
            target,
            `/api/v1/access/requests/${encodeURIComponent(request.id)}`,
          ));
        }
        if (opts.json) print(JSON.stringify(current, null, 2));
        else if (current.status === 'approved') print(`approved by ${current.decidedBy}: grant ${current.grantId}`);
        else print(`rejected by ${current.decidedBy}: ${current.decisionComment ?? ''}`);
        if (current.status !== 'approved') process.exitCode = 1;
      },
    );
  access
    .command('list')
    .description('List access requests (approvers, admins and auditors see all; others their own), or grants')
    .option('--pending', 'only requests waiting for a decision')
    .option('--grants', 'list just-in-time grants instead (live ones only)')
    .option('--json', 'print JSON')
    .option(...GATEWAY_OPTION)
    .action(async (opts: { pending?: boolean; grants?: boolean; json?: boolean; gateway?: string }) => {
      const target = resolveTarget(opts);
      if (opts.grants) {
        const { grants } = await apiJson<{ grants: Grant[] }>(target, '/api/v1/access/grants?live=true');
        if (opts.json) print(JSON.stringify(grants, null, 2));
        else if (grants.length === 0) print('No live grants.');
        else print(table(grants, ['id', 'identity', 'connection', 'action', 'startsAt', 'expiresAt']));
        return;
      }
      const { requests } = await apiJson<{ requests: AccessRequest[] }>(
        target,
        `/api/v1/access/requests${opts.pending ? '?status=pending' : ''}`,
      );
      if (opts.json) print(JSON.stringify(requests, null, 2));
      else if (requests.length === 0) print(opts.pending ? 'No pending requests.' : 'No requests.');
      else
        print(
          table(
            requests.map((r) => ({ ...r, for: durationText(r.durationMs) })),
            ['id', 'requester', 'connection', 'action', 'for', 'status', 'reason', 'decidedBy', 'grantId'],
          ),
        );
    });
  access
    .command('approve')
    .description('Approve a request (approver or admin role; never your own): the grant starts now')
    .argument('<id>', 'request id (req_…), from `ward access list --pending`')
    .option('--comment <text>', 'a note recorded with the approval')
    .option(...GATEWAY_OPTION)
    .action(async (id: string, opts: { comment?: string; gateway?: string }) => {
      const { grant } = await apiSend<{ grant: Grant }>(
        resolveTarget(opts),
        'POST',
        `/api/v1/access/requests/${encodeURIComponent(id)}/approve`,
        opts.comment !== undefined ? { comment: opts.comment } : {},
      );
      print(
        `approved: grant ${grant.id} lets ${grant.identity} ${grant.action} on ${grant.connection} until ${grant.expiresAt}`,
      );
    });
  access
    .command('reject')
    .description('Reject a request (approver or admin role; never your own), with a reason the requester sees')
    .argument('<id>', 'request id (req_…)')
    .requiredOption('--reason <text>', 'why (required; recorded)')
    .option(...GATEWAY_OPTION)
    .action(async (id: string, opts: { reason: string; gateway?: string }) => {
      await apiSend(resolveTarget(opts), 'POST', `/api/v1/access/requests/${encodeURIComponent(id)}/reject`, {
        reason: opts.reason,
      });
      print(`rejected ${id}`);
    });
  access
    .command('revoke')
    .description("Revoke a grant now (approver or admin, or the grantee); the grantee's open sessions on it end")
    .argument('<grant-id>', 'grant id (grt_…), from `ward access list --grants`')
    .option('--reason <text>', 'shown to the grantee and recorded', 'revoked')
    .option(...GATEWAY_OPTION)
    .action(async (grantId: string, opts: { reason: string; gateway?: string }) => {
      const { sessionsEnded } = await apiSend<{ sessionsEnded: number }>(
        resolveTarget(opts),
        'POST',
        `/api/v1/access/grants/${encodeURIComponent(grantId)}/revoke`,
        { reason: opts.reason },
      );
      print(`revoked ${grantId}; ${sessionsEnded} open session(s) ended`);
    });
}
