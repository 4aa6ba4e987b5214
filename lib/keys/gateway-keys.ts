/**
 * GatewayKeys: the KMS key, every secret of the gateway (kinds and seed values from
 * core/key-material.ts), the rotation Lambda and the rotation schedules, plus narrow
 * grants for the readers (auth service, instances).
 *
 * Size: one construct whose parts belong together: each secret, its seed and its rotation
 * schedule, and the narrow grants of its readers (the grants name the same secrets).
 */
import { Duration, SecretValue, Stack, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, IConstruct } from 'constructs';
import { SECRET_KIND_TAG, SECRET_KINDS, SecretKind, seedSecretValue } from '../../core/key-material';
import { KEY_SYNC_DEFAULTS } from '../../core/instance/key-sync';
import { DEFAULT_SESSION_ALGORITHM, DEFAULT_SESSION_TTL_SECONDS, SESSION_ALGORITHMS, SessionAlgorithm } from '../../core/session-contract';
import { newGatewayFunction } from '../private/gateway-function';
import { LAMBDA_ASSETS } from '../../core/lambda-assets';
import { newEncryptedLogGroup } from '../private/log-group';
import { FrontendCertificate, FrontendCertificateSource } from './frontend-certificate';
import { acknowledge, acknowledgeLambdaFindings } from '../private/nag-acknowledgements';
import { GatewayPropsError } from '../private/validation';
import { newGatewayEncryptionKey } from './encryption-key';
import {
  certificateScheduleProblem,
  CLEAR_ABANDONED_ROTATIONS,
  DEFAULT_SIGNING_KEY_TIMING,
  minimumSigningKeyIntervalSeconds,
  ROTATION_DEFAULTS,
  ROTATION_SCHEDULE_DEFAULTS_DAYS,
  rotationEnvironment,
  SigningKeyTiming,
  signingScheduleProblem,
} from '../../core/rotation-contract';

export interface GatewayKeysProps {
  /**
   * KMS key that encrypts every secret.
   * @default - a new customer-managed key with yearly automatic rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Session signing algorithm, "ES256" or "RS256", fixed per deployment.
   * @default "ES256"
   */
  readonly sessionAlgorithm?: string;
  /**
   * Where the frontend TLS certificate comes from. Only `FrontendCertificate.selfSigned()`
   * makes a secret (and a rotation) here; `fromSecret` reads yours; `acmExportable` is
   * requested by the fleet, which the instances export it from.
   * @default FrontendCertificate.selfSigned() - browsers warn: for trials only
   */
  readonly frontendCertificate?: FrontendCertificate;
  /**
   * Host name the self-signed frontend certificate is issued for.
   * @default - "localhost"; give the gateway's domain name
   */
  readonly domainName?: string;
  /**
   * How often a new session signing key is made. A key is published one period before it
   * signs and kept one period after. Secrets Manager rotates at any time in a window (for a
   * period in days: the whole UTC day), so two rotations can be as close as the period minus
   * the window; that gap must cover the key-sync interval, the session lifetime and the
   * caches (checked at synth: 1 day is refused, 2 days is the least with the defaults).
   * @default Duration.days(7)
   */
  readonly signingKeyRotation?: Duration;
  /**
   * An explicit schedule for the signing keys instead of `signingKeyRotation`: a Secrets
   * Manager `cron(...)` or `rate(...)` expression (UTC), for example "cron(0 3 ? * MON *)".
   * @default - `signingKeyRotation` as a rate
   */
  readonly signingKeyRotationSchedule?: string;
  /**
   * The length of the rotation window of `signingKeyRotationSchedule`, whole hours.
   * @default - Secrets Manager's default: one hour for schedules in hours, the rest of the UTC day for schedules in days
   */
  readonly signingKeyRotationWindow?: Duration;
  /**
   * The longest session the auth service mints: a retired signing key is dropped only once
   * every session it signed has expired (part of the timing check of the signing schedule).
   * @default Duration.minutes(10)
   */
  readonly sessionLifetime?: Duration;
  /**
   * How often a new cookie encryption key is made (the previous one still decrypts).
   * @default Duration.days(30)
   */
  readonly cookieKeyRotation?: Duration;
  /**
   * How often the fleet's backend client certificate is renewed.
   * @default Duration.days(7)
   */
  readonly backendClientCertificateRotation?: Duration;
  /**
   * How often the self-signed frontend certificate is renewed (ignored with `frontendCertificate`).
   * @default Duration.days(30)
   */
  readonly frontendCertificateRotation?: Duration;
  /**
   * VPC to run the rotation Lambda in (it only calls Secrets Manager).
   * @default - not in a VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets for the rotation Lambda.
   * @default - private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Log group of the rotation Lambda.
   * @default - a new log group encrypted with the key, one year retention
   */
  readonly rotationLogGroup?: logs.ILogGroup;
}

