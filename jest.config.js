/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Transpile only: `npm run build` (tsc) is the type check. jose, openid-client and
  // oauth4webapi ship ESM only, so they are transformed to CommonJS for jest too.
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { allowJs: true, isolatedModules: true, module: 'commonjs', esModuleInterop: true }, diagnostics: false }],
  },
  // dist/ holds the built Lambda assets, loaded as the runtime loads them (not transformed).
  transformIgnorePatterns: ['/node_modules/(?!(jose|openid-client|oauth4webapi)/)', '<rootDir>/dist/'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  setupFilesAfterEnv: ['<rootDir>/test/support/setup.ts'],
  snapshotSerializers: ['<rootDir>/test/support/template-serializer.ts'],
  testTimeout: 60000,
  maxWorkers: 2,
};
