/**
 * Two SessionChannels joined back to back in memory, standing in for the gateway and agent ends
 * of one gRPC Session stream. Like grpc-js, `write` returns false once `highWaterMark` frames
 * wait for the peer, and frames are handed over one event-loop turn later.
 */
import { Duplex } from 'node:stream';
import { SessionChannel, type SessionChannelOptions, type SessionFrame, TUNNEL_DEFAULTS } from '@ward/protocol';

export interface ChannelPair {
  gateway: SessionChannel;
  agent: SessionChannel;
}

export function createChannelPair(
  options: Partial<SessionChannelOptions> & { highWaterMark?: number } = {},
): ChannelPair {
  const highWaterMark = options.highWaterMark ?? 16;
  let a: Duplex | undefined;
  let b: Duplex | undefined;
  const make = (peer: () => Duplex) =>
    new Duplex({
      objectMode: true,
      highWaterMark,
      read() {},
      write(frame: SessionFrame, _encoding, callback) {
        peer().push(frame);
        setImmediate(callback);
      },
      final(callback) {
        peer().push(null);
        callback();
      },
    });
  a = make(() => b as Duplex);
  b = make(() => a as Duplex);
  const opts: SessionChannelOptions = {
    windowBytes: options.windowBytes ?? TUNNEL_DEFAULTS.sessionWindowBytes,
    maxFrameBytes: options.maxFrameBytes ?? TUNNEL_DEFAULTS.maxFrameBytes,
  };
  return { gateway: new SessionChannel(a, opts), agent: new SessionChannel(b, opts) };
}