/**
 * The gateway's key material as its readers need it: made by GatewayKeys in this stack, or
 * imported with GatewayKeys.fromGatewayKeysAttributes (keys shared by several gateways or
 * kept in a stack of their own).
 */
export interface IGatewayKeys extends IConstruct {
  /** KMS key of the secrets. */
  readonly encryptionKey: kms.IKey;
  /** `ES256` or `RS256`: the algorithm every session token is signed with. */
  readonly sessionAlgorithm: string;
  /** Private session signing keys (previous/current/next): auth service only. */
  readonly signingKeys: secretsmanager.ISecret;
  /** Public half of the signing keys: instances and verifiers. */
  readonly verificationKeys: secretsmanager.ISecret;
  /** Cookie encryption keys: auth service only. */
  readonly cookieKeys: secretsmanager.ISecret;
  /** The fleet's client certificate for mTLS to Looker: instances. */
  readonly backendClientCertificate: secretsmanager.ISecret;
  /**
   * The secret of the frontend certificate (yours, or the self-signed one the rotation makes).
   * @default - none: an ACM certificate, which the fleet requests and lets the instances export
   */
  readonly frontendCertificate?: secretsmanager.ISecret;
  /** Where the frontend certificate comes from. */
  readonly frontendCertificateSource: FrontendCertificate;
  /** True when the frontend certificate is the self-signed one the rotation makes. */
  readonly frontendCertificateIsSelfSigned: boolean;
  /** Session verification keys (public): instances and anyone checking assertions. */
  grantReadVerificationKeys(grantee: iam.IGrantable): iam.Grant;
  /** Everything an instance reads: verification keys, backend client certificate, frontend certificate. */
  grantReadInstanceMaterial(grantee: iam.IGrantable): iam.Grant;
  /** Everything the auth service reads: signing keys and cookie keys. */
  grantReadAuthServiceMaterial(grantee: iam.IGrantable): iam.Grant;
}

/** The secrets of keys made elsewhere (another stack's GatewayKeys), for GatewayKeys.fromGatewayKeysAttributes. */
export interface GatewayKeysAttributes {
  readonly encryptionKey: kms.IKey;
  readonly signingKeys: secretsmanager.ISecret;
  readonly verificationKeys: secretsmanager.ISecret;
  readonly cookieKeys: secretsmanager.ISecret;
  readonly backendClientCertificate: secretsmanager.ISecret;
  /**
   * Where the frontend certificate comes from: `FrontendCertificate.fromSecret(secret)` (for
   * the other stack's self-signed one too, with `frontendCertificateIsSelfSigned`) or
   * `FrontendCertificate.acmExportable()` (the fleet requests it). `selfSigned()` makes a
   * secret and is for GatewayKeys only.
   */
  readonly frontendCertificate: FrontendCertificate;
  /**
   * The algorithm the keys' rotation signs with ("ES256" or "RS256").
   * @default "ES256"
   */
  readonly sessionAlgorithm?: string;
  /**
   * Whether the frontend certificate is the self-signed one the rotation makes.
   * @default false
   */
  readonly frontendCertificateIsSelfSigned?: boolean;
}

