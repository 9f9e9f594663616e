export {
  classifyLlmRequest,
  inspectLlmRequest,
  type LlmApi,
  type LlmEndpoint,
  type LlmRequestFacts,
} from './llm-endpoint.js';
export {
  chargedTokens,
  LlmAssembler,
  type LlmResult,
  type LlmToolCall,
  type LlmUsage,
  parseUsage,
  usageFromTail,
} from './llm-result.js';
export {
  type Admission,
  type ConnectionLimits,
  type LimitName,
  RateLimiter,
  type RateLimiterOptions,
} from './rate-limiter.js';
export { formatSseEvent, isEmptyEvent, type SseEvent, SseParser, type SseParserOptions } from './sse-parser.js';
