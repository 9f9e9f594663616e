export {
  AGENT_DEFAULTS,
  type AgentConfig,
  type AgentConnectionConfig,
  type AgentGatewayConfig,
  type AgentSecrets,
  agentConfigSchema,
  type HttpConnectionConfig,
  loadAgentConfig,
  type PostgresConnectionConfig,
  type PostgresTlsMode,
  parseAgentConfig,
  type ResolvedAgentConfig,
  resolveAgentSecrets,
  type SshConnectionConfig,
  type SshHostKey,
  type WithResolvedSecrets,
} from './agent-config.js';
export { type ResolveSecretOptions, resolveSecret, type SecretRef, secretRefSchema } from './secret-ref.js';
