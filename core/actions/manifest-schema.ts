/** The JSON Schema of an action manifest as parsed from TOML (see manifest.ts for the meaning of each key). */
import type { JSONSchemaType } from 'ajv';

export interface RawManifest {
  id: string;
  version: string;
  description: string;
  risk: 'low' | 'medium' | 'high' | 'critical';
  tags?: string[];
  cost?: number;
  timeout?: string;
  provider: {
    builtin?: 'echo' | 'http.request' | 'http.template' | 'fs.read' | 'fs.write';
    component?: string;
    sha256?: string;
    effects?: ('http' | 'fs.read' | 'fs.write')[];
    memory_mb?: number;
    concurrency?: number;
  };
  request: { schema: Record<string, unknown> };
  sinks?: {
    http?: { host: string; scheme?: 'https' | 'http'; methods: string[]; ports?: number[]; allow_private?: boolean }[];
    fs?: { root: string; allow?: string[]; deny?: string[] };
  };
  secrets?: { name: string; header: string; format: string; secret: string }[];
  template?: Record<string, unknown>;
}

const NAME = '^[A-Za-z_][A-Za-z0-9_.-]{0,63}$';
/** A component's file name in `<home>/providers` (also what `lattice providers add` installs under). */
export const COMPONENT_FILE = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\\.wasm$';
const strings = (pattern?: string, maxItems = 64) => ({ type: 'array', maxItems, items: pattern === undefined ? { type: 'string', maxLength: 256 } : { type: 'string', pattern } }) as const;

export const MANIFEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'version', 'description', 'risk', 'provider', 'request'],
  properties: {
    id: { type: 'string', maxLength: 128, pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$' },
    version: { type: 'string', maxLength: 32, pattern: '^\\d+\\.\\d+\\.\\d+([-+][0-9A-Za-z.-]+)?$' },
    description: { type: 'string', maxLength: 1024 },
    risk: { type: 'string', enum: ['low', 'medium', 'high', 'critical'] },
    tags: { ...strings('^[a-z0-9][a-z0-9_.-]{0,31}$', 32), nullable: true },
    cost: { type: 'number', minimum: 0, maximum: 1e9, nullable: true },
    timeout: { type: 'string', maxLength: 16, nullable: true },
    provider: {
      type: 'object',
      additionalProperties: false,
      required: [],
      properties: {
        builtin: { type: 'string', enum: ['echo', 'http.request', 'http.template', 'fs.read', 'fs.write'], nullable: true },
        component: { type: 'string', pattern: COMPONENT_FILE, nullable: true },
        sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', nullable: true },
        effects: { type: 'array', maxItems: 3, uniqueItems: true, items: { type: 'string', enum: ['http', 'fs.read', 'fs.write'] }, nullable: true },
        memory_mb: { type: 'integer', minimum: 1, maximum: 4096, nullable: true },
        concurrency: { type: 'integer', minimum: 1, maximum: 65536, nullable: true },
      },
    },
    request: { type: 'object', additionalProperties: false, required: ['schema'], properties: { schema: { type: 'object', required: [] } } },
    sinks: {
      type: 'object',
      additionalProperties: false,
      nullable: true,
      required: [],
      properties: {
        http: {
          type: 'array',
          maxItems: 64,
          nullable: true,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['host', 'methods'],
            properties: {
              host: { type: 'string', maxLength: 253, pattern: '^(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$' },
              scheme: { type: 'string', enum: ['https', 'http'], nullable: true },
              methods: strings('^(GET|HEAD|POST|PUT|PATCH|DELETE)$', 6),
              ports: { type: 'array', maxItems: 16, items: { type: 'integer', minimum: 1, maximum: 65535 }, nullable: true },
              allow_private: { type: 'boolean', nullable: true },
            },
          },
        },
        fs: {
          type: 'object',
          additionalProperties: false,
          nullable: true,
          required: ['root'],
          properties: { root: { type: 'string', maxLength: 4096 }, allow: { ...strings(), nullable: true }, deny: { ...strings(), nullable: true } },
        },
      },
    },
    secrets: {
      type: 'array',
      maxItems: 16,
      nullable: true,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'header', 'format', 'secret'],
        properties: {
          name: { type: 'string', pattern: NAME },
          header: { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' },
          format: { type: 'string', maxLength: 256 },
          secret: { type: 'string', pattern: NAME },
        },
      },
    },
    template: { type: 'object', required: [], nullable: true },
  },
} as unknown as JSONSchemaType<RawManifest>;
