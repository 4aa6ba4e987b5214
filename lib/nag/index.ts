/**
 * The cdk-nag rule packs the gateway is checked against (cdk-nag 3: validation plugins).
 * Every finding is fixed or acknowledged at its resource with a reason (README.md, "cdk-nag findings"
 * lists them); nothing is acknowledged at stack level.
 */
import { PolicyValidationPluginReport, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NagPack, NIST80053R5Checks, PCIDSS321Checks } from 'cdk-nag';
import { IConstruct } from 'constructs';

/** The four packs: AWS Solutions, NIST 800-53 rev 5, HIPAA Security, PCI DSS 3.2.1. */
export function gatewayNagPacks(scope?: IConstruct): NagPack[] {
  return [new AwsSolutionsChecks(scope), new NIST80053R5Checks(scope), new HIPAASecurityChecks(scope), new PCIDSS321Checks(scope)];
}

/** Registers the four packs on an app (or stage): `cdk synth` then fails on any unacknowledged error. */
export function addGatewayNagPacks(app: IConstruct): NagPack[] {
  const packs = gatewayNagPacks(app);
  Validations.of(app).addPlugins(...packs);
  return packs;
}

export interface NagFinding {
  readonly pack: string;
  readonly rule: string;
  readonly severity: string;
  readonly resources: string[];
}

/** Runs the four packs on `scope` directly (tests) and lists every unacknowledged finding. */
export function nagFindings(scope: IConstruct): NagFinding[] {
  return gatewayNagPacks().flatMap((pack) => {
    const report: PolicyValidationPluginReport = pack.validateScope(scope);
    return report.violations.map((violation) => ({
      pack: pack.readPackName,
      rule: violation.ruleName,
      severity: violation.severity ?? 'unknown',
      resources: violation.violatingResources.map((resource) => resource.constructPath ?? resource.resourceLogicalId ?? '?'),
    }));
  });
}
