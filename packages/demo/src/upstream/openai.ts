import { badRequest, contentText, isRecord, SseWriter, sendJson } from './http.js';
import { DEMO_MODELS, findModel, modelObject } from './models.js';
import type { RouteContext } from './route-context.js';
import {
  composeReply,
  countTokens,
  embed,
  requestedToolName,
  splitTokens,
  stableId,
  toolArguments,
  truncateToTokens,
} from './text.js';

const FINGERPRINT = 'fp_ward_demo';
const MAX_EMBEDDING_DIMENSIONS = 3072;
const DEFAULT_EMBEDDING_DIMENSIONS = 256;

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

interface Answer {
  content: string | null;
  toolCall: ToolCall | null;
  finishReason: 'stop' | 'length' | 'tool_calls';
  promptTokens: number;
  completionTokens: number;
}

/** The tool names a request declares, in either the Chat Completions or the Responses shape. */
function declaredTools(tools: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (!Array.isArray(tools)) return out;
  for (const t of tools) {
    if (!isRecord(t)) continue;
    const fn = isRecord(t.function) ? t.function : t;
    if (typeof fn.name === 'string') out.set(fn.name, fn.parameters);
  }
  return out;
}

/**
 * Decides what the model says, from the conversation alone. `turns` is the conversation as
 * (role, text) pairs; the last user turn drives the reply, a trailing tool result is echoed.
 */
function answer(
  turns: { role: string; text: string }[],
  tools: unknown,
  toolChoice: unknown,
  maxTokens: unknown,
  seed: string,
): Answer {
  const promptTokens = countTokens(turns.map((t) => t.text).join('\n'));
  const last = turns.at(-1);
  const lastUser = [...turns].reverse().find((t) => t.role === 'user')?.text ?? '';
  const declared = declaredTools(tools);
  const wanted = requestedToolName(lastUser);
  if (last?.role !== 'tool' && toolChoice !== 'none' && wanted !== undefined && declared.has(wanted)) {
    const args = JSON.stringify(toolArguments(declared.get(wanted), lastUser, wanted));
    return {
      content: null,
      toolCall: {
        id: `call_${stableId(`${seed}:tool`)}`,
        type: 'function',
        function: { name: wanted, arguments: args },
      },
      finishReason: 'tool_calls',
      promptTokens,
      completionTokens: countTokens(wanted + args),
    };
  }
  const full = last?.role === 'tool' ? `The tool returned: ${last.text.slice(0, 200)}` : composeReply(lastUser);
  const limit = typeof maxTokens === 'number' && Number.isInteger(maxTokens) && maxTokens > 0 ? maxTokens : undefined;
  const { text, truncated } = truncateToTokens(full, limit);
  return {
    content: text,
    toolCall: null,
    finishReason: truncated ? 'length' : 'stop',
    promptTokens,
    completionTokens: countTokens(text),
  };
}

function usageOf(a: Answer): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return {
    prompt_tokens: a.promptTokens,
    completion_tokens: a.completionTokens,
    total_tokens: a.promptTokens + a.completionTokens,
  };
}