/** What every IGatewayKeys grants, from its secrets. */
abstract class GatewayKeysBase extends Construct implements IGatewayKeys {
  public abstract readonly encryptionKey: kms.IKey;
  public abstract readonly sessionAlgorithm: string;
  public abstract readonly signingKeys: secretsmanager.ISecret;
  public abstract readonly verificationKeys: secretsmanager.ISecret;
  public abstract readonly cookieKeys: secretsmanager.ISecret;
  public abstract readonly backendClientCertificate: secretsmanager.ISecret;
  public abstract readonly frontendCertificate?: secretsmanager.ISecret;
  public abstract readonly frontendCertificateSource: FrontendCertificate;
  public abstract readonly frontendCertificateIsSelfSigned: boolean;

  /** Session verification keys (public): instances and anyone checking assertions. */
  public grantReadVerificationKeys(grantee: iam.IGrantable): iam.Grant {
    return this.verificationKeys.grantRead(grantee);
  }

  /** Private session signing keys: the auth service only. */
  public grantReadSigningKeys(grantee: iam.IGrantable): iam.Grant {
    return this.signingKeys.grantRead(grantee);
  }

  /** Cookie encryption keys: the auth service only. */
  public grantReadCookieKeys(grantee: iam.IGrantable): iam.Grant {
    return this.cookieKeys.grantRead(grantee);
  }

  /** The fleet's backend client certificate. */
  public grantReadBackendClientCertificate(grantee: iam.IGrantable): iam.Grant {
    return this.backendClientCertificate.grantRead(grantee);
  }

  /** The frontend certificate and key, when they are in a secret (an ACM certificate is granted by the fleet: export of that one certificate). */
  public grantReadFrontendCertificate(grantee: iam.IGrantable): iam.Grant {
    return this.frontendCertificate?.grantRead(grantee) ?? iam.Grant.drop(grantee, 'read the frontend certificate: it is in ACM, not in a secret');
  }

  /** Everything an instance reads: verification keys, backend client certificate, frontend certificate. */
  public grantReadInstanceMaterial(grantee: iam.IGrantable): iam.Grant {
    return this.grantReadVerificationKeys(grantee).combine(this.grantReadBackendClientCertificate(grantee)).combine(this.grantReadFrontendCertificate(grantee));
  }

  /** Everything the auth service reads: signing keys and cookie keys. */
  public grantReadAuthServiceMaterial(grantee: iam.IGrantable): iam.Grant {
    return this.grantReadSigningKeys(grantee).combine(this.grantReadCookieKeys(grantee));
  }
}

class ImportedGatewayKeys extends GatewayKeysBase {
  public readonly encryptionKey: kms.IKey;
  public readonly sessionAlgorithm: string;
  public readonly signingKeys: secretsmanager.ISecret;
  public readonly verificationKeys: secretsmanager.ISecret;
  public readonly cookieKeys: secretsmanager.ISecret;
  public readonly backendClientCertificate: secretsmanager.ISecret;
  public readonly frontendCertificate?: secretsmanager.ISecret;
  public readonly frontendCertificateSource: FrontendCertificate;
  public readonly frontendCertificateIsSelfSigned: boolean;

