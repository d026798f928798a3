/** `betrace config reference`: the configuration reference in Markdown, generated from the schema. */
import { schemaKeys, type SchemaNode } from '../config/index.ts';

function typeOf(node: SchemaNode): string {
  if (node.format === 'duration') return 'duration';
  if (node.format === 'size') return 'size';
  if (node.format === 'endpoint') return 'host:port';
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (node.type === 'array') return `list of ${node.items?.type ?? 'values'}`;
  if (node.type === 'object') return 'map';
  return node.type ?? 'value';
}

function defaultOf(node: SchemaNode): string {
  const d = node.default;
  if (d === undefined || d === '') return '';
  if (Array.isArray(d)) return d.length === 0 ? '`[]`' : `\`${JSON.stringify(d)}\``;
  if (typeof d === 'object') return Object.keys(d as object).length === 0 ? '`{}`' : `\`${JSON.stringify(d)}\``;
  return `\`${typeof d === 'string' ? d : JSON.stringify(d)}\``;
}

/** Every leaf key of the schema with its dotted path. */
export const configKeys = (): Array<[string, SchemaNode]> => schemaKeys();

export function configReference(): string {
  const lines = ['| key | type | default | env | meaning |', '|---|---|---|---|---|'];
  for (const [path, node] of configKeys()) {
    const env = node['x-env'] ? `\`${node['x-env']}\`` : '';
    lines.push(`| \`${path}\` | ${typeOf(node)} | ${defaultOf(node)} | ${env} | ${(node.description ?? '').replace(/\|/g, '\\|')} |`);
  }
  return lines.join('\n');
}