/** Splits `s` into at most `n` non-empty pieces, so tool-call arguments stream as several deltas. */
function pieces(s: string, n: number): string[] {
  const size = Math.max(1, Math.ceil(s.length / n));
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

/** POST /v1/chat/completions */
export async function chatCompletions(ctx: RouteContext): Promise<void> {
  const body = ctx.body;
  const model = findModel(body.model, 'chat');
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw badRequest('messages must be a non-empty array', 'messages');
  }
  const turns = body.messages.map((m: unknown, i: number) => {
    if (!isRecord(m) || typeof m.role !== 'string')
      throw badRequest(`messages[${i}] must be an object with a role`, `messages[${i}]`);
    return { role: m.role, text: contentText(m.content) };
  });
  const seed = JSON.stringify(body.messages);
  const a = answer(turns, body.tools, body.tool_choice, body.max_completion_tokens ?? body.max_tokens, seed);
  const id = `chatcmpl-${stableId(seed)}`;
  const created = Math.floor(Date.now() / 1000);

  if (body.stream !== true) {
    sendJson(ctx.res, 200, {
      id,
      object: 'chat.completion',
      created,
      model: model.id,
      system_fingerprint: FINGERPRINT,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: a.content,
            refusal: null,
            annotations: [],
            ...(a.toolCall ? { tool_calls: [a.toolCall] } : {}),
          },
          logprobs: null,
          finish_reason: a.finishReason,
        },
      ],
      usage: usageOf(a),
    });
    return;
  }

  const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
  const sse = new SseWriter(ctx.res, ctx.tokenDelayMs, ctx.signal);
  const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: model.id,
    system_fingerprint: FINGERPRINT,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  await sse.send(chunk({ role: 'assistant', content: a.toolCall ? null : '', refusal: null }, null));
  if (a.toolCall) {
    const tc = a.toolCall;
    await sse.send(
      chunk(
        {
          tool_calls: [{ index: 0, id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } }],
        },
        null,
      ),
    );
    for (const piece of pieces(tc.function.arguments, 3)) {
      await sse.send(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }, null));
    }
  } else {
    for (const token of splitTokens(a.content ?? '')) await sse.send(chunk({ content: token }, null));
  }
  await sse.send(chunk({}, a.finishReason));
  if (includeUsage) {
    await sse.send({
      id,
      object: 'chat.completion.chunk',
      created,
      model: model.id,
      system_fingerprint: FINGERPRINT,
      choices: [],
      usage: usageOf(a),
    });
  }
  await sse.send('[DONE]');
  sse.end();
}

/** POST /v1/embeddings */
export async function embeddings(ctx: RouteContext): Promise<void> {
  const body = ctx.body;
  const model = findModel(body.model, 'embedding');
  const texts = embeddingInputs(body.input);
  let dimensions = DEFAULT_EMBEDDING_DIMENSIONS;
  if (body.dimensions !== undefined) {
    if (
      typeof body.dimensions !== 'number' ||
      !Number.isInteger(body.dimensions) ||
      body.dimensions < 1 ||
      body.dimensions > MAX_EMBEDDING_DIMENSIONS
    ) {
      throw badRequest(`dimensions must be an integer in 1..${MAX_EMBEDDING_DIMENSIONS}`, 'dimensions');
    }
    dimensions = body.dimensions;
  }
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64')
    throw badRequest("encoding_format must be 'float' or 'base64'", 'encoding_format');
  let promptTokens = 0;
  const data = texts.map(({ text, tokens }, index) => {
    promptTokens += tokens;
    const vector = embed(text, dimensions, model.id);
    // base64 is the little-endian float32 array, which is what the openai SDK decodes.
    const embedding =
      format === 'base64'
        ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64')
        : Array.from(vector);
    return { object: 'embedding', index, embedding };
  });
  sendJson(ctx.res, 200, {
    object: 'list',
    data,
    model: model.id,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
}

function embeddingInputs(input: unknown): { text: string; tokens: number }[] {
  const isTokenArray = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x));
  if (typeof input === 'string' && input.length > 0) return [{ text: input, tokens: countTokens(input) }];
  if (isTokenArray(input)) return [{ text: input.join(','), tokens: input.length }];
  if (Array.isArray(input) && input.length > 0) {
    return input.map((item: unknown, i: number) => {
      if (typeof item === 'string' && item.length > 0) return { text: item, tokens: countTokens(item) };
      if (isTokenArray(item)) return { text: item.join(','), tokens: item.length };
      throw badRequest(`input[${i}] must be a non-empty string or an array of token ids`, 'input');
    });
  }
  throw badRequest('input must be a non-empty string, an array of strings, or token arrays', 'input');
}

/** GET /v1/models */
export async function listModels(ctx: RouteContext): Promise<void> {
  sendJson(ctx.res, 200, { object: 'list', data: DEMO_MODELS.map(modelObject) });
}

/** GET /v1/models/:id */
export async function getModel(ctx: RouteContext): Promise<void> {
  sendJson(ctx.res, 200, modelObject(findModel(ctx.params.id)));
}

