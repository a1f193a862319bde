// @meshedflow/sdk: the public entry point (docs/sdk.md).
export * from './peer-protocol';
export * from './manifest';
export * from './policy';
export * from './scheduler';
export * from './signaling';
