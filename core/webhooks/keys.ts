/**
 * The signing keys of the configured webhooks, resolved once when the gate starts: from the gate's environment
 * (`env:NAME`), from the encrypted secret store (`secret:NAME`), or the `whsec_` key written in lattice.toml. A
 * webhook whose key cannot be had stops the start, naming the webhook and the fix: the gate never sends an
 * unsigned message, and never finds out on the first event that it cannot sign.
 */
import type { SecretSource, WebhookConfig } from '../config/webhooks.ts';
import { LatticeError, describeError, isLatticeError } from '../errors.ts';
import { NEW_SECRET_HINT, decodeSigningSecret } from './signature.ts';

/** A configured webhook with the key its messages are signed with. */
export interface Webhook {
  readonly config: WebhookConfig;
  readonly key: Buffer;
}

export interface KeySources {
  readonly env: NodeJS.ProcessEnv;
  /** A secret from the store by name; throws SECRET_NOT_FOUND when there is none. */
  readonly secret: (name: string) => string;
}

/** Each configured webhook with its key; throws CONFIG_INVALID for the first whose key cannot be had. */
export function withSigningKeys(webhooks: readonly WebhookConfig[], sources: KeySources): Webhook[] {
  return webhooks.map((config) => ({ config, key: signingKey(config.name, config.secret, sources) }));
}

function signingKey(webhook: string, source: SecretSource, sources: KeySources): Buffer {
  const refuse = (problem: string, cause?: unknown) => new LatticeError('CONFIG_INVALID', `webhook "${webhook}": ${problem}`, { cause });
  if (source.kind === 'literal') return source.key;
  let value: string | undefined;
  if (source.kind === 'env') {
    value = sources.env[source.name];
    if (value === undefined || value === '') {
      throw refuse(`its secret comes from $${source.name}, which is not set in the gate's environment; export ${source.name}=whsec_… before \`lattice up\` (${NEW_SECRET_HINT}), or store it with \`lattice secrets set\` and write secret = "secret:NAME"`);
    }
  } else {
    try {
      value = sources.secret(source.name);
    } catch (error) {
      if (isLatticeError(error) && error.code === 'SECRET_NOT_FOUND') {
        throw refuse(
          `its secret comes from the stored secret ${source.name}, and there is none: start the gate without this webhook, run \`lattice secrets set ${source.name}\` with a whsec_ key (${NEW_SECRET_HINT}), then add the webhook back and restart; or use secret = "env:NAME"`,
          error,
        );
      }
      throw refuse(`its secret ${source.name} cannot be read from the store: ${describeError(error)}`, error);
    }
  }
  try {
    return decodeSigningSecret(value.trim());
  } catch (error) {
    throw refuse(`the value of ${source.kind === 'env' ? `$${source.name}` : `secret ${source.name}`} is not a usable key: ${describeError(error)}`, error);
  }
}
