/** The gateway's data plane: the HAProxy configuration renderer and the file layout it shares with key-sync. */
export * from './options';
export { GatewayConfigError, validateGatewayOptions } from './validate';
export type { ResolvedGatewayOptions } from './validate';
export { renderGatewayConfig, requiredGatewayFiles, gatewayFileNames } from './render';
export type { RenderedFile, RenderedGatewayConfig } from './render';
export { publicKeyPemFromJwk, renderKidMap, renderSessionKeyFiles } from './key-files';
export type { KidMapEntry } from './key-files';
export { DECISIONS, LOG_FIELDS, NO_LOOKER_SERVER_REASON } from './logging';
export { DEFAULT_STRIPPED_HEADERS, DEFAULT_STRIPPED_HEADER_PREFIXES, strippedHeaderRegex } from './hygiene';
export { PROXY_NAMES, adminSocket, refreshRelaySocket } from './names';
export { LUA_LOG_EVENTS, MAX_REFRESH_SET_COOKIES } from './lua';
export { AMBIGUOUS_PATH_REASONS, ambiguousPathReason, normalizePath, pathUnderPrefix } from './paths';
export { DEFAULT_CONFIG_DIR, GATEWAY_FILES } from '../layout';
