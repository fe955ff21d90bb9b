/**
 * The JSON Schema of `lattice.toml` (as parsed from TOML): every section and key, its type and bounds. Unknown
 * keys are refused (`additionalProperties: false`). Defaults live in config.ts; durations are checked there.
 */
import type { JSONSchemaType } from 'ajv';
import type { RawWebhook } from './webhooks.ts';

export interface RawConfig {
  gate?: { base_url?: string; listen?: string; request_timeout?: string; body_limit?: number };
  tls?: { cert?: string; key?: string };
  identity?: { overlay_cidr?: string; max_ttl?: string; reaper_interval?: string; dpop_window?: string; tool_services?: string[] };
  wireguard?: { endpoint?: string; listen_port?: number };
  ledger?: { checkpoint_every?: number; checkpoint_interval?: string };
  actions?: { fs_root?: string; http_hosts?: string[] };
  providers?: { workers?: number; memory_mb?: number; heap_mb?: number; max_output_kb?: number; queue?: number; load_timeout?: string };
  approvals?: { timeout?: string };
  anomaly?: { denials?: number; window?: string; on_burst?: 'record' | 'revoke' };
  budgets?: { agent?: string; workspace?: string; preset?: string; calls?: number; cost?: number; window: string }[];
  webhooks?: RawWebhook[];
}

const text = (maxLength = 512) => ({ type: 'string', maxLength, nullable: true }) as const;
const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum, nullable: true }) as const;
const section = <T>(properties: T) => ({ type: 'object', additionalProperties: false, nullable: true, required: [], properties }) as const;

export const CONFIG_SCHEMA: JSONSchemaType<RawConfig> = {
  type: 'object',
  additionalProperties: false,
  required: [],
  properties: {
    gate: section({
      base_url: { type: 'string', pattern: '^https?://[^/?#\\s]+/?$', maxLength: 512, nullable: true },
      listen: text(256),
      request_timeout: text(32),
      body_limit: int(1024, 64 * 1024 * 1024),
    }),
    tls: section({ cert: text(4096), key: text(4096) }),
    identity: section({
      overlay_cidr: text(32),
      max_ttl: text(32),
      reaper_interval: text(32),
      dpop_window: text(32),
      tool_services: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 256, nullable: true },
    }),
    wireguard: section({ endpoint: text(300), listen_port: int(1, 65535) }),
    ledger: section({ checkpoint_every: int(1, 1_000_000), checkpoint_interval: text(32) }),
    actions: section({
      fs_root: text(4096),
      http_hosts: { type: 'array', items: { type: 'string', maxLength: 253 }, maxItems: 256, nullable: true },
    }),
    providers: section({ workers: int(0, 256), memory_mb: int(1, 4096), heap_mb: int(16, 4096), max_output_kb: int(1, 256 * 1024), queue: int(1, 1_000_000), load_timeout: text(32) }),
    approvals: section({ timeout: text(32) }),
    anomaly: section({ denials: int(2, 1_000_000), window: text(32), on_burst: { type: 'string', enum: ['record', 'revoke'], nullable: true } }),
    budgets: {
      type: 'array',
      nullable: true,
      maxItems: 1024,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['window'],
        properties: {
          agent: text(128),
          workspace: text(128),
          preset: text(128),
          calls: int(0, 1e12),
          cost: { type: 'number', minimum: 0, maximum: 1e15, nullable: true },
          window: { type: 'string', maxLength: 32 },
        },
      },
    },
    webhooks: {
      type: 'array',
      nullable: true,
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'url', 'secret'],
        properties: {
          // No dots: the name is part of the webhook-id, and the signed content joins id, timestamp and body with dots.
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' },
          url: { type: 'string', maxLength: 2048 },
          secret: { type: 'string', maxLength: 512 },
          events: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 64, nullable: true },
          format: { type: 'string', enum: ['standard', 'slack'], nullable: true },
          max_attempts: int(1, 100),
          backoff: text(32),
          max_backoff: text(32),
        },
      },
    },
  },
};
