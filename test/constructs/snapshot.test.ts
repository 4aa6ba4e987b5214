/**
 * Snapshot of the full stack. Asset hashes, the files digest and runtime maps are scrubbed
 * by test/support/template-serializer.ts, so the snapshot changes only when the template
 * does. Update on purpose with `npx jest test/constructs/snapshot -u`.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { newGatewayStack } from './fixtures';

test('the full stack synthesizes to the reviewed template', () => {
  const { stack } = newGatewayStack();
  expect(Template.fromStack(stack).toJSON()).toMatchSnapshot();
});

test('the serializer scrubs hashes but keeps everything else', () => {
  const template = { Resources: { A: { Type: 'T', Properties: { Key: `${'a'.repeat(64)}.zip`, Name: 'kept' } } } };
  expect(template).toMatchInlineSnapshot(`
{
  "Resources": {
    "A": {
      "Properties": {
        "Key": "[HASH].zip",
        "Name": "kept",
      },
      "Type": "T",
    },
  },
}
`);
});
