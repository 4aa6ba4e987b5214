/**
 * Who the user is, from what the IdP answered: the ID token's claims, completed from
 * userinfo when the ID token is missing (refresh answers of Google and PingFederate) or
 * lacks the groups claim; the Entra tenant checked against the allowed ones; the groups
 * read at the configured JSON pointer, or from a group source (Microsoft Graph on an
 * Entra overage, the Google Directory API), with those results reused for a session for
 * a bounded time. Anything that leaves the groups unknown is a deny with its own reason,
 * never an empty list that a rule could read as "no groups".
 */
import { readClaimPointer } from '../../core/auth/claim-pointer';
import type { AuthServiceConfig } from '../../core/auth/environment';
import { identityFacts, type IdentityFacts } from '../../core/auth/mapping-rules';
import { GroupSourceError, type GroupSource } from './group-sources';
import { IdpError, type IdpClient, type IdpTokens } from './oidc';
import type { SessionSecrets } from './session-store';

export interface UserIdentity {
  readonly subject: string;
  /** Only an address the IdP vouches for (see identityFacts). */
  readonly email?: string;
  readonly name?: string;
  /** `given_name` and `family_name`, when the IdP gives them (Looker's first and last name in broker mode). */
  readonly givenName?: string;
  readonly familyName?: string;
  readonly facts: IdentityFacts;
  /** The IdP sent an address it does not vouch for, which was left out. */
  readonly unverifiedEmail: boolean;
}

export type IdentityDenialReason = 'tenant-not-allowed' | 'groups-overage' | 'groups-claim-missing' | 'groups-source-failed';

/** Why a user whose login at the IdP succeeded gets no session; `status` 403, or 502 when a group source failed. */
export interface IdentityDenial {
  readonly reason: IdentityDenialReason;
  readonly status: 403 | 502;
  /** For the operator (audit): what was found and the fix. */
  readonly detail: string;
  /** For the user. */
  readonly message: string;
}

export type IdentityOutcome =
  | {
      readonly ok: true;
      readonly identity: UserIdentity;
      readonly claims: Record<string, unknown>;
      readonly groupsClaimSeen: boolean;
      readonly groups?: SessionSecrets['groups'];
    }
  | { readonly ok: false; readonly denial: IdentityDenial; readonly subject: string };

/** Entra's overage markers: `_claim_names.groups` (code flow) or `hasgroups` (implicit flow). */
export function groupsOverage(claims: Readonly<Record<string, unknown>>): boolean {
  const names = claims._claim_names;
  return claims.hasgroups === true || (names !== null && typeof names === 'object' && Object.prototype.hasOwnProperty.call(names, 'groups'));
}

export class IdentityResolver {
  constructor(
    private readonly config: AuthServiceConfig,
    private readonly idp: IdpClient,
    private readonly groupSource: GroupSource | undefined,
    private readonly now: () => number,
  ) {}

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /**
   * The identity in an IdP answer (login: no `previous`; refresh: the session's secrets).
   * Throws IdpError when the IdP's answers are unusable (no subject, another subject).
   */
  async resolve(tokens: IdpTokens, previous?: SessionSecrets, expectedSubject?: string): Promise<IdentityOutcome> {
    const { settings } = this.config.idp;
    let claims: Record<string, unknown> = { ...(tokens.idTokenClaims ?? {}) };
    const subject = (claims.sub as string | undefined) ?? expectedSubject;
    if (!subject) throw new IdpError('bad-response', 'the IdP returned neither an ID token nor a subject');
    if (expectedSubject && subject !== expectedSubject) throw new IdpError('bad-response', 'the refreshed identity belongs to another subject');
    const pointer = settings.groupsClaim;
    const claimSource = settings.groupsSource === 'token' || settings.groupsSource === 'microsoft-graph';
    const groupsInIdToken = pointer !== undefined && readClaimPointer(claims, pointer).found;
    if (!tokens.idTokenClaims || (claimSource && pointer !== undefined && !groupsInIdToken && !groupsOverage(claims))) {
      const userinfo = await this.idp.userinfo(tokens.accessToken, subject);
      if (userinfo) claims = { ...claims, ...userinfo, sub: subject };
    }
    const deny = (reason: IdentityDenialReason, status: 403 | 502, detail: string, message: string): IdentityOutcome => ({
      ok: false,
      subject,
      denial: { reason, status, detail, message },
    });

    const tenant = this.tenantCheck(claims);
    if (tenant) return deny('tenant-not-allowed', 403, tenant, 'Your organisation (Microsoft Entra ID tenant) may not sign in here.');

    const groupsFound = pointer !== undefined && readClaimPointer(claims, pointer).found;
    const groups = await this.groups(claims, groupsFound, previous);
    if ('denial' in groups) return deny(groups.denial.reason, groups.denial.status, groups.denial.detail, groups.denial.message);
    return { ok: true, identity: this.identity(subject, claims, groups.values), claims, groupsClaimSeen: groupsFound, groups: groups.cached };
  }

