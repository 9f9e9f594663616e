import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeTerminalModes, encodeTerminalModes } from './pty-modes.js';

test('terminal modes round-trip through the RFC 4254 §8 encoding', () => {
  const modes = { VINTR: 3, VERASE: 127, ECHO: 1, ICANON: 1, IUTF8: 1, TTY_OP_ISPEED: 38400, TTY_OP_OSPEED: 38400 };
  const bytes = encodeTerminalModes(modes);
  assert.equal(bytes.length, Object.keys(modes).length * 5 + 1);
  assert.equal(bytes[bytes.length - 1], 0);
  assert.deepEqual(decodeTerminalModes(bytes), modes);
});

test('unknown names are dropped; decoding stops at TTY_OP_END, opcodes >= 160 and truncation', () => {
  assert.deepEqual([...encodeTerminalModes({ NOPE: 1 } as Record<string, number>)], [0]);
  assert.deepEqual([...encodeTerminalModes(undefined)], [0]);
  assert.deepEqual(decodeTerminalModes(Buffer.from([53, 0, 0, 0, 1, 0, 51, 0, 0, 0, 1])), { ECHO: 1 });
  assert.deepEqual(decodeTerminalModes(Buffer.from([53, 0, 0, 0, 1, 200, 0, 0, 0, 1])), { ECHO: 1 });
  assert.deepEqual(decodeTerminalModes(Buffer.from([53, 0, 0])), {});
  assert.deepEqual(decodeTerminalModes(Buffer.from([99, 0, 0, 0, 7, 53, 0, 0, 0, 0])), { ECHO: 0 });
});
