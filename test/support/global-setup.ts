/**
 * Before any test: the Lambda assets in dist/assets must be what a build makes now, because
 * the constructs deploy them and the bundle tests run them (what is tested is what ships).
 * `npm test` builds first; a direct `npx jest` after a change to lambda/ or core/ stops here
 * with what changed and the fix instead of testing old code.
 */
import { staleLambdaAssets } from '../../scripts/bundle-lambdas';

export default function checkLambdaAssets(): void {
  const problems = staleLambdaAssets();
  if (problems.length > 0) {
    throw new Error(
      `The Lambda assets in dist/assets are stale:\n- ${problems.join('\n- ')}\nRun \`npm run build\` (npm test runs it first), then the tests again.`,
    );
  }
}