  constructor(scope: Construct, id: string, attrs: GatewayKeysAttributes) {
    super(scope, id);
    const algorithm = attrs.sessionAlgorithm ?? DEFAULT_SESSION_ALGORITHM;
    if (!(SESSION_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw new GatewayPropsError(
        `GatewayKeys.fromGatewayKeysAttributes ${this.node.path}`,
        `sessionAlgorithm ${JSON.stringify(algorithm)} is not supported; use one of ${SESSION_ALGORITHMS.join(', ')}: the one the keys' rotation signs with.`,
      );
    }
    this.encryptionKey = attrs.encryptionKey;
    this.sessionAlgorithm = algorithm;
    this.signingKeys = attrs.signingKeys;
    this.verificationKeys = attrs.verificationKeys;
    this.cookieKeys = attrs.cookieKeys;
    this.backendClientCertificate = attrs.backendClientCertificate;
    if (attrs.frontendCertificate.source === FrontendCertificateSource.SELF_SIGNED) {
      throw new GatewayPropsError(
        `GatewayKeys.fromGatewayKeysAttributes ${this.node.path}`,
        "frontendCertificate FrontendCertificate.selfSigned() makes a secret, which only GatewayKeys does: give FrontendCertificate.fromSecret(<the other stack's keys.frontendCertificate>) and frontendCertificateIsSelfSigned: true.",
      );
    }
    this.frontendCertificateSource = attrs.frontendCertificate;
    this.frontendCertificate = attrs.frontendCertificate.secret;
    this.frontendCertificateIsSelfSigned = attrs.frontendCertificateIsSelfSigned ?? false;
  }
}

/**
 * GatewayKeys: the KMS key, every secret of the gateway, the rotation Lambda and the
 * rotation schedules, plus narrow grants for the readers (auth service, instances).
 */
export class GatewayKeys extends GatewayKeysBase {
  /** Keys made elsewhere (for example by a GatewayKeys in another stack), for the auth service and the fleet to read. */
  public static fromGatewayKeysAttributes(scope: Construct, id: string, attrs: GatewayKeysAttributes): IGatewayKeys {
    return new ImportedGatewayKeys(scope, id, attrs);
  }

  public readonly encryptionKey: kms.IKey;
  /** `ES256` or `RS256`: the algorithm every session token is signed with. */
  public readonly sessionAlgorithm: string;
  /** Private session signing keys (previous/current/next): auth service only. */
  public readonly signingKeys: secretsmanager.ISecret;
  /** Public half of the signing keys, published by the rotation: instances and verifiers. */
  public readonly verificationKeys: secretsmanager.ISecret;
  /** Cookie encryption keys: auth service only. */
  public readonly cookieKeys: secretsmanager.ISecret;
  /** Internal CA of the backend client certificate: rotation only. */
  public readonly backendCa: secretsmanager.Secret;
  /** The fleet's client certificate for mTLS to Looker: instances. */
  public readonly backendClientCertificate: secretsmanager.ISecret;
  /** The secret of the frontend certificate: the user's, or a self-signed one made by the rotation; none for ACM. */
  public readonly frontendCertificate?: secretsmanager.ISecret;
  /** Where the frontend certificate comes from. */
  public readonly frontendCertificateSource: FrontendCertificate;
  /** True when the frontend certificate is self-signed. */
  public readonly frontendCertificateIsSelfSigned: boolean;
  public readonly rotationFunction: lambda.Function;
  /** The rotation schedules; their first rotation (on deploy) replaces the seed values. */
  public readonly rotationSchedules: secretsmanager.RotationSchedule[] = [];
  public readonly rotationLogGroup: logs.ILogGroup;
  /** The hourly schedule that has the rotation function clear abandoned rotations. */
  public readonly abandonedRotationCheck: events.Rule;

