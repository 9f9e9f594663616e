import { createRequire } from 'node:module';
import type { Connection } from 'ssh2';

// ssh2's public `disconnect(reason)` sends no description, and a bare "disconnected" is not a
// clear error. The description field of SSH_MSG_DISCONNECT (RFC 4253 §11.1) is what OpenSSH
// prints ("Received disconnect from …: <description>"), so it is written here through the same
// internals ssh2 uses for its own DISCONNECT. Feature-detected: if a later ssh2 moves them,
// the client still gets a disconnect, only without the text.
interface PacketWriter {
  allocStartKEX: number;
  alloc(size: number, force: boolean): Buffer;
  finalize(packet: Buffer, force: boolean): Buffer;
}
interface ProtocolInternals {
  _packetRW?: { write?: PacketWriter };
  disconnect(reason: number): void;
}

const require = createRequire(import.meta.url);
let sendPacket: ((proto: unknown, packet: Buffer, bypass?: boolean) => void) | undefined;
try {
  const utils = require('ssh2/lib/protocol/utils.js') as { sendPacket?: unknown };
  if (typeof utils.sendPacket === 'function') sendPacket = utils.sendPacket as typeof sendPacket;
} catch {
  sendPacket = undefined;
}

const SSH_MSG_DISCONNECT = 1;

/**
 * Ends a client connection with an SSH_MSG_DISCONNECT carrying `reason` (an SSH_DISCONNECT_*
 * code, see `WardError.sshDisconnect`) and a one-line description the user sees.
 */
export function disconnectWithMessage(conn: Connection, reason: number, message: string): void {
  const proto = (conn as unknown as { _protocol?: ProtocolInternals })._protocol;
  const writer = proto?._packetRW?.write;
  const text = Buffer.from(message.replace(/[\r\n]+/g, ' ').slice(0, 512), 'utf8');
  try {
    if (proto && writer && sendPacket && typeof writer.alloc === 'function') {
      const len = 1 + 4 + 4 + text.length + 4;
      let p = writer.allocStartKEX;
      const packet = writer.alloc(len, true);
      packet[p++] = SSH_MSG_DISCONNECT;
      packet.writeUInt32BE(reason >>> 0, p);
      p += 4;
      packet.writeUInt32BE(text.length, p);
      p += 4;
      text.copy(packet, p);
      p += text.length;
      packet.writeUInt32BE(0, p); // language tag: empty
      sendPacket(proto, writer.finalize(packet, true), true);
      // Not conn.end(): it would send a second, text-less DISCONNECT.
      const sock = (conn as unknown as { _sock?: { end(): void; writable?: boolean } })._sock;
      if (sock) {
        sock.end();
        return;
      }
    } else {
      proto?.disconnect(reason);
    }
  } catch {
    // The socket may already be gone; ending it below is all that is left to do.
  }
  conn.end();
}
