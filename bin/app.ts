#!/usr/bin/env node
/**
 * The deployable Looker gateway. Settings come from cdk.json "context" (example values)
 * or `-c key=value`; docs/deployable-app.md lists them. The four cdk-nag packs run on synth.
 */
import { App } from 'aws-cdk-lib';
import { GatewayNagPacks } from '../lib/nag';
import { LookerGatewayStack, settingsFromContext } from '../lib/stack';

// aws-cdk-lib warns about a deprecated property that its own step scaling policy passes
// internally (cooldown); nothing here sets it, and the noise buries real warnings.
process.env.JSII_DEPRECATED ??= 'quiet';

const app = new App();
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'LookerGateway';
new LookerGatewayStack(app, stackName, {
  settings: settingsFromContext(app.node),
  description: 'cdk-looker-gateway: identity-aware HAProxy gateway in front of Looker',
});
GatewayNagPacks.addTo(app);
app.synth();
