/**
 * Installing an action manifest, for `lattice actions add` through the running gate or directly on a home. The
 * manifest must carry a valid signature by a trusted publisher unless the operator allows it unsigned; either
 * way the decision is recorded (`action.installed`, with the file's hash and the publisher or `allowUnsigned`)
 * before the registry records the new digest (`action.registered`). Nothing is written when a check fails.
 */
import type { HomePaths } from '../home.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { decideTrust, readPublishers, type Trust } from '../trust/publishers.ts';
import { sha256Hex } from '../crypto/index.ts';
import { parseManifest, type ActionManifest } from './manifest.ts';
import type { ActionRegistry } from './registry.ts';

export interface ManifestInstall {
  readonly text: string;
  /** The signature document's text, or null when the manifest comes without one. */
  readonly signature: string | null;
  readonly allowUnsigned: boolean;
  /** How messages name the manifest (its file name). */
  readonly source: string;
}

export async function installManifest(registry: ActionRegistry, ledger: Ledger, paths: HomePaths, request: ManifestInstall): Promise<{ manifest: ActionManifest; trust: Trust; seq: number }> {
  const bytes = Buffer.from(request.text, 'utf8');
  parseManifest(request.text, request.source); // an invalid manifest is named as such before its signature is judged
  const trust = decideTrust(bytes, 'manifest', request.signature, readPublishers(paths), request.allowUnsigned, request.source);
  const manifest = registry.add(request.text, request.source, request.signature);
  const { event } = await ledger.append({
    type: 'action.installed',
    principal: 'operator',
    action: manifest.id,
    payload: {
      id: manifest.id,
      version: manifest.version,
      digest: manifest.digest,
      sha256: sha256Hex(bytes),
      publisher: trust.publisher === null ? null : trust.publisher.keyId,
      publisherName: trust.publisher === null ? null : trust.publisher.name,
      allowUnsigned: trust.allowUnsigned,
    },
  });
  await registry.recordChanges(ledger);
  return { manifest, trust, seq: event.seq };
}