  constructor(scope: Construct, id: string, props: GatewayKeysProps = {}) {
    super(scope, id);
    const where = `GatewayKeys ${this.node.path}`;
    const algorithm = props.sessionAlgorithm ?? DEFAULT_SESSION_ALGORITHM;
    if (!(SESSION_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw new GatewayPropsError(
        where,
        `sessionAlgorithm ${JSON.stringify(algorithm)} is not supported; use one of ${SESSION_ALGORITHMS.join(', ')} (ES256 is the default).`,
      );
    }
    const sessionAlgorithm = algorithm as SessionAlgorithm;
    this.sessionAlgorithm = sessionAlgorithm;
    const sessionLifetime = props.sessionLifetime ?? Duration.seconds(DEFAULT_SESSION_TTL_SECONDS);
    const timing: SigningKeyTiming = {
      ...DEFAULT_SIGNING_KEY_TIMING,
      keySyncIntervalSeconds: KEY_SYNC_DEFAULTS.intervalSeconds,
      keySyncRandomDelaySeconds: KEY_SYNC_DEFAULTS.randomDelaySeconds,
      sessionLifetimeSeconds: sessionLifetime.isUnresolved() ? DEFAULT_SESSION_TTL_SECONDS : sessionLifetime.toSeconds(),
    };
    const signingSchedule = signingRotationRules(where, props, timing);

    this.encryptionKey = props.encryptionKey ?? newGatewayEncryptionKey(this, 'Key');

    this.signingKeys = this.newSecret('SigningKeys', SECRET_KINDS.signingKeys, 'private session signing keys (previous/current/next)');
    this.verificationKeys = this.newSecret('VerificationKeys', SECRET_KINDS.verificationKeys, 'public session verification keys, published by the rotation');
    this.cookieKeys = this.newSecret('CookieKeys', SECRET_KINDS.cookieKeys, 'cookie encryption keys (current/previous)');
    this.backendCa = this.newSecret('BackendCa', SECRET_KINDS.backendCa, 'internal CA of the fleet client certificate');
    this.backendClientCertificate = this.newSecret(
      'BackendClientCertificate',
      SECRET_KINDS.backendClientCertificate,
      'fleet client certificate for mTLS to Looker',
    );
    this.frontendCertificateSource = props.frontendCertificate ?? FrontendCertificate.selfSigned();
    this.frontendCertificateIsSelfSigned = this.frontendCertificateSource.source === FrontendCertificateSource.SELF_SIGNED;
    this.frontendCertificate = this.frontendCertificateIsSelfSigned
      ? this.newSecret('FrontendCertificate', SECRET_KINDS.frontendCertificate, 'self-signed frontend certificate (replace with your own)')
      : this.frontendCertificateSource.secret;

    const rotatedSecrets: secretsmanager.ISecret[] = [
      this.signingKeys,
      this.cookieKeys,
      this.backendClientCertificate,
      ...(this.frontendCertificateIsSelfSigned && this.frontendCertificate ? [this.frontendCertificate] : []),
    ];
    const environment = withPropsContext(where, () =>
      rotationEnvironment({
        sessionAlgorithm,
        verificationKeysSecretArn: this.verificationKeys.secretArn,
        backendCaSecretArn: this.backendCa.secretArn,
        frontendDomainName: props.domainName ?? 'localhost',
        // Rotations that come sooner than the timing allows keep the signing key (by hand, or on deploy).
        signingKeyMinAgeSeconds: minimumSigningKeyIntervalSeconds(timing),
        rotatedSecretArns: rotatedSecrets.map((secret) => secret.secretArn),
      }),
    );
    this.rotationLogGroup = props.rotationLogGroup ?? newEncryptedLogGroup(this, 'RotationLogs', this.encryptionKey, logs.RetentionDays.ONE_YEAR);
    this.rotationFunction = newGatewayFunction(this, 'RotationFunction', {
      asset: LAMBDA_ASSETS.rotation,
      description: 'cdk-looker-gateway: rotates session signing keys, cookie keys and certificates',
      environment: environment,
      logGroup: this.rotationLogGroup,
      timeout: Duration.minutes(1),
      memorySize: 512,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
    });
    acknowledgeLambdaFindings(this.rotationFunction, {
      inVpc: props.vpc !== undefined,
      deadLetterReason:
        'Secrets Manager drives every rotation step itself: a failed rotation leaves the secret on its current value and is resumed by the next rotation, so a dead-letter queue would hold nothing to replay. Failures raise the rotation alarm.',
    });

    const days = ROTATION_SCHEDULE_DEFAULTS_DAYS;
    const signingKeysSchedule = this.schedule('SigningKeys', this.signingKeys, signingSchedule.every);
    if (signingSchedule.rules) (signingKeysSchedule.node.defaultChild as secretsmanager.CfnRotationSchedule).rotationRules = signingSchedule.rules;
    this.schedule('CookieKeys', this.cookieKeys, props.cookieKeyRotation ?? Duration.days(days.cookieEncryptionKeys));
    const clientRotation = props.backendClientCertificateRotation ?? Duration.days(days.backendClientCertificate);
    checkCertificateSchedule(where, 'backendClientCertificateRotation', ROTATION_DEFAULTS.backendClientValidityDays, clientRotation);
    this.schedule('BackendClientCertificate', this.backendClientCertificate, clientRotation);
    if (this.frontendCertificateIsSelfSigned) {
      const frontendRotation = props.frontendCertificateRotation ?? Duration.days(days.frontendCertificate);
      checkCertificateSchedule(where, 'frontendCertificateRotation', ROTATION_DEFAULTS.frontendValidityDays, frontendRotation);
      this.schedule('FrontendCertificate', this.frontendCertificate!, frontendRotation);
    }

    // Secrets Manager may invoke the rotation function for this account's secrets only
    // (confused-deputy protection; Control Tower CT.LAMBDA.PR.2).
    for (const child of this.rotationFunction.node.children) {
      if (
        child instanceof lambda.CfnPermission &&
        child.principal === 'secretsmanager.amazonaws.com' &&
        child.sourceAccount === undefined &&
        child.sourceArn === undefined
      ) {
        child.sourceAccount = Stack.of(this).account;
      }
    }
    acknowledge(
      this.rotationFunction.role!.node.tryFindChild('DefaultPolicy')!,
      ['AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]'],
      'Added by the CDK rotation schedule: encrypt/decrypt of the gateway key only, only through Secrets Manager (kms:ViaService), to write new secret versions.',
    );
    for (const secret of [this.verificationKeys, this.backendCa]) {
      acknowledge(
        secret,
        ['AwsSolutions-SMG4', 'NIST.800.53.R5-SecretsManagerRotationEnabled', 'HIPAA.Security-SecretsManagerRotationEnabled'],
        secret === this.verificationKeys
          ? 'Written by the rotation of the signing keys (it publishes their public halves here), on the signing-key schedule; a schedule of its own would break the pairing.'
          : 'Created once by the first client-certificate rotation and read by every later one (CA validity 10 years); the client certificates it issues rotate every 7 days.',
      );
    }

    // Beyond the rotated secrets themselves: signing-key rotation publishes the public
    // keys, client-certificate rotation creates the CA once and reads it after.
    for (const [sid, secret] of [
      ['PublishVerificationKeys', this.verificationKeys],
      ['KeepBackendCa', this.backendCa],
    ] as const) {
      this.rotationFunction.addToRolePolicy(
        new iam.PolicyStatement({
          sid,
          actions: [
            'secretsmanager:DescribeSecret',
            'secretsmanager:GetSecretValue',
            'secretsmanager:PutSecretValue',
            'secretsmanager:UpdateSecretVersionStage',
          ],
          resources: [secret.secretArn],
        }),
      );
      // Same key as the rotated secrets: the rotation schedules already grant its use through Secrets Manager.
      if (secret.encryptionKey !== this.encryptionKey)
        secret.encryptionKey?.grantEncryptDecrypt(
          new kms.ViaServicePrincipal(`secretsmanager.${Stack.of(this).region}.amazonaws.com`, this.rotationFunction.grantPrincipal),
        );
    }

    // A rotation that stopped half-way keeps AWSPENDING on its version, and Secrets Manager
    // then refuses every later rotation and every deployment that updates the schedule.
    // Once an hour the function clears such labels (lambda/rotation/protocol.ts).
    this.rotationFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'FindAbandonedRotations',
        actions: ['secretsmanager:ListSecretVersionIds'],
        resources: rotatedSecrets.map((secret) => secret.secretArn),
      }),
    );
    this.abandonedRotationCheck = new events.Rule(this, 'AbandonedRotationCheck', {
      description: 'cdk-looker-gateway: clears the AWSPENDING label of rotations that stopped half-way (they block later rotations and deployments)',
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [
        new targets.LambdaFunction(this.rotationFunction, {
          event: events.RuleTargetInput.fromObject({ action: CLEAR_ABANDONED_ROTATIONS }),
          retryAttempts: 2,
        }),
      ],
    });
  }

  private newSecret(id: string, kind: SecretKind, what: string): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, id, {
      description: `cdk-looker-gateway: ${what}`,
      encryptionKey: this.encryptionKey,
      // The seed holds no key material (empty key lists and PEMs) and never changes (see
      // core/key-material.ts): CloudFormation writes it once, the first rotation, started by
      // the schedule on deploy, writes the real value, and no later deploy rewrites it.
      secretStringValue: SecretValue.unsafePlainText(seedSecretValue(kind)),
    });
    Tags.of(secret).add(SECRET_KIND_TAG, kind);
    return secret;
  }

  /**
   * Failed rotation steps: the rotation function's errors (Sum over an hour; a rotation step
   * that throws is retried by Secrets Manager, so an hour holds the whole attempt).
   */
  public metricRotationFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.rotationFunction.metricErrors({ period: Duration.hours(1), statistic: 'Sum', ...props });
  }

  private schedule(id: string, secret: secretsmanager.ISecret, every: Duration): secretsmanager.RotationSchedule {
    if (!every.isUnresolved() && every.toMinutes({ integral: false }) < 240) {
      throw new GatewayPropsError(
        `GatewayKeys ${this.node.path}`,
        `rotation of ${id} every ${every.toHumanString()} is too often: Secrets Manager rotates at most every 4 hours.`,
      );
    }
    const schedule = new secretsmanager.RotationSchedule(this, `${id}Rotation`, {
      secret,
      rotationLambda: this.rotationFunction,
      automaticallyAfter: every,
      // The first deploy starts a rotation at once, which replaces the seed value.
      rotateImmediatelyOnUpdate: true,
    });
    this.rotationSchedules.push(schedule);
    return schedule;
  }
}

