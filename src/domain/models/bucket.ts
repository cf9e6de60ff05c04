export const BUCKETS = 10_000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a 32-bit over the UTF-8 bytes of `s`, continuing from `h`. */
export function fnv1a32(s: string, h = FNV_OFFSET): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    for (const byte of new TextEncoder().encode(s.slice(i))) h = Math.imul(h ^ byte, FNV_PRIME);
    break;
  }
  return h >>> 0;
}

/** Murmur3's finaliser: FNV-1a alone leaves short sequential ids (C0001, C0002…) clustered modulo 10,000. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Sticky bucket in [0, 10,000) of a customer for one canary version. Salting with the version means each rollout
 * samples different customers, while ramping one version's percentage up keeps everyone already on it.
 */
export function canaryBucket(salt: string, customerId: string): number {
  return mix(fnv1a32(customerId, Math.imul(fnv1a32(salt) ^ 0xff, FNV_PRIME))) % BUCKETS;
}
