/**
 * What the launcher (boot.ts) tells the server it runs about V8's code cache, through a global
 * (the two are separate bundles): `used` (the bundle ran from the cache), `written` (there was
 * none, or V8 refused it, so one is written when the server exits), `off`
 * (`EBPF_PORTABILITY_CODE_CACHE=off`), `none` (the bundle was loaded without the launcher).
 */
export type CodeCacheState = 'used' | 'written' | 'off' | 'none';
export const CODE_CACHE_STATE = Symbol.for('ebpf-portability.codeCache');
