export * from './mapping-rules';
export * from './environment';
export * from './return-to';
export * from './session-claims';
export * from './claim-pointer';
export * from './idp-profiles';