function withPropsContext<T>(where: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    throw new GatewayPropsError(where, (error as Error).message);
  }
}

/**
 * The signing keys' schedule: `signingKeyRotation` (a rate), or an explicit
 * `signingKeyRotationSchedule` with its window, checked against the timing.
 */
function signingRotationRules(
  where: string,
  props: GatewayKeysProps,
  timing: SigningKeyTiming,
): { every: Duration; rules?: secretsmanager.CfnRotationSchedule.RotationRulesProperty } {
  const fail = (message: string) => new GatewayPropsError(where, message);
  if (props.signingKeyRotationWindow && props.signingKeyRotationSchedule === undefined) {
    throw fail(
      'signingKeyRotationWindow is the window of signingKeyRotationSchedule: give the schedule too (for example "cron(0 3 ? * MON *)"), or remove the window.',
    );
  }
  if (props.signingKeyRotationSchedule !== undefined && props.signingKeyRotation) {
    throw fail('give either signingKeyRotation (a period) or signingKeyRotationSchedule (an expression with its window), not both.');
  }
  const every = props.signingKeyRotation ?? Duration.days(ROTATION_SCHEDULE_DEFAULTS_DAYS.sessionSigningKeys);
  if (props.signingKeyRotationSchedule === undefined) {
    if (every.isUnresolved()) return { every };
    const expression = events.Schedule.rate(every).expressionString;
    const problem = signingScheduleProblem('signingKeyRotation', expression, undefined, timing);
    if (problem) throw fail(problem.replace(`"${expression}"`, `${every.toHumanString()} ("${expression}")`));
    return { every };
  }
  const expression = props.signingKeyRotationSchedule;
  const window = props.signingKeyRotationWindow;
  let duration: string | undefined;
  if (window && !window.isUnresolved()) {
    const hours = window.toHours({ integral: false });
    if (!Number.isInteger(hours) || hours < 1 || hours > 24) {
      throw fail(
        `signingKeyRotationWindow is ${window.toHumanString()}; Secrets Manager takes a window of whole hours from 1 to 24 (for example Duration.hours(2)).`,
      );
    }
    duration = `${hours}h`;
  }
  const problem = signingScheduleProblem('signingKeyRotationSchedule', expression, duration, timing);
  if (problem) throw fail(problem);
  return { every, rules: { scheduleExpression: expression, duration } };
}

function checkCertificateSchedule(where: string, prop: string, validityDays: number, every: Duration): void {
  if (every.isUnresolved()) return;
  const problem = certificateScheduleProblem(prop, validityDays, every.toDays({ integral: false }));
  if (problem) throw new GatewayPropsError(where, problem);
}
