/**
 * A CloudFormation value with intrinsic functions (`Fn::Join` of strings, `Ref`, `Fn::GetAtt`)
 * as readable text: each deploy-time value becomes a named placeholder in `Fn::Sub` syntax,
 * `${LogicalId}`, `${LogicalId.Attribute}` or `${AWS::Region}`.
 */
export function namedPlaceholders(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(namedPlaceholders).join('');
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 1) {
      const [fn, arg] = entries[0];
      if (fn === 'Ref') return `\${${String(arg)}}`;
      if (fn === 'Fn::GetAtt') return `\${${(Array.isArray(arg) ? arg : String(arg).split('.')).join('.')}}`;
      if (fn === 'Fn::Join') {
        const [separator, parts] = arg as [string, unknown[]];
        return parts.map(namedPlaceholders).join(separator);
      }
    }
  }
  throw new Error(`Cannot show ${JSON.stringify(value).slice(0, 200)} as text: only strings, Fn::Join, Ref and Fn::GetAtt are expected in rendered files.`);
}
