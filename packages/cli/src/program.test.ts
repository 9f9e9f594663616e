import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from 'commander';
import { createProgram } from './program.js';

function leaves(command: Command, path: string[] = []): Array<{ path: string[]; command: Command }> {
  const here = [...path, command.name()];
  if (command.commands.length === 0) return [{ path: here, command }];
  return command.commands.flatMap((c) => leaves(c, here));
}

test('every command has a description and complete --help', () => {
  const program = createProgram();
  const all = leaves(program);
  assert.ok(all.length >= 13, `expected the whole command tree, found ${all.length}`);
  for (const { path, command } of all) {
    assert.ok(command.description().length > 20, `${path.join(' ')} needs a real description`);
    const help = command.helpInformation();
    assert.match(help, /^Usage: /, path.join(' '));
    for (const option of command.options) {
      assert.ok((option.description ?? '').length > 5, `${path.join(' ')} ${option.flags} needs a description`);
    }
  }
  for (const group of program.commands.filter((c) => c.commands.length > 0)) {
    assert.ok(group.description().length > 10, `${group.name()} group needs a description`);
  }
});

test('the documented commands exist', () => {
  const names = new Set(leaves(createProgram()).map(({ path }) => path.slice(1).join(' ')));
  for (const expected of [
    'demo',
    'gateway',
    'agent',
    'connect',
    'exec',
    'sessions list',
    'sessions show',
    'audit export',
    'audit verify',
    'agent-key create',
    'token issue',
    'whoami',
    'login',
    'logout',
    'token ssh',
    'token print',
  ]) {
    assert.ok(names.has(expected), `ward ${expected}`);
  }
});

test('an unknown command fails with a usage hint, not a stack trace', async () => {
  const program = createProgram();
  program.exitOverride();
  let stderr = '';
  program.configureOutput({ writeErr: (s) => (stderr += s), writeOut: () => {} });
  await assert.rejects(
    program.parseAsync(['node', 'ward', 'nosuchcommand']),
    (err: { code?: string }) => err.code === 'commander.unknownCommand',
  );
  assert.match(stderr, /unknown command/);
});
