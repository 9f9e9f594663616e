import type { WardError } from '@ward/protocol';

export type ConnectionKind = 'postgres' | 'ssh' | 'http';

/** Agent-level happenings the gateway records (audit) and logs. */
export interface TunnelEvent {
  kind: 'agent.online' | 'agent.offline' | 'agent.refused' | 'agent.connection_rejected' | 'agent.protocol_error';
  agent?: string | undefined;
  peer: string;
  connection?: string;
  connections?: string[];
  error?: WardError;
}
