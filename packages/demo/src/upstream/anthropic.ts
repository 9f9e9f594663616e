import { badRequest, contentText, isRecord, SseWriter, sendJson, UpstreamHttpError } from './http.js';
import { findModel } from './models.js';
import type { RouteContext } from './route-context.js';
import {
  composeReply,
  countTokens,
  requestedToolName,
  splitTokens,
  stableId,
  toolArguments,
  truncateToTokens,
} from './text.js';

/** Turns a model lookup failure into Anthropic's vocabulary (`not_found_error`). */
function anthropicModel(id: unknown): string {
  try {
    return findModel(id, 'chat').id;
  } catch (err) {
    if (err instanceof UpstreamHttpError && err.status === 404)
      throw new UpstreamHttpError(404, 'not_found_error', `model: ${String(id)}`);
    throw err;
  }
}

/** POST /v1/messages (Anthropic Messages API). */
export async function messages(ctx: RouteContext): Promise<void> {
  const body = ctx.body;
  if (typeof ctx.req.headers['anthropic-version'] !== 'string') {
    throw badRequest('anthropic-version: header is required');
  }
  const model = anthropicModel(body.model);
  if (typeof body.max_tokens !== 'number' || !Number.isInteger(body.max_tokens) || body.max_tokens < 1) {
    throw badRequest('max_tokens: Field required (a positive integer)');
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0)
    throw badRequest('messages: at least one message is required');
  const turns = body.messages.map((m: unknown, i: number) => {
    if (!isRecord(m) || (m.role !== 'user' && m.role !== 'assistant'))
      throw badRequest(`messages.${i}.role: must be "user" or "assistant"`);
    const blocks = Array.isArray(m.content) ? m.content : [];
    const toolResult = blocks.find((b: unknown) => isRecord(b) && b.type === 'tool_result');
    const text = isRecord(toolResult) ? contentText(toolResult.content) : contentText(m.content);
    return { role: isRecord(toolResult) ? 'tool' : m.role, text };
  });
  const system = typeof body.system === 'string' ? body.system : contentText(body.system);
  const inputTokens = countTokens([system, ...turns.map((t) => t.text)].filter(Boolean).join('\n'));
  const seed = JSON.stringify([body.system ?? null, body.messages]);
  const id = `msg_${stableId(seed)}`;
  const last = turns.at(-1);
  const lastUser = [...turns].reverse().find((t) => t.role === 'user')?.text ?? '';

  const tools = new Map<string, unknown>();
  if (Array.isArray(body.tools))
    for (const t of body.tools) if (isRecord(t) && typeof t.name === 'string') tools.set(t.name, t.input_schema);
  const wanted = requestedToolName(lastUser);
  const toolChoiceNone = isRecord(body.tool_choice) && body.tool_choice.type === 'none';

  let block:
    | { type: 'text'; text: string }
    | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };
  let stopReason: 'end_turn' | 'max_tokens' | 'tool_use';
  let outputTokens: number;
  if (last?.role !== 'tool' && !toolChoiceNone && wanted !== undefined && tools.has(wanted)) {
    const input = toolArguments(tools.get(wanted), lastUser, wanted);
    block = { type: 'tool_use', id: `toolu_${stableId(`${seed}:tool`)}`, name: wanted, input };
    stopReason = 'tool_use';
    outputTokens = countTokens(wanted + JSON.stringify(input));
  } else {
    const full = last?.role === 'tool' ? `The tool returned: ${last.text.slice(0, 200)}` : composeReply(lastUser);
    const { text, truncated } = truncateToTokens(full, body.max_tokens);
    block = { type: 'text', text };
    stopReason = truncated ? 'max_tokens' : 'end_turn';
    outputTokens = countTokens(text);
  }
  const message = (content: unknown[], stop: string | null, out: number) => ({
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: {
      input_tokens: inputTokens,
      output_tokens: out,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    },
  });

  if (body.stream !== true) {
    sendJson(ctx.res, 200, message([block], stopReason, outputTokens));
    return;
  }
  const sse = new SseWriter(ctx.res, ctx.tokenDelayMs, ctx.signal);
  const emit = (type: string, fields: Record<string, unknown>) => sse.send({ type, ...fields }, type);
  await emit('message_start', { message: message([], null, 1) });
  if (block.type === 'tool_use') {
    await emit('content_block_start', { index: 0, content_block: { ...block, input: {} } });
    const json = JSON.stringify(block.input);
    const third = Math.max(1, Math.ceil(json.length / 3));
    for (let i = 0; i < json.length; i += third) {
      await emit('content_block_delta', {
        index: 0,
        delta: { type: 'input_json_delta', partial_json: json.slice(i, i + third) },
      });
    }
  } else {
    await emit('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    await emit('ping', {});
    for (const text of splitTokens(block.text)) {
      await emit('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
    }
  }
  await emit('content_block_stop', { index: 0 });
  await emit('message_delta', {
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: outputTokens },
  });
  await emit('message_stop', {});
  sse.end();
}
