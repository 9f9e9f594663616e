import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { WardError } from '@ward/protocol';
import type { Command } from 'commander';
import { apiJson, apiSend, resolveTarget } from '../api-client.js';
import { print, table } from '../output.js';

interface SshKey extends Record<string, unknown> {
  fingerprint: string;
  algorithm: string;
  comment: string;
  createdAt: string;
  lastUsedAt: string | null;
}

const GATEWAY_OPTION = ['--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)'] as const;

/**
 * `ward keys add|list|remove`: the SSH public keys that log in to the gateway's SSH listener as
 * you (`ssh -p 7422 -l <remote-user>@<connection> gateway-host`).
 */
export function registerSshKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description(
      "Manage the SSH public keys that log you in to the gateway's SSH listener.\n" +
        'A key logs in as you, with the roles you have when you add it; remove it to revoke it.\n' +
        'Then: ssh -p 7422 -l [<remote-user>@]<connection> <gateway-host>',
    );
  keys
    .command('add')
    .description('Register a public key (default ~/.ssh/id_ed25519.pub); prints its SHA256 fingerprint')
    .argument('[file]', 'public key file (one line, as ssh-keygen writes it)')
    .option('--comment <text>', "label shown by `ward keys list` (default: the key file's comment)")
    .option(...GATEWAY_OPTION)
    .action(async (file: string | undefined, opts: { comment?: string; gateway?: string }) => {
      const path = file ?? join(homedir(), '.ssh', 'id_ed25519.pub');
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        throw new WardError(
          'ERR_CLI_KEY_FILE',
          'not_found',
          `cannot read ${path}: generate a key with ssh-keygen -t ed25519`,
          {
            cause: err,
          },
        );
      }
      if (text.includes('PRIVATE KEY')) {
        throw new WardError('ERR_CLI_KEY_FILE', 'invalid_argument', `${path} is a private key: pass the .pub file`);
      }
      const { key } = await apiSend<{ key: SshKey }>(resolveTarget(opts), 'POST', '/api/v1/ssh-keys', {
        publicKey: text.trim(),
        ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
      });
      print(`added ${key.algorithm} ${key.fingerprint}${key.comment ? ` (${key.comment})` : ''}`);
    });
  keys
    .command('list')
    .description('List your registered SSH keys')
    .option('--json', 'print JSON')
    .option(...GATEWAY_OPTION)
    .action(async (opts: { json?: boolean; gateway?: string }) => {
      const { keys: rows } = await apiJson<{ keys: SshKey[] }>(resolveTarget(opts), '/api/v1/ssh-keys');
      if (opts.json) print(JSON.stringify(rows, null, 2));
      else if (rows.length === 0) print('No SSH keys registered. Add one with `ward keys add`.');
      else print(table(rows, ['fingerprint', 'algorithm', 'comment', 'createdAt', 'lastUsedAt']));
    });
  keys
    .command('remove')
    .description('Remove one of your SSH keys; it can no longer log in')
    .argument('<fingerprint>', 'SHA256:… as printed by `ward keys list`')
    .option(...GATEWAY_OPTION)
    .action(async (fingerprint: string, opts: { gateway?: string }) => {
      await apiSend(resolveTarget(opts), 'DELETE', `/api/v1/ssh-keys/${encodeURIComponent(fingerprint)}`);
      print(`removed ${fingerprint}`);
    });
}
