/**
 * Token limits (core/identity/tokens.ts): which scopes a workspace limit applies to, the presets only an enroll
 * token carries (sandboxed by default), and enroll tokens stored before presets existed, which the schema
 * migration narrows to the default instead of leaving them able to grant any preset.
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { authenticateToken, createToken, tokenLimits } from '../../core/identity/tokens.ts';
import { migrate } from '../../core/ledger/schema.ts';
import { tempDir } from '../helpers.ts';

describe('token limits', () => {
  it('a workspace limits enroll and peers:write only; presets belong to enroll tokens, sandboxed unless named', () => {
    assert.deepEqual(tokenLimits({ scopes: ['peers:write', 'enroll'], workspace: 'ws', presets: null }), { scopes: ['enroll', 'peers:write'], workspace: 'ws', presets: ['sandboxed'] });
    assert.deepEqual(tokenLimits({ scopes: ['enroll'], workspace: null, presets: ['isolated', 'coordinator'] }).presets, ['coordinator', 'isolated']);
    assert.equal(tokenLimits({ scopes: ['approve', 'audit:read'], workspace: null, presets: null }).presets, null);
    for (const scope of ['approve', 'audit:read', 'policy:write', 'secrets:write'] as const) {
      assert.throws(() => tokenLimits({ scopes: ['enroll', scope], workspace: 'ws', presets: null }), { code: 'VALIDATION_FAILED', message: new RegExp(`${scope} act\\(s\\) on the whole gate`) });
    }
    assert.throws(() => tokenLimits({ scopes: ['peers:write'], workspace: null, presets: ['sandboxed'] }), { code: 'VALIDATION_FAILED', message: /this token has no enroll scope/ });
  });

  it('token-scope-misread: an enroll token made before presets existed grants only sandboxed after the migration', () => {
    const file = join(tempDir(), 'old.db');
    const db = new Database(file);
    migrate(db, file);
    // Back to schema 5, where tokens had no presets, with an enroll token and another.
    db.exec('ALTER TABLE tokens DROP COLUMN presets; PRAGMA user_version = 5;');
    const insert = db.prepare('INSERT INTO tokens (id, token_hash, scopes, workspace, created_at) VALUES (?, ?, ?, ?, 0)');
    insert.run('tok_enroll', 'h1', '["enroll","peers:write"]', 'ws');
    insert.run('tok_approve', 'h2', '["approve"]', null);
    migrate(db, file);
    const presets = db.prepare('SELECT id, presets FROM tokens ORDER BY id').all();
    assert.deepEqual(presets, [{ id: 'tok_approve', presets: null }, { id: 'tok_enroll', presets: '["sandboxed"]' }]);

    const made = createToken(db, { scopes: ['enroll'], workspace: null, presets: ['coordinator'], ttlMs: null, now: 0 });
    assert.deepEqual(authenticateToken(db, made.token, 1).presets, ['coordinator'], 'stored and read back');
    db.close();
  });
});
