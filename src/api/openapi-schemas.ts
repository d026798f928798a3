/**
 * Request bodies validated from the OpenAPI document itself (src/api/openapi.json), one
 * fact for what the API documents and what it accepts; problems worded as the
 * configuration's are (src/expected.ts): each field named, with what it must be.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { schemaErrorMessages } from '../expected.ts';
import openapi from './openapi.json' with { type: 'json' };

// verbose: the errors carry the value and its schema, which the messages name.
const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: false });
ajv.addSchema(openapi, 'openapi');

interface JsonSchema {
  $ref?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
}

/** A schema of the OpenAPI document with its $ref followed (#/components/schemas/…). */
function resolved(node: JsonSchema | undefined): JsonSchema | undefined {
  if (node?.$ref === undefined) return node;
  let target: unknown = openapi;
  for (const key of node.$ref.replace(/^#\//, '').split('/')) target = (target as Record<string, unknown> | undefined)?.[key];
  return resolved(target as JsonSchema | undefined);
}

export interface BodyProblem {
  /** JSON pointer of the field ("/" for the body). */
  readonly path: string;
  readonly message: string;
}

/** A validator of `#/components/schemas/<name>`: undefined when the body is valid, else one problem per field. */
export function bodyValidator(name: keyof typeof openapi.components.schemas, what: string): (body: unknown) => BodyProblem[] | undefined {
  const validate = ajv.getSchema(`openapi#/components/schemas/${name}`)!;
  const schemaAt = (parts: readonly string[]): JsonSchema | undefined => {
    let node = resolved(openapi.components.schemas[name] as JsonSchema);
    for (const key of parts) node = resolved(/^\d+$/.test(key) ? node?.items : node?.properties?.[key]);
    return node;
  };
  return (body) => {
    if (validate(body)) return undefined;
    return schemaErrorMessages(validate.errors ?? [], schemaAt).map((m) => ({
      path: m.parts.length === 0 ? '/' : `/${m.parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`,
      message: m.path === '' ? m.message.replace(/^the value/, what) : m.message,
    }));
  };
}
