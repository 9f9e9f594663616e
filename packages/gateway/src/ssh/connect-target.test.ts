import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectTarget } from './username.js';

test('ward connect user names: the remote login, or the listener forms naming the same connection', () => {
  const cases: Array<[string, { connection: string; user: string } | undefined]> = [
    ['deploy', { connection: 'web', user: 'deploy' }],
    ['web', { connection: 'web', user: '' }],
    ['deploy@web', { connection: 'web', user: 'deploy' }],
    ['deploy@other', undefined],
    ['no/such', undefined],
    ['', undefined],
    ['a@b@web', undefined],
  ];
  for (const [name, expected] of cases) assert.deepEqual(connectTarget(name, 'web'), expected, name);
});
