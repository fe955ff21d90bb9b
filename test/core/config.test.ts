/** lattice.toml: defaults with no file, strict validation that names the offending key. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, parseConfig } from '../../core/config/config.ts';
import { LatticeError } from '../../core/errors.ts';
import { homePaths } from '../../core/home.ts';
import { tempDir } from '../helpers.ts';

const invalid = (message: RegExp) => (e: unknown) => e instanceof LatticeError && e.code === 'CONFIG_INVALID' && message.test(e.message);

describe('configuration', () => {
  it('has a documented default for every setting, so no file is a valid configuration', () => {
    const { config, file } = loadConfig(homePaths(join(tempDir(), 'home')));
    assert.equal(file, null);
    assert.deepEqual(config.gate, { baseUrl: 'http://localhost', listen: null, requestTimeoutMs: 30_000, bodyLimitBytes: 1024 * 1024 });
    assert.equal(config.identity.overlayCidr, '10.96.0.0/16');
    assert.equal(config.identity.maxTtlMs, 24 * 3_600_000);
    assert.equal(config.identity.dpopWindowSeconds, 60);
    assert.equal(config.tls, null);
  });

  it('reads the home lattice.toml and overrides only what it sets', () => {
    const paths = homePaths(tempDir());
    writeFileSync(join(paths.root, 'lattice.toml'), '[identity]\nmax_ttl = "2h"\n[gate]\nbase_url = "http://gate.local/"\n');
    const { config, file } = loadConfig(paths);
    assert.equal(file, join(paths.root, 'lattice.toml'));
    assert.equal(config.identity.maxTtlMs, 7_200_000);
    assert.equal(config.identity.reaperIntervalMs, 60_000);
    assert.equal(config.gate.baseUrl, 'http://gate.local');
  });

  it('refuses unknown keys with a hint, wrong types, bad durations and bad TOML, naming the key', () => {
    assert.throws(() => parseConfig('[gate]\nlistne = "x"\n', 'f'), invalid(/unknown key gate\.listne \(did you mean gate\.listen\?\)/));
    assert.throws(() => parseConfig('[idenity]\n', 'f'), invalid(/unknown key idenity \(did you mean identity\?\)/));
    assert.throws(() => parseConfig('[identity]\nmax_ttl = "forever"\n', 'f'), invalid(/identity\.max_ttl "forever" is not a duration/));
    assert.throws(() => parseConfig('[gate]\nbody_limit = "big"\n', 'f'), invalid(/gate\.body_limit must be integer/));
    assert.throws(() => parseConfig('[wireguard]\nlisten_port = 70000\n', 'f'), invalid(/wireguard\.listen_port must be <= 65535/));
    assert.throws(() => parseConfig('[gate]\nbase_url = "ftp://x"\n', 'f'), invalid(/gate\.base_url/));
    assert.throws(() => parseConfig('[tls]\ncert = "/c.pem"\n', 'f'), invalid(/tls\.cert and tls\.key must be set together/));
    assert.throws(() => parseConfig('nonsense = = =', 'f'), invalid(/not valid TOML/));
  });
});
