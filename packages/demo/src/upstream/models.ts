import { UpstreamHttpError } from './http.js';

export interface DemoModel {
  id: string;
  kind: 'chat' | 'embedding';
  ownedBy: string;
}

/** Models the demo upstream knows; any other name gets a 404 `model_not_found`. */
export const DEMO_MODELS: readonly DemoModel[] = Object.freeze([
  { id: 'gpt-4o-mini', kind: 'chat', ownedBy: 'openai' },
  { id: 'gpt-4o', kind: 'chat', ownedBy: 'openai' },
  { id: 'gpt-4.1-mini', kind: 'chat', ownedBy: 'openai' },
  { id: 'ward-demo-chat', kind: 'chat', ownedBy: 'ward' },
  { id: 'text-embedding-3-small', kind: 'embedding', ownedBy: 'openai' },
  { id: 'text-embedding-3-large', kind: 'embedding', ownedBy: 'openai' },
  { id: 'claude-3-5-haiku-latest', kind: 'chat', ownedBy: 'anthropic' },
  { id: 'claude-sonnet-4-5', kind: 'chat', ownedBy: 'anthropic' },
]);

/** A fixed creation time so model listings are byte-identical across runs. */
export const MODEL_CREATED = 1_700_000_000;

export function modelObject(m: DemoModel): { id: string; object: 'model'; created: number; owned_by: string } {
  return { id: m.id, object: 'model', created: MODEL_CREATED, owned_by: m.ownedBy };
}

export function findModel(id: unknown, kind?: DemoModel['kind']): DemoModel {
  if (typeof id !== 'string' || id.length === 0) {
    throw new UpstreamHttpError(400, 'invalid_request_error', 'you must provide a model parameter', null, 'model');
  }
  const model = DEMO_MODELS.find((m) => m.id === id);
  if (!model) {
    throw new UpstreamHttpError(
      404,
      'invalid_request_error',
      `The model \`${id}\` does not exist or you do not have access to it.`,
      'model_not_found',
      'model',
    );
  }
  if (kind !== undefined && model.kind !== kind) {
    throw new UpstreamHttpError(
      400,
      'invalid_request_error',
      `The model \`${id}\` does not support this endpoint.`,
      'model_not_supported',
      'model',
    );
  }
  return model;
}