  /** The identity a refresh of this session found a moment ago (another request of the same browser did the IdP call). */
  fromStored(subject: string, secrets: SessionSecrets): UserIdentity {
    return this.identity(subject, { ...secrets.claims }, secrets.groups?.values);
  }

  private identity(subject: string, claims: Record<string, unknown>, groups: readonly string[] | undefined): UserIdentity {
    const { settings, trustUnverifiedEmail } = this.config.idp;
    const name = typeof claims.name === 'string' ? claims.name : typeof claims.preferred_username === 'string' ? claims.preferred_username : undefined;
    const { unverifiedEmail, ...facts } = identityFacts(claims, {
      groupsClaim: settings.groupsSource === 'none' ? undefined : settings.groupsClaim,
      groups,
      trustUnverifiedEmail,
      emailVerified: settings.profile.emailVerified,
    });
    const text = (claim: string) => (typeof claims[claim] === 'string' && claims[claim] !== '' ? (claims[claim] as string) : undefined);
    return { subject, email: facts.email, name, givenName: text('given_name'), familyName: text('family_name'), facts, unverifiedEmail };
  }

  /**
   * Entra ID: the `tid` claim must be the tenant of the issuer, or one of allowedTenants
   * with a multi-tenant issuer (openid-client accepts any tenant's token for /common and
   * /organizations: it fills the issuer template with the token's own tid). Undefined when
   * allowed; else the audit detail.
   */
  private tenantCheck(claims: Record<string, unknown>): string | undefined {
    const { settings } = this.config.idp;
    if (settings.profile.provider !== 'entra') return undefined;
    const tid = typeof claims.tid === 'string' ? claims.tid.toLowerCase() : undefined;
    const allowed = settings.tenantId ? [settings.tenantId] : settings.allowedTenants.map((t) => t.toLowerCase());
    if (tid !== undefined && allowed.includes(tid)) return undefined;
    return `the token's tenant (tid ${tid ?? 'missing'}) is not ${settings.tenantId ? "the issuer's tenant" : 'in allowedTenants'} (${allowed.join(', ')})`;
  }

  private async groups(
    claims: Record<string, unknown>,
    groupsFound: boolean,
    previous: SessionSecrets | undefined,
  ): Promise<{ values?: readonly string[]; cached?: SessionSecrets['groups'] } | { denial: Omit<IdentityDenial, 'subject'> }> {
    const { settings, groupsCacheSeconds } = this.config.idp;
    const source = settings.groupsSource;
    if (source === 'none') return {};
    const fromSource = async () => {
      const cached = previous?.groups;
      if (cached && this.groupSource && cached.source === this.groupSource.name && this.seconds() - cached.readAt < groupsCacheSeconds)
        return { values: cached.values, cached };
      try {
        const values = await this.groupSource!.groupsOf(claims);
        const fresh = { values, source: this.groupSource!.name, readAt: this.seconds() };
        return { values, cached: fresh };
      } catch (error) {
        if (!(error instanceof GroupSourceError)) throw error;
        return {
          denial: {
            reason: 'groups-source-failed' as const,
            status: 502 as const,
            detail: error.message,
            message: 'Your group memberships could not be read from the directory, so your access cannot be decided. Try again in a moment.',
          },
        };
      }
    };
    if (source === 'google-directory') return fromSource();
    if (groupsFound) return {};
    if (groupsOverage(claims)) {
      if (source === 'microsoft-graph' && this.groupSource) return fromSource();
      return {
        denial: {
          reason: 'groups-overage',
          status: 403,
          detail:
            'the ID token has no groups claim but an overage marker (_claim_names.groups: more than 200 groups); set groupsSource to microsoft-graph (with the application permissions User.Read.All and GroupMember.Read.All) or emit fewer groups (groups assigned to the application)',
          message:
            'Your account is a member of too many groups for the identity provider to list them in the sign-in token, and the gateway is not set up to look them up.',
        },
      };
    }
    if (previous?.groupsClaimSeen) {
      return {
        denial: {
          reason: 'groups-claim-missing',
          status: 403,
          detail: `the refresh answer has no claim at ${settings.groupsClaim} (neither in an ID token nor in userinfo) though the login had it; configure the IdP to return an ID token on refresh (PingFederate: "Return ID Token On Refresh Grant") or to put the groups in userinfo`,
          message:
            'The identity provider stopped sending your group memberships, so your access cannot be decided. Sign in again; if it keeps happening, tell your administrator.',
        },
      };
    }
    return {};
  }
}
