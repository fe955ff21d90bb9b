// The Homebrew formula for a release: one url + sha256 per tarball that exists for it, under on_macos/on_linux and
// on_arm/on_intel. A platform with no tarball gets no block, so brew on it fails with "no url" instead of
// installing another platform's binary.

const PLATFORMS = [
  ['darwin', 'on_macos'],
  ['linux', 'on_linux'],
];
const ARCHES = [
  ['arm64', 'on_arm'],
  ['x64', 'on_intel'],
];

/**
 * `artifacts`: `{ os, arch, url, sha256 }` for each tarball. Every string lands in a Ruby double-quoted literal,
 * escaped, so no value can close the string or interpolate.
 */
export function renderFormula({ version, desc, homepage, license, artifacts }) {
  const lines = [
    `# Homebrew formula for lattice ${version}, written by scripts/release.mjs from the release's SHA256SUMS.`,
    'class Lattice < Formula',
    `  desc ${ruby(desc)}`,
    `  homepage ${ruby(homepage)}`,
    `  version ${ruby(version)}`,
    `  license ${ruby(license)}`,
  ];
  for (const [os, block] of PLATFORMS) {
    const present = ARCHES.map(([arch, archBlock]) => [archBlock, artifacts.find((a) => a.os === os && a.arch === arch)]).filter(([, a]) => a !== undefined);
    if (present.length === 0) continue;
    lines.push('', `  ${block} do`);
    for (const [archBlock, artifact] of present) {
      lines.push(`    ${archBlock} do`, `      url ${ruby(artifact.url)}`, `      sha256 ${ruby(artifact.sha256)}`, '    end');
    }
    lines.push('  end');
  }
  lines.push(
    '',
    '  def install',
    '    bin.install "lattice"',
    '  end',
    '',
    '  test do',
    '    assert_match version.to_s, shell_output("#{bin}/lattice --version")',
    '  end',
    'end',
  );
  return `${lines.join('\n')}\n`;
}

function ruby(text) {
  return `"${text.replace(/[\\"#]/g, (c) => `\\${c}`)}"`;
}
