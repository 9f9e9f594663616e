import { Command, CommanderError } from 'commander';
import { registerAccess } from './commands/access.js';
import { registerAudit } from './commands/audit.js';
import { registerConnect } from './commands/connect.js';
import { registerDemo } from './commands/demo.js';
import { registerExec } from './commands/exec.js';
import { registerKeys } from './commands/keys.js';
import { registerLogin } from './commands/login.js';
import { registerReplay } from './commands/replay.js';
import { registerRun } from './commands/run.js';
import { registerServiceAccounts } from './commands/service-accounts.js';
import { registerSessions } from './commands/sessions.js';
import { registerSshKeys } from './commands/ssh-keys.js';

export const VERSION = '0.1.0';

/**
 * Builds the `ward` command tree. A factory, so tests can run the CLI in-process.
 *
 * @example
 * await createProgram().parseAsync(['node', 'ward', 'audit', 'verify', 'audit.jsonl']);
 */
export function createProgram(): Command {
  const program = new Command('ward')
    .description(
      'ward: an identity-aware gateway to Postgres, SSH and HTTP/LLM APIs that checks, masks and records every session.\n' +
        'Start with `ward demo`.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });
  registerDemo(program);
  registerRun(program);
  registerLogin(program);
  registerConnect(program);
  registerExec(program);
  registerReplay(registerSessions(program));
  registerAudit(program);
  registerKeys(program);
  registerSshKeys(program);
  registerAccess(program);
  registerServiceAccounts(program);
  return program;
}

/** Runs the CLI; errors print as one clear line (code and message), never a stack. */
export async function main(argv: string[]): Promise<void> {
  const program = createProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode !== 0) process.exitCode = err.exitCode;
      return;
    }
    const e = err as { code?: string; message?: string };
    process.stderr.write(`ward: ${e.code?.startsWith('ERR_') ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
