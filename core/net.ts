/** Host names and addresses, as the constructs check them at synth and the renderers use them. */

/** A DNS host name: labels of letters, digits and hyphens, at least two labels, at most 253 characters. */
const HOST_NAME_PATTERN = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/i;
const IPV4_PATTERN = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isHostName(value: string): boolean {
  return HOST_NAME_PATTERN.test(value);
}

export function isIpv4Address(value: string): boolean {
  return IPV4_PATTERN.test(value);
}
