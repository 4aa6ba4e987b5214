/**
 * The claims of a session token, built from a user's identity and mapping result. Pure:
 * the auth service signs them, and a later OpenID-provider mode can reuse them.
 */
import { assertionAudience, ATTRIBUTE_CLAIM_PREFIX, CLAIMS } from '../session-contract';
import type { MappingGrant } from './mapping-rules';

export interface SessionIdentity {
  readonly subject: string;
  readonly email?: string;
  readonly name?: string;
  readonly givenName?: string;
  readonly familyName?: string;
}

export interface SessionTiming {
  /** Epoch seconds. */
  readonly now: number;
  readonly ttlSeconds: number;
}

export interface SessionClaimsInput {
  readonly issuer: string;
  readonly audience: string;
  readonly sessionId: string;
  readonly identity: SessionIdentity;
  readonly grant: MappingGrant;
  readonly timing: SessionTiming;
}

export type SessionClaims = Record<string, string | number>;

export function buildSessionClaims(input: SessionClaimsInput): SessionClaims {
  const { grant, identity, timing } = input;
  const claims: Record<string, SessionClaims[string]> = {
    [CLAIMS.issuer]: input.issuer,
    [CLAIMS.audience]: input.audience,
    [CLAIMS.subject]: identity.subject,
    [CLAIMS.email]: identity.email ?? '',
    [CLAIMS.name]: identity.name ?? '',
    [CLAIMS.sessionId]: input.sessionId,
    [CLAIMS.issuedAt]: timing.now,
    [CLAIMS.notBefore]: timing.now,
    [CLAIMS.expiresAt]: timing.now + timing.ttlSeconds,
    [CLAIMS.groupsCsv]: grant.groups.join(','),
    [CLAIMS.rolesCsv]: grant.roles.join(','),
  };
  // Only when the IdP gave them: most sessions never reach Looker's OIDC login (broker mode), and the token's budget is shared.
  if (identity.givenName) claims[CLAIMS.givenName] = identity.givenName;
  if (identity.familyName) claims[CLAIMS.familyName] = identity.familyName;
  for (const [name, value] of Object.entries(grant.attributes)) claims[`${ATTRIBUTE_CLAIM_PREFIX}${name}`] = value;
  return claims;
}

/**
 * The claims of the upstream assertion minted next to a session: the same claims and
 * lifetime, with the assertion audience, so that a verifier of sessions refuses it.
 */
export function buildAssertionClaims(session: SessionClaims): SessionClaims {
  return { ...session, [CLAIMS.audience]: assertionAudience(String(session[CLAIMS.audience])) };
}
