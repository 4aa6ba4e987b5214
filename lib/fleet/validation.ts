/**
 * Synth-time checks of GatewayFleetProps that the renderer cannot make (capacity, ports,
 * instance types, CIDRs); each error names the prop, the value and the fix.
 */
import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { GatewayConfigError } from '../../core/haproxy/validate';
import { assertIntegerInRange, assertPort, GatewayPropsError } from '../private/validation';
import type { GatewayFleetProps } from './gateway-fleet';

/** Runs the renderer; its GatewayConfigError (which names the option and the fix) becomes a props error of this construct. */
export function withPropsErrors<T>(where: string, render: () => T): T {
  try {
    return render();
  } catch (error) {
    if (error instanceof GatewayConfigError) throw new GatewayPropsError(where, error.message);
    throw error;
  }
}
export function validateFleetProps(where: string, props: GatewayFleetProps, minCapacity: number, maxCapacity: number): void {
  assertIntegerInRange(
    where,
    'minCapacity',
    minCapacity,
    2,
    100,
    'The gateway runs at least 2 instances in 2 Availability Zones so that one can fail or be replaced.',
  );
  assertIntegerInRange(where, 'maxCapacity', maxCapacity, 3, 200, 'It must exceed minCapacity: a rolling update adds an instance before it removes one.');
  if (!Token.isUnresolved(minCapacity) && !Token.isUnresolved(maxCapacity) && minCapacity >= maxCapacity) {
    throw new GatewayPropsError(
      where,
      `minCapacity (${minCapacity}) must be less than maxCapacity (${maxCapacity}): rolling updates keep minCapacity instances in service and add one before removing one. Raise maxCapacity to at least ${minCapacity + 1}.`,
    );
  }
  for (const [prop, value] of [
    ['instancePort', props.instancePort],
    ['healthCheckPort', props.healthCheckPort],
    ['readinessPort', props.readinessPort],
    ['metricsPort', props.metricsPort],
    ['httpRedirectPort', props.httpRedirectPort],
  ] as const) {
    if (value !== undefined) assertPort(where, prop, value);
  }
  const ports = [
    props.instancePort ?? 443,
    props.healthCheckPort ?? 8080,
    props.readinessPort ?? 8081,
    props.metricsPort ?? 8405,
    props.httpRedirectPort ?? 80,
  ].filter((p) => !Token.isUnresolved(p));
  if (new Set(ports).size !== ports.length) {
    throw new GatewayPropsError(
      where,
      `instancePort, healthCheckPort, readinessPort, metricsPort and httpRedirectPort must differ, got ${ports.join(', ')}: each is a listener of its own.`,
    );
  }
  if (props.desiredCapacity !== undefined) {
    assertIntegerInRange(where, 'desiredCapacity', props.desiredCapacity, 2, 200, 'Leave it unset to start with minCapacity.');
    if (!Token.isUnresolved(props.desiredCapacity) && !Token.isUnresolved(minCapacity) && !Token.isUnresolved(maxCapacity)) {
      if (props.desiredCapacity < minCapacity || props.desiredCapacity > maxCapacity)
        throw new GatewayPropsError(
          where,
          `desiredCapacity (${props.desiredCapacity}) is outside minCapacity..maxCapacity (${minCapacity}..${maxCapacity}): give a value in that range, or leave it unset.`,
        );
    }
  }
  if (props.targetCpuUtilizationPercent !== undefined)
    assertIntegerInRange(
      where,
      'targetCpuUtilizationPercent',
      props.targetCpuUtilizationPercent,
      10,
      90,
      'Leave headroom for TLS handshakes in bursts; 60 is the default.',
    );
  if (props.connectionsPerInstance !== undefined)
    assertIntegerInRange(where, 'connectionsPerInstance', props.connectionsPerInstance, 10, 1_000_000, 'Size it from a load test of your instance type.');
  if (props.rootVolumeGiB !== undefined) assertIntegerInRange(where, 'rootVolumeGiB', props.rootVolumeGiB, 8, 1024, 'Debian 13 needs at least 8 GiB.');
  for (const cidr of props.clientCidrs ?? []) {
    if (!Token.isUnresolved(cidr) && !/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/.test(cidr)) {
      throw new GatewayPropsError(where, `clientCidrs entry ${JSON.stringify(cidr)} is not an IPv4 CIDR. Write it like "203.0.113.0/24".`);
    }
  }
  if (props.clientCidrs && props.clientCidrs.length === 0) {
    throw new GatewayPropsError(where, 'clientCidrs is empty: nobody could connect. Leave it unset for the default or list the client networks.');
  }
}
/** One AMI serves the whole group: every type must share the first one's architecture, and appear once. */
export function checkInstanceTypes(where: string, types: readonly ec2.InstanceType[]): void {
  const names = types.map((type) => type.toString());
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate)
    throw new GatewayPropsError(where, `instance type ${duplicate} is listed twice (instanceType and fallbackInstanceTypes): list each type once.`);
  const first = types[0];
  const other = types.find((type) => type.architecture !== first.architecture);
  if (other) {
    throw new GatewayPropsError(
      where,
      `fallbackInstanceTypes has ${other.toString()} (${other.architecture}) but instanceType ${first.toString()} is ${first.architecture}: the group launches one AMI, so every type must have the same architecture. Pick fallbacks of the same family, for example c7g.medium for m7g.medium.`,
    );
  }
}