/** The Responses API's `input`: a string, or a list of message items and tool outputs. */
function responseTurns(input: unknown, instructions: unknown): { role: string; text: string }[] {
  const turns: { role: string; text: string }[] = [];
  if (typeof instructions === 'string' && instructions.length > 0) turns.push({ role: 'system', text: instructions });
  if (typeof input === 'string') {
    turns.push({ role: 'user', text: input });
    return turns;
  }
  if (!Array.isArray(input) || input.length === 0)
    throw badRequest('input must be a string or a non-empty array', 'input');
  for (const item of input) {
    if (!isRecord(item)) throw badRequest('input items must be objects', 'input');
    if (item.type === 'function_call_output')
      turns.push({ role: 'tool', text: typeof item.output === 'string' ? item.output : JSON.stringify(item.output) });
    else if (typeof item.role === 'string') turns.push({ role: item.role, text: contentText(item.content) });
  }
  return turns;
}

/** POST /v1/responses */
export async function responses(ctx: RouteContext): Promise<void> {
  const body = ctx.body;
  const model = findModel(body.model, 'chat');
  const turns = responseTurns(body.input, body.instructions);
  const seed = JSON.stringify([body.instructions ?? null, body.input]);
  const a = answer(turns, body.tools, body.tool_choice, body.max_output_tokens, seed);
  const id = `resp_${stableId(seed, 32)}`;
  const itemId = a.toolCall ? `fc_${stableId(`${seed}:fc`, 32)}` : `msg_${stableId(`${seed}:msg`, 32)}`;
  const createdAt = Math.floor(Date.now() / 1000);
  const usage = {
    input_tokens: a.promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: a.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: a.promptTokens + a.completionTokens,
  };
  const text = a.content ?? '';
  const part = { type: 'output_text', text, annotations: [], logprobs: [] };
  const item = a.toolCall
    ? {
        type: 'function_call',
        id: itemId,
        call_id: a.toolCall.id,
        name: a.toolCall.function.name,
        arguments: a.toolCall.function.arguments,
        status: 'completed',
      }
    : { type: 'message', id: itemId, status: 'completed', role: 'assistant', content: [part] };
  const incomplete = a.finishReason === 'length';
  const response = (status: string, output: unknown[], withUsage: boolean) => ({
    id,
    object: 'response',
    created_at: createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    max_output_tokens: typeof body.max_output_tokens === 'number' ? body.max_output_tokens : null,
    model: model.id,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    top_p: 1,
    truncation: 'disabled',
    usage: withUsage ? usage : null,
    metadata: {},
  });
  const finalStatus = incomplete ? 'incomplete' : 'completed';

  if (body.stream !== true) {
    sendJson(ctx.res, 200, response(finalStatus, [item], true));
    return;
  }

  const sse = new SseWriter(ctx.res, ctx.tokenDelayMs, ctx.signal);
  let seq = 0;
  const emit = (type: string, fields: Record<string, unknown>) =>
    sse.send({ type, sequence_number: seq++, ...fields }, type);
  await emit('response.created', { response: response('in_progress', [], false) });
  await emit('response.in_progress', { response: response('in_progress', [], false) });
  if (a.toolCall) {
    await emit('response.output_item.added', {
      output_index: 0,
      item: { ...item, arguments: '', status: 'in_progress' },
    });
    for (const delta of pieces(a.toolCall.function.arguments, 3)) {
      await emit('response.function_call_arguments.delta', { item_id: itemId, output_index: 0, delta });
    }
    await emit('response.function_call_arguments.done', {
      item_id: itemId,
      output_index: 0,
      arguments: a.toolCall.function.arguments,
    });
  } else {
    await emit('response.output_item.added', {
      output_index: 0,
      item: { ...item, status: 'in_progress', content: [] },
    });
    await emit('response.content_part.added', {
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      part: { ...part, text: '' },
    });
    for (const delta of splitTokens(text)) {
      await emit('response.output_text.delta', {
        item_id: itemId,
        output_index: 0,
        content_index: 0,
        delta,
        logprobs: [],
      });
    }
    await emit('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text, logprobs: [] });
    await emit('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part });
  }
  await emit('response.output_item.done', { output_index: 0, item });
  await emit(incomplete ? 'response.incomplete' : 'response.completed', {
    response: response(finalStatus, [item], true),
  });
  sse.end();
}
