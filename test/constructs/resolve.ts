/**
 * Resolves the intrinsic functions of a synthesized template with fake deploy-time values,
 * so tests can read strings (user data, Lambda environments, Metadata) as an instance or a
 * function would see them after CloudFormation substituted the real ones.
 */
export interface FakeDeployment {
  readonly region: string;
  readonly accountId: string;
  readonly stackName: string;
  /** Values for `Ref` of a logical id (default: `<logicalId>-ref`). */
  readonly refs?: Record<string, string>;
  /** Values for `Fn::GetAtt` `[logicalId, attribute]` as `logicalId.attribute` (default: `<logicalId>-<attribute>`). */
  readonly attributes?: Record<string, string>;
}

export const FAKE_DEPLOYMENT: FakeDeployment = { region: 'eu-west-1', accountId: '123456789012', stackName: 'LookerGateway' };

export function resolveIntrinsics(value: unknown, fake: FakeDeployment, template: { Resources: Record<string, { Type: string }> }): unknown {
  const pseudo: Record<string, string> = {
    'AWS::Region': fake.region,
    'AWS::AccountId': fake.accountId,
    'AWS::StackName': fake.stackName,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackId': `arn:aws:cloudformation:${fake.region}:${fake.accountId}:stack/${fake.stackName}/00000000-0000-0000-0000-000000000000`,
  };
  const ref = (logicalId: string): string => {
    if (pseudo[logicalId]) return pseudo[logicalId];
    if (fake.refs?.[logicalId]) return fake.refs[logicalId];
    const type = template.Resources[logicalId]?.Type;
    if (type === 'AWS::SecretsManager::Secret') return `arn:aws:secretsmanager:${fake.region}:${fake.accountId}:secret:${logicalId}-AbCdEf`;
    return `${logicalId.toLowerCase()}-ref`;
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (!v || typeof v !== 'object') return v;
    const entries = Object.entries(v);
    if (entries.length === 1) {
      const [fn, arg] = entries[0] as [string, unknown];
      switch (fn) {
        case 'Ref':
          return ref(arg as string);
        case 'Fn::GetAtt': {
          const [id, attribute] = Array.isArray(arg) ? (arg as string[]) : (arg as string).split('.');
          return fake.attributes?.[`${id}.${attribute}`] ?? `${id.toLowerCase()}-${attribute.toLowerCase()}`;
        }
        case 'Fn::Join': {
          const [separator, parts] = arg as [string, unknown[]];
          return (walk(parts) as unknown[]).map(String).join(separator);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [number | string, unknown];
          return (walk(list) as unknown[])[Number(walk(index))];
        }
        case 'Fn::GetAZs':
          return [`${fake.region}a`, `${fake.region}b`, `${fake.region}c`];
        case 'Fn::Base64':
          return Buffer.from(String(walk(arg)), 'utf8').toString('base64');
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [arg as string, {}];
          return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
            if (vars[name] !== undefined) return String(walk(vars[name]));
            if (name.includes('.')) return String(walk({ 'Fn::GetAtt': name.split('.') }));
            return ref(name);
          });
        }
        default:
          break;
      }
    }
    return Object.fromEntries(entries.map(([k, x]) => [k, walk(x)]));
  };
  return walk(value);
}
