import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ServiceError } from '../domain/errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * An onRequest hook admitting `Authorization: Bearer <token>` only: 401 without the header, 403 with another
 * token. Digests of equal length make the comparison constant-time whatever the caller sends; neither token
 * is ever logged (the logger redacts the header).
 */
export function requireBearer(token: string, role: string): (req: FastifyRequest) => Promise<void> {
  const expected = digest(token);
  return async (req) => {
    const header = req.headers.authorization;
    if (!header) throw new ServiceError('unauthorized', `${role} API needs Authorization: Bearer <token>`);
    const [scheme, given] = header.split(' ', 2);
    if (scheme?.toLowerCase() !== 'bearer' || !given || !timingSafeEqual(digest(given), expected))
      throw new ServiceError('forbidden', `invalid ${role} token`);
  };
}
