// aws-cdk-lib prints a deprecation warning for a property its own step scaling policy
// passes internally (cooldown); it is not ours to fix and only buries real output.
process.env.JSII_DEPRECATED = 'quiet';
