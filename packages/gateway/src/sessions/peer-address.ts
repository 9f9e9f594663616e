/** A client's address as sessions and audit records show it: `ip:port`, `[v6]:port`. */
export function peerAddress(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress?.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
}
