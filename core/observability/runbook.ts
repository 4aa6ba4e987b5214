/**
 * The runbook of every alarm GatewayObservability makes: what it means, the likely causes and
 * the first command to run. The alarm descriptions are made from it (the log group and
 * function names filled in), and the runbook table of docs/observability.md has one row per entry
 * (test/constructs/observability.test.ts checks both ways against the synthesized template).
 */

/** Names the first commands use, filled in with the deployed resources' names. */
export interface RunbookNames {
  readonly accessLogGroup: string;
  readonly auditLogGroup: string;
  readonly rotationLogGroup: string;
  readonly keySyncLogGroup: string;
  readonly haproxyLogGroup: string;
  readonly instanceLogGroup: string;
  /** The auth API's access log group (API Gateway). */
  readonly apiAccessLogGroup?: string;
  readonly authFunction?: string;
}

export interface RunbookEntry {
  /** What fired, in one sentence. */
  readonly meaning: string;
  readonly likelyCauses: string;
  /** The first command, with {placeholders} of RunbookNames. */
  readonly firstCommand: string;
  /** What to look for in its output, or what comes next. */
  readonly hint?: string;
}

const ERRORS_OF_KEY_SYNC = `aws logs tail {keySyncLogGroup} --since 30m --filter-pattern '{ $.outcome = "error" }'`;
const KEY_SYNC_HINT = "the message names the failed call and AWS's answer; the stream is the instance id";

