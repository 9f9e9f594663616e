// Terminal mode opcodes of RFC 4254 §8 (and IUTF8, 42, from the IANA registry), as ssh2 names them.
const OPCODES: Readonly<Record<string, number>> = {
  VINTR: 1,
  VQUIT: 2,
  VERASE: 3,
  VKILL: 4,
  VEOF: 5,
  VEOL: 6,
  VEOL2: 7,
  VSTART: 8,
  VSTOP: 9,
  VSUSP: 10,
  VDSUSP: 11,
  VREPRINT: 12,
  VWERASE: 13,
  VLNEXT: 14,
  VFLUSH: 15,
  VSWTCH: 16,
  VSTATUS: 17,
  VDISCARD: 18,
  IGNPAR: 30,
  PARMRK: 31,
  INPCK: 32,
  ISTRIP: 33,
  INLCR: 34,
  IGNCR: 35,
  ICRNL: 36,
  IUCLC: 37,
  IXON: 38,
  IXANY: 39,
  IXOFF: 40,
  IMAXBEL: 41,
  IUTF8: 42,
  ISIG: 50,
  ICANON: 51,
  XCASE: 52,
  ECHO: 53,
  ECHOE: 54,
  ECHOK: 55,
  ECHONL: 56,
  NOFLSH: 57,
  TOSTOP: 58,
  IEXTEN: 59,
  ECHOCTL: 60,
  ECHOKE: 61,
  PENDIN: 62,
  OPOST: 70,
  OLCUC: 71,
  ONLCR: 72,
  OCRNL: 73,
  ONOCR: 74,
  ONLRET: 75,
  CS7: 90,
  CS8: 91,
  PARENB: 92,
  PARODD: 93,
  TTY_OP_ISPEED: 128,
  TTY_OP_OSPEED: 129,
};
const NAMES = new Map(Object.entries(OPCODES).map(([name, op]) => [op, name]));
const TTY_OP_END = 0;

/**
 * Encodes terminal modes (ssh2's `{ VINTR: 3, ECHO: 1, … }`) in the wire form of RFC 4254 §8:
 * opcode byte + uint32 value, ended by TTY_OP_END. This is what `SshPty.modes` carries through
 * the tunnel; unknown names are dropped (a server ignores opcodes it does not know anyway).
 */
export function encodeTerminalModes(modes: Readonly<Record<string, number | undefined>> | undefined): Uint8Array {
  const entries = Object.entries(modes ?? {}).filter(
    (e): e is [string, number] => OPCODES[e[0]] !== undefined && typeof e[1] === 'number' && Number.isFinite(e[1]),
  );
  const out = Buffer.alloc(entries.length * 5 + 1);
  let p = 0;
  for (const [name, value] of entries) {
    out[p++] = OPCODES[name] as number;
    out.writeUInt32BE(value >>> 0, p);
    p += 4;
  }
  out[p] = TTY_OP_END;
  return out;
}

/**
 * Decodes RFC 4254 §8 terminal modes into ssh2's object form (what `client.shell({ modes })`
 * takes). Stops at TTY_OP_END; opcodes 160-255 carry no defined argument and end parsing, as
 * the RFC says; unknown opcodes below 160 are skipped with their uint32.
 */
export function decodeTerminalModes(bytes: Uint8Array): Record<string, number> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const modes: Record<string, number> = {};
  let p = 0;
  while (p < buf.length) {
    const op = buf[p++] as number;
    if (op === TTY_OP_END || op >= 160 || p + 4 > buf.length) break;
    const value = buf.readUInt32BE(p);
    p += 4;
    const name = NAMES.get(op);
    if (name) modes[name] = value;
  }
  return modes;
}
