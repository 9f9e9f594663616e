import { isRecord, type LlmEndpoint } from './llm-endpoint.js';
import type { SseEvent } from './sse-parser.js';

/** Token usage as the upstream reported it: OpenAI's prompt/completion/total, Anthropic's input/output. */
export interface LlmUsage {
  promptTokens?: number;
  completionTokens?: number;
  totalTokens?: number;
  inputTokens?: number;
  outputTokens?: number;
}

export interface LlmToolCall {
  id?: string;
  name: string;
  /** The arguments as the model produced them (a JSON text), reassembled from its deltas. */
  arguments: string;
}

/** What an exchange amounted to: the model's answer, reassembled when it was streamed. */
export interface LlmResult {
  model?: string;
  usage?: LlmUsage;
  /** The answer's text (first choice / output), capped at the assembler's limit. */
  text: string;
  textTruncated: boolean;
  toolCalls: LlmToolCall[];
  finishReason?: string;
  /** SSE events seen (0 for a plain JSON answer). */
  events: number;
}

/** The tokens a rate limit charges for a usage: the total, or the sum of its parts. */
export function chargedTokens(usage: LlmUsage | undefined): number {
  if (!usage) return 0;
  if (usage.totalTokens !== undefined) return usage.totalTokens;
  return (
    (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0) + (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0)
  );
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Reads a `usage` object in any of the three vendors' shapes. */
export function parseUsage(v: unknown): LlmUsage | undefined {
  if (!isRecord(v)) return undefined;
  const usage: LlmUsage = {};
  const set = (key: keyof LlmUsage, value: unknown) => {
    const n = num(value);
    if (n !== undefined) usage[key] = n;
  };
  set('promptTokens', v['prompt_tokens']);
  set('completionTokens', v['completion_tokens']);
  set('inputTokens', v['input_tokens']);
  set('outputTokens', v['output_tokens']);
  set('totalTokens', v['total_tokens']);
  return Object.keys(usage).length > 0 ? usage : undefined;
}

/**
 * Rebuilds an LLM answer from its SSE events (chat completion chunks, Responses API events,
 * Anthropic message events) or from a whole JSON body. Memory is bounded: text and tool-call
 * arguments stop growing at `maxTextChars` in total.
 *
 * @example
 * const a = new LlmAssembler('chat.completions', 64 * 1024);
 * for (const e of events) a.event(e);
 * a.result().text; // the concatenated deltas
 */
export class LlmAssembler {
  readonly #endpoint: LlmEndpoint;
  readonly #max: number;
  #chars = 0;
  #text: string[] = [];
  #textTruncated = false;
  /** Tool calls by their stream position (chat `index`, Responses `output_index`, Anthropic `index`). */
  readonly #tools = new Map<number, { id?: string; name: string; args: string[] }>();
  #model: string | undefined;
  #usage: LlmUsage | undefined;
  #finish: string | undefined;
  #events = 0;

  constructor(endpoint: LlmEndpoint, maxTextChars: number) {
    this.#endpoint = endpoint;
    this.#max = maxTextChars;
  }

  /** One SSE event of a streamed answer; events it does not understand are counted and ignored. */
  event(event: SseEvent): void {
    if (event.data === '' || event.data === '[DONE]') return;
    this.#events++;
    let json: unknown;
    try {
      json = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!isRecord(json)) return;
    switch (this.#endpoint) {
      case 'chat.completions':
        this.#chatChunk(json);
        return;
      case 'responses':
        this.#responsesEvent(json);
        return;
      case 'messages':
        this.#anthropicEvent(json);
        return;
      default:
        return;
    }
  }

  /** A whole (non-streamed) JSON answer. */
  body(json: unknown): void {
    if (!isRecord(json)) return;
    this.#model = str(json['model']) ?? this.#model;
    this.#usage = parseUsage(json['usage']) ?? this.#usage;
    switch (this.#endpoint) {
      case 'chat.completions': {
        const choice = firstChoice(json);
        const message = isRecord(choice?.['message']) ? choice['message'] : undefined;
        if (message) {
          this.#appendText(str(message['content']) ?? '');
          if (Array.isArray(message['tool_calls'])) {
            message['tool_calls'].forEach((tc: unknown, i: number) => {
              if (!isRecord(tc) || !isRecord(tc['function'])) return;
              this.#tool(i, str(tc['id']), str(tc['function']['name']), str(tc['function']['arguments']));
            });
          }
        }
        this.#finish = str(choice?.['finish_reason']) ?? this.#finish;
        return;
      }
      case 'responses':
        this.#responseObject(json);
        return;
      case 'messages':
        if (Array.isArray(json['content'])) {
          json['content'].forEach((block: unknown, i: number) => {
            if (!isRecord(block)) return;
            if (block['type'] === 'text') this.#appendText(str(block['text']) ?? '');
            else if (block['type'] === 'tool_use')
              this.#tool(i, str(block['id']), str(block['name']), JSON.stringify(block['input'] ?? {}));
          });
        }
        this.#finish = str(json['stop_reason']) ?? this.#finish;
        return;
      default:
        return;
    }
  }

  /** Only the usage, e.g. found in the tail of a body too large to keep whole. */
  usage(usage: LlmUsage): void {
    this.#usage = usage;
  }

  result(): LlmResult {
    const toolCalls = [...this.#tools.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, t]) => ({ ...(t.id !== undefined ? { id: t.id } : {}), name: t.name, arguments: t.args.join('') }));
    return {
      ...(this.#model !== undefined ? { model: this.#model } : {}),
      ...(this.#usage !== undefined ? { usage: this.#usage } : {}),
      text: this.#text.join(''),
      textTruncated: this.#textTruncated,
      toolCalls,
      ...(this.#finish !== undefined ? { finishReason: this.#finish } : {}),
      events: this.#events,
    };
  }

  #chatChunk(json: Record<string, unknown>): void {
    this.#model = str(json['model']) ?? this.#model;
    // With stream_options.include_usage the last chunk has `usage` and no choices.
    const usage = parseUsage(json['usage']);
    if (usage) this.#usage = usage;
    if (!Array.isArray(json['choices'])) return;
    for (const choice of json['choices']) {
      // The recording keeps the first choice; n > 1 answers are in the response blob.
      if (!isRecord(choice) || (num(choice['index']) ?? 0) !== 0) continue;
      const delta = isRecord(choice['delta']) ? choice['delta'] : {};
      const content = str(delta['content']);
      if (content) this.#appendText(content);
      if (Array.isArray(delta['tool_calls'])) {
        for (const tc of delta['tool_calls']) {
          if (!isRecord(tc)) continue;
          const fn = isRecord(tc['function']) ? tc['function'] : {};
          this.#tool(num(tc['index']) ?? 0, str(tc['id']), str(fn['name']), str(fn['arguments']));
        }
      }
      this.#finish = str(choice['finish_reason']) ?? this.#finish;
    }
  }

  #responsesEvent(json: Record<string, unknown>): void {
    const type = str(json['type']) ?? '';
    const index = num(json['output_index']) ?? 0;
    switch (type) {
      case 'response.created':
      case 'response.in_progress':
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        if (isRecord(json['response'])) {
          const r = json['response'];
          this.#model = str(r['model']) ?? this.#model;
          const usage = parseUsage(r['usage']);
          if (usage) this.#usage = usage;
          if (type !== 'response.created' && type !== 'response.in_progress') this.#finish = str(r['status']);
        }
        return;
      case 'response.output_text.delta':
        this.#appendText(str(json['delta']) ?? '');
        return;
      case 'response.output_item.added': {
        const item = isRecord(json['item']) ? json['item'] : {};
        if (item['type'] === 'function_call') this.#tool(index, str(item['call_id']), str(item['name']), undefined);
        return;
      }
      case 'response.function_call_arguments.delta':
        this.#tool(index, undefined, undefined, str(json['delta']));
        return;
      default:
        return;
    }
  }

  #responseObject(r: Record<string, unknown>): void {
    this.#finish = str(r['status']) ?? this.#finish;
    if (!Array.isArray(r['output'])) return;
    r['output'].forEach((item: unknown, i: number) => {
      if (!isRecord(item)) return;
      if (item['type'] === 'function_call') {
        this.#tool(i, str(item['call_id']), str(item['name']), str(item['arguments']));
      } else if (item['type'] === 'message' && Array.isArray(item['content'])) {
        for (const part of item['content'])
          if (isRecord(part) && part['type'] === 'output_text') this.#appendText(str(part['text']) ?? '');
      }
    });
  }

  #anthropicEvent(json: Record<string, unknown>): void {
    const index = num(json['index']) ?? 0;
    switch (json['type']) {
      case 'message_start': {
        const m = isRecord(json['message']) ? json['message'] : {};
        this.#model = str(m['model']) ?? this.#model;
        const usage = parseUsage(m['usage']);
        if (usage) this.#usage = usage;
        return;
      }
      case 'content_block_start': {
        const block = isRecord(json['content_block']) ? json['content_block'] : {};
        if (block['type'] === 'tool_use') this.#tool(index, str(block['id']), str(block['name']), undefined);
        else if (block['type'] === 'text') this.#appendText(str(block['text']) ?? '');
        return;
      }
      case 'content_block_delta': {
        const delta = isRecord(json['delta']) ? json['delta'] : {};
        if (delta['type'] === 'text_delta') this.#appendText(str(delta['text']) ?? '');
        else if (delta['type'] === 'input_json_delta')
          this.#tool(index, undefined, undefined, str(delta['partial_json']));
        return;
      }
      case 'message_delta': {
        const delta = isRecord(json['delta']) ? json['delta'] : {};
        this.#finish = str(delta['stop_reason']) ?? this.#finish;
        // message_delta's usage holds the cumulative output count; input stays from message_start.
        const usage = parseUsage(json['usage']);
        if (usage) this.#usage = { ...this.#usage, ...usage };
        return;
      }
      default:
        return;
    }
  }

  #appendText(text: string): void {
    if (text.length === 0) return;
    const room = this.#max - this.#chars;
    if (room <= 0) {
      this.#textTruncated = true;
      return;
    }
    const piece = text.length > room ? text.slice(0, room) : text;
    if (piece.length < text.length) this.#textTruncated = true;
    this.#text.push(piece);
    this.#chars += piece.length;
  }

  #tool(index: number, id: string | undefined, name: string | undefined, args: string | undefined): void {
    let t = this.#tools.get(index);
    if (!t) {
      // Bounded like the text: a stream cannot grow the map without limit either.
      if (this.#tools.size >= 128) return;
      t = { name: '', args: [] };
      this.#tools.set(index, t);
    }
    if (id) t.id = id;
    if (name) t.name = name;
    if (args) {
      const room = this.#max - this.#chars;
      if (room <= 0) {
        this.#textTruncated = true;
        return;
      }
      const piece = args.length > room ? args.slice(0, room) : args;
      t.args.push(piece);
      this.#chars += piece.length;
    }
  }
}

function firstChoice(json: Record<string, unknown>): Record<string, unknown> | undefined {
  const choices = json['choices'];
  if (!Array.isArray(choices)) return undefined;
  const c = choices.find((x: unknown) => isRecord(x) && (num(x['index']) ?? 0) === 0) ?? choices[0];
  return isRecord(c) ? c : undefined;
}

/**
 * Finds the last `"usage": {…}` object in the tail of a JSON body that was too large to keep
 * whole (usage comes last in every vendor's answer). Returns undefined when the tail does not
 * hold a complete one.
 */
export function usageFromTail(tail: string): LlmUsage | undefined {
  const at = tail.lastIndexOf('"usage"');
  if (at < 0) return undefined;
  const open = tail.indexOf('{', at);
  if (open < 0) return undefined;
  let depth = 0;
  let inString = false;
  for (let i = open; i < tail.length; i++) {
    const c = tail[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      try {
        return parseUsage(JSON.parse(tail.slice(open, i + 1)));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