export const RUNBOOK = {
  ServerErrorRate: {
    meaning: "More than the allowed share of users' requests through the gateway ended in a 5xx for 10 minutes.",
    likelyCauses:
      'Looker nodes failing or slow (502, 504; decision and server fields), the auth service failing on /oauth2 routes, one gateway instance with a broken configuration',
    firstCommand: `aws logs tail {accessLogGroup} --since 15m --filter-pattern '{ $.frontend = "gateway" && $.status >= 500 }'`,
  },
  DeniedRate: {
    meaning: "An unusual share of users' requests was refused (401, 403) for 10 minutes.",
    likelyCauses:
      'a gateway instance with old session keys (decision unknown-key: see KeySyncStale), an IdP or mapping change that denies everyone, forged or replayed cookies (bad-signature, session-revoked)',
    firstCommand: `aws logs tail {accessLogGroup} --since 15m --filter-pattern '{ $.frontend = "gateway" && ($.status = 401 || $.status = 403) }'`,
    hint: `count by the decision field`,
  },
  NoHealthyLookerNode: {
    meaning: "No Looker node passes the gateway's health check: users get 503 with the code looker-unavailable; the gateways stay in service.",
    likelyCauses:
      "Looker down or restarting, Looker's certificate not trusted or for another name (mTLS), the network or security group between the gateways and Looker",
    firstCommand: 'aws logs tail {haproxyLogGroup} --since 30m',
    hint: "HAProxy says why each server went DOWN: Layer4 is the network, Layer6 is TLS, Layer7 is Looker's answer",
  },
  LookerNodesLow: {
    meaning:
      "A gateway instance's HAProxy counts fewer Looker servers UP than configured (the static hosts; 1 for a DNS name): the other nodes carry the load, users do not feel it yet.",
    likelyCauses:
      'a Looker node down, restarting or being upgraded, its certificate no longer trusted or for another name (mTLS), a security group or route that lets this instance reach only some nodes',
    firstCommand: `aws logs tail {haproxyLogGroup} --since 30m --filter-pattern '"is DOWN"'`,
    hint: "which server went DOWN and why (Layer4 is the network, Layer6 is TLS, Layer7 is Looker's answer); the key-sync log's lookerServersUp per instance (stream) says which instances see it",
  },
  UnhealthyHosts: {
    meaning: "At least one gateway instance failed the load balancer's health check for 3 minutes.",
    likelyCauses: 'haproxy stopped on the instance (a rejected reload, a crash), the instance overloaded, the bootstrap failed',
    firstCommand: 'aws logs tail {haproxyLogGroup} --since 30m',
    hint: 'ALERT lines; then aws logs tail {instanceLogGroup} --since 1h',
  },
  NoHealthyGatewayHost: {
    meaning: "No gateway instance passes the load balancer's health check: nobody reaches Looker.",
    likelyCauses:
      'a release whose configuration every instance rejects, instances that cannot read their keys at boot (IAM, KMS, the first rotation), an Availability Zone outage',
    firstCommand: 'aws logs tail {instanceLogGroup} --since 1h',
    hint: 'the bootstrap log of each instance',
  },
  AuthServiceErrors: {
    meaning: 'The auth service function failed more than 5 times in 5 minutes: logins and refreshes fail.',
    likelyCauses: 'the IdP or Secrets Manager unreachable (NAT gateway, DNS, VPC endpoints), KMS or Secrets Manager access denied, a time-out, a bug',
    firstCommand: `aws logs tail {auditLogGroup} --since 15m --filter-pattern '?ERROR ?"Task timed out"'`,
  },
  AuthServiceThrottles: {
    meaning: 'Lambda throttled the auth service: some logins and refreshes were refused before they ran.',
    likelyCauses: "the function's reserved concurrency reached, the account's concurrency used up by other functions, a login storm or a refresh loop",
    firstCommand: 'aws lambda get-function-concurrency --function-name {authFunction}',
  },
  AuthServiceDurationNearTimeout: {
    meaning: "The slowest auth service calls came within 20% of the function's time-out: the next step is time-outs (504 at the gateway).",
    likelyCauses: 'a slow IdP token or userinfo endpoint, a slow group source (Microsoft Graph, Google Directory), DynamoDB or Secrets Manager throttling',
    firstCommand: `aws logs tail {auditLogGroup} --since 15m --filter-pattern 'REPORT'`,
    hint: `Lambda's REPORT lines: Duration per call`,
  },
  AuthApiServerErrors: {
    meaning: 'The auth API (API Gateway) answered 5xx: the gateway cannot log users in or refresh sessions.',
    likelyCauses: 'the function failing or timing out (502, 504), API Gateway unable to invoke it (permissions after a manual change), the VPC endpoint policy',
    firstCommand: `aws logs tail {apiAccessLogGroup} --since 15m --filter-pattern '{ $.status = "5*" }'`,
  },
  AuthApiThrottled: {
    meaning: 'The auth API refused calls with 429 (its stage throttling): logins and inline refreshes fail.',
    likelyCauses: "the stage's throttlingRateLimit or throttlingBurstLimit too low for the traffic, a client in a loop, the account's API Gateway limit",
    firstCommand: `aws logs tail {apiAccessLogGroup} --since 15m --filter-pattern '{ $.status = "429" }'`,
    hint: `the ip field shows who`,
  },
  LoginFailures: {
    meaning: 'Many logins failed in 5 minutes.',
    likelyCauses: 'an IdP outage, a wrong client secret, a redirect URI not registered at the IdP, mapping rules that deny everyone (reason no-rule-matched)',
    firstCommand: `aws logs tail {auditLogGroup} --since 15m --filter-pattern '{ $.type = "audit" && $.event = "login" && $.outcome != "success" }'`,
    hint: `count by reason`,
  },
  RefreshFailures: {
    meaning: 'Many refreshes failed at the auth service in 5 minutes: users are sent back to the login page.',
    likelyCauses: 'refresh tokens revoked or expired at the IdP (a policy change), an IdP outage, a group source failing (groups-source-failed)',
    firstCommand: `aws logs tail {auditLogGroup} --since 15m --filter-pattern '{ $.type = "audit" && $.event = "refresh" && $.outcome != "success" }'`,
    hint: `count by reason`,
  },
  InlineRefreshFailures: {
    meaning: 'Many inline refreshes failed at the gateways in 5 minutes (the dashboard splits them by the refresh field).',
    likelyCauses:
      'the auth service unreachable or slow from the instances (failed), refreshes refused by the auth service (refused), too many at once (busy, rate-limited)',
    firstCommand: `aws logs tail {accessLogGroup} --since 15m --filter-pattern '{ $.refresh = "failed" || $.refresh = "refused" || $.refresh = "busy" || $.refresh = "rate-limited" || $.refresh = "mismatch" }'`,
  },
  IdpClientAuthFailed: {
    meaning: "The IdP refused the auth service's client credential (invalid_client): no one can sign in or refresh.",
    likelyCauses:
      'the client secret rotated or expired at the IdP and not in Secrets Manager, a wrong tokenEndpointAuthMethod, a certificate credential the IdP no longer knows',
    firstCommand: `aws logs tail {auditLogGroup} --since 1h --filter-pattern '{ $.reason = "idp-client-auth-failed" }'`,
    hint: `the detail names the IdP's answer`,
  },
  RotationFailure: {
    meaning: 'A key or certificate rotation failed: the secret keeps its current value.',
    likelyCauses: 'Secrets Manager or KMS unreachable or denied for the rotation function, a failed step (testSecret), a CA problem for certificates',
    firstCommand: `aws logs tail {rotationLogGroup} --since 2h --filter-pattern '{ $.outcome = "error" }'`,
  },
  RotationStuck: {
    meaning:
      'A rotation stopped half-way and sat unfinished (AWSPENDING older than the limit, 2 hours by default) until the hourly check removed its label; the secret kept its current value.',
    likelyCauses:
      'a rotation step that failed every retry, a rotation function that was denied or timed out; later rotations and deployments that update the schedule were blocked meanwhile',
    firstCommand: `aws logs tail {rotationLogGroup} --since 3h --filter-pattern '{ $.event = "abandoned-rotation-cleared" }'`,
    hint: `then fix the cause and rotate again (docs/keys-and-rotation.md: When a rotation fails)`,
  },
  FrontendCertificateExpiry: {
    meaning: 'A gateway instance serves a frontend certificate close to its expiry: its renewal or export did not reach the instances.',
    likelyCauses:
      "ACM renewal pending validation (the DNS record removed), the export denied to the instance role, key-sync failing on the instances, the self-signed certificate's rotation failing",
    firstCommand: ERRORS_OF_KEY_SYNC,
    hint: KEY_SYNC_HINT,
  },
  KeySyncStale: {
    meaning:
      'A gateway instance has not synced its keys for more than one interval and margin: after the next rotation it refuses sessions signed with the new key (random 401s).',
    likelyCauses:
      'the instance role denied secretsmanager:GetSecretValue, DescribeSecret or kms:Decrypt, Secrets Manager unreachable (NAT gateway, VPC endpoint, DNS), a malformed secret, haproxy -c rejecting the new files',
    firstCommand: ERRORS_OF_KEY_SYNC,
    hint: KEY_SYNC_HINT,
  },
  KeySyncFailed: {
    meaning:
      'A key-sync run failed on a gateway instance; it kept its last good files. One failure may be transient (throttling); KeySyncStale follows if it lasts.',
    likelyCauses: 'the same as KeySyncStale: access denied, Secrets Manager unreachable, a malformed secret, a configuration haproxy -c rejects',
    firstCommand: ERRORS_OF_KEY_SYNC,
    hint: KEY_SYNC_HINT,
  },
  KeySyncKeyMismatch: {
    meaning: "A gateway instance verifies sessions with another current key than the secret's for 10 minutes.",
    likelyCauses: 'its key-sync runs fail (see KeySyncStale), or the reload after the new files failed',
    firstCommand: ERRORS_OF_KEY_SYNC,
    hint: KEY_SYNC_HINT,
  },
} as const satisfies Record<string, RunbookEntry>;

export type AlarmName = keyof typeof RUNBOOK;

/** The alarm description: meaning, likely causes and the first command, with the names filled in. */
export function runbookDescription(name: AlarmName, names: RunbookNames): string {
  const entry: RunbookEntry = RUNBOOK[name];
  const fill = (text: string) =>
    text.replace(/\{([A-Za-z]+)\}/g, (placeholder, key: string) => {
      const value = (names as unknown as Record<string, string | undefined>)[key];
      if (value === undefined) throw new Error(`Internal: the runbook of ${name} names ${placeholder}, which this stack does not have.`);
      return value;
    });
  return `${entry.meaning} Likely causes: ${entry.likelyCauses}. First: ${fill(entry.firstCommand)}${entry.hint ? ` (${fill(entry.hint)})` : ''}`;
}
