// @meshedflow/sdk: the public entry point (docs/sdk.md).
export * from './peer-protocol';
export * from './manifest';
export * from './policy';
export * from './scheduler';
export * from './signaling';
export * from './loader-stats';
export * from './segment-store';
export * from './token-bucket';
export * from './http-fetch';
export * from './peer-link';
export * from './core';
export * from './chunk-progress';
export * from './partial-plan';
