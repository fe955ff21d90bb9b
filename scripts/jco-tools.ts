/**
 * jco 1.10.2's wasm-tools as the build and the tests use them: text to a core module, and a core module to a
 * provider component (embedded against a WIT world with UTF-16 strings, as the guests' ABI expects).
 */
// jco's API module ships no usable type declarations for these; this is their shape.
const jco = (await import('@bytecodealliance/jco')) as unknown as {
  parse: (wat: string) => Promise<Uint8Array>;
  componentEmbed: (options: { binary: Uint8Array; witSource: string; stringEncoding: 'utf16'; world: string }) => Promise<Uint8Array>;
  componentNew: (binary: Uint8Array, adapters: undefined) => Promise<Uint8Array>;
};

export const parseWat = (wat: string): Promise<Uint8Array> => jco.parse(wat);

/** The component of a core module exporting the world `provider` of `wit`. */
export async function providerComponent(core: Uint8Array, wit: string): Promise<Buffer> {
  const embedded = await jco.componentEmbed({ binary: core, witSource: wit, stringEncoding: 'utf16', world: 'provider' });
  return Buffer.from(await jco.componentNew(embedded, undefined));
}
