/**
 * Jest snapshot serializer for CloudFormation templates: scrubs what changes without the
 * template really changing (asset hashes, the files digest in the user data, asset paths
 * in metadata, runtime version maps), so a snapshot changes only when the template does.
 * Registered for every test in jest.config.js; a template is any object with `Resources`.
 */
const HASH = /[a-f0-9]{64}/g;
const SCRUBBED_METADATA = new Set(['aws:asset:path', 'aws:asset:original-path', 'aws:asset:is-bundled', 'aws:asset:property']);

function scrub(value: unknown, key?: string): unknown {
  if (typeof value === 'string') return value.replace(HASH, '[HASH]');
  if (Array.isArray(value)) return value.map((item) => scrub(item));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (SCRUBBED_METADATA.has(k)) continue;
      // Maps of Lambda runtime versions per region (custom resource providers) follow CDK releases.
      if (key === 'Mappings' && /RuntimeMap$/.test(k)) continue;
      out[k] = scrub(v, k);
    }
    return out;
  }
  return value;
}

function isTemplate(value: unknown): boolean {
  return !!value && typeof value === 'object' && !Array.isArray(value) && 'Resources' in (value as object) && !(value as { __scrubbed?: boolean }).__scrubbed;
}

module.exports = {
  test: isTemplate,
  serialize(value: unknown, config: unknown, indentation: string, depth: number, refs: unknown, printer: (v: unknown, ...rest: unknown[]) => string): string {
    const scrubbed = scrub(value) as Record<string, unknown>;
    Object.defineProperty(scrubbed, '__scrubbed', { value: true, enumerable: false });
    return printer(scrubbed, config, indentation, depth, refs);
  },
};
