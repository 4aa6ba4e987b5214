/** The access key id in a SigV4 `Authorization` header (`AWS4-HMAC-SHA256 Credential=<id>/<date>/...`), or '' when unsigned. */
export function accessKeyIdOf(authorization: string | undefined): string {
  return /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1] ?? '';
}
