/**
 * `cdk-looker-gateway/nag`: the cdk-nag rule packs the gateway is checked against (cdk-nag 3:
 * validation plugins). A subpath of its own, so that the package entry never loads cdk-nag
 * (an optional peer dependency: install it to use this). Every finding is fixed or
 * acknowledged at its resource with a reason (docs/operations.md, "cdk-nag findings");
 * nothing is acknowledged at stack level.
 *
 *   import { GatewayNagPacks } from 'cdk-looker-gateway/nag';
 *   GatewayNagPacks.addTo(app); // `cdk synth` then fails on any unacknowledged error
 */
import { PolicyValidationPluginReport, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NagPack, NIST80053R5Checks, PCIDSS321Checks } from 'cdk-nag';
import { IConstruct } from 'constructs';

/** One unacknowledged finding of a pack. */
export interface NagFinding {
  readonly pack: string;
  readonly rule: string;
  readonly severity: string;
  readonly resources: string[];
}

/** The four packs: AWS Solutions, NIST 800-53 rev 5, HIPAA Security, PCI DSS 3.2.1. */
export class GatewayNagPacks {
  /** New instances of the four packs (reporting on `scope`'s app when given). */
  public static packs(scope?: IConstruct): NagPack[] {
    return [new AwsSolutionsChecks(scope), new NIST80053R5Checks(scope), new HIPAASecurityChecks(scope), new PCIDSS321Checks(scope)];
  }

  /** Registers the four packs on an app (or stage): `cdk synth` then fails on any unacknowledged error. */
  public static addTo(app: IConstruct): NagPack[] {
    const packs = GatewayNagPacks.packs(app);
    Validations.of(app).addPlugins(...packs);
    return packs;
  }

  /** Runs the four packs on `scope` directly (tests) and lists every unacknowledged finding. */
  public static findings(scope: IConstruct): NagFinding[] {
    return GatewayNagPacks.packs().flatMap((pack) => {
      const report: PolicyValidationPluginReport = pack.validateScope(scope);
      return report.violations.map((violation) => ({
        pack: pack.readPackName,
        rule: violation.ruleName,
        severity: violation.severity ?? 'unknown',
        resources: violation.violatingResources.map((resource) => resource.constructPath ?? resource.resourceLogicalId ?? '?'),
      }));
    });
  }

  private constructor() {}
}
