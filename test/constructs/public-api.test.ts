/**
 * The public API's jsii rule: no union-typed or function-typed props. Walks, with the
 * TypeScript checker, every interface exported from lib/index.ts and the parameters of
 * every exported class's constructor and static methods (the props and the structs they
 * hold) and its public properties, and lists each property whose type is a union (other
 * than `T | undefined`, booleans and enums), a function or a readonly array.
 */
import * as path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './fixtures';

interface Finding {
  readonly where: string;
  readonly type: string;
  readonly problem: string;
}

function publicApiFindings(): { findings: Finding[]; checked: string[] } {
  const entry = path.join(REPO_ROOT, 'lib', 'index.ts');
  const program = ts.createProgram([entry], {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const findings: Finding[] = [];
  const checked = new Set<string>();
  const visited = new Set<ts.Type>();

  // The entry re-exports structs declared in core/ too (MachineClient, MappingRuleSet, ...).
  const ownDeclaration = (symbol: ts.Symbol | undefined): boolean =>
    (symbol?.declarations ?? []).some((d) => ['lib', 'core'].some((dir) => d.getSourceFile().fileName.startsWith(path.join(REPO_ROOT, dir, path.sep))));

  const problemOf = (type: ts.Type): string | undefined => {
    if (type.isUnion()) {
      const members = type.types.filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)));
      const booleanOnly = members.every((t) => t.flags & ts.TypeFlags.BooleanLiteral);
      const enumOnly = members.every((t) => t.flags & ts.TypeFlags.EnumLiteral);
      if (members.length > 1 && !booleanOnly && !enumOnly) return 'union type';
      if (members.length === 1) return problemOf(members[0]);
      return undefined;
    }
    if (type.getCallSignatures().length > 0 || type.getConstructSignatures().length > 0) return 'function type';
    if (type.getSymbol()?.getName() === 'ReadonlyArray') return 'readonly array (jsii takes T[])';
    return undefined;
  };

  const walkStruct = (type: ts.Type, where: string): void => {
    const target = type.isUnion() ? type.types.find((t) => !(t.flags & ts.TypeFlags.Undefined)) : type;
    if (!target || visited.has(target)) return;
    const element = checker.isArrayType(target) || checker.isTupleType(target) ? checker.getTypeArguments(target as ts.TypeReference)[0] : target;
    if (!element || visited.has(element)) return;
    const symbol = element.getSymbol() ?? element.aliasSymbol;
    // Only the project's own structs (interfaces); classes and CDK types are checked where they are declared.
    if (!symbol || !(symbol.flags & ts.SymbolFlags.Interface) || !ownDeclaration(symbol)) return;
    visited.add(element);
    checked.add(symbol.getName());
    for (const property of checker.getPropertiesOfType(element)) {
      // Methods of a behavioural interface (IGatewayKeys.grantRead*) are methods in jsii, not function-typed props.
      if (property.flags & ts.SymbolFlags.Method) continue;
      const declaration = property.valueDeclaration ?? property.declarations?.[0];
      if (!declaration) continue;
      // A method of a behavioural interface (jsii: its name starts with I) is no function-typed property.
      if (ts.isMethodSignature(declaration) && /^I[A-Z]/.test(symbol.getName())) continue;
      const propertyType = checker.getTypeOfSymbolAtLocation(property, declaration);
      const problem = problemOf(propertyType);
      const name = `${symbol.getName()}.${property.getName()}`;
      if (problem) findings.push({ where: `${where} → ${name}`, type: checker.typeToString(propertyType), problem });
      walkStruct(propertyType, `${where} → ${name}`);
    }
  };

  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (symbol.flags & ts.SymbolFlags.Interface) walkStruct(checker.getDeclaredTypeOfSymbol(symbol), symbol.getName());
    if (symbol.flags & ts.SymbolFlags.Class) {
      const declaration = symbol.valueDeclaration as ts.ClassDeclaration;
      const staticType = checker.getTypeOfSymbolAtLocation(symbol, declaration);
      const signatures = [
        ...staticType.getConstructSignatures().map((s) => ({ name: 'constructor', s })),
        ...checker
          .getPropertiesOfType(staticType)
          .filter(
            (p) =>
              p.flags & ts.SymbolFlags.Method &&
              !(ts.getCombinedModifierFlags(p.valueDeclaration as ts.Declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)),
          )
          .flatMap((p) =>
            checker
              .getTypeOfSymbolAtLocation(p, declaration)
              .getCallSignatures()
              .map((s) => ({ name: p.getName(), s })),
          ),
      ];
      // Public instance properties (what users read off a construct) follow the same rule.
      for (const property of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol))) {
        const propertyDeclaration = property.valueDeclaration;
        if (!propertyDeclaration || !ts.isPropertyDeclaration(propertyDeclaration)) continue;
        if (ts.getCombinedModifierFlags(propertyDeclaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        const propertyType = checker.getTypeOfSymbolAtLocation(property, propertyDeclaration);
        const problem = problemOf(propertyType);
        if (problem) findings.push({ where: `${symbol.getName()}.${property.getName()}`, type: checker.typeToString(propertyType), problem });
      }
      for (const { name, s } of signatures) {
        for (const parameter of s.getParameters()) {
          const parameterType = checker.getTypeOfSymbolAtLocation(parameter, declaration);
          const where = `${symbol.getName()}.${name}(${parameter.getName()})`;
          const problem = problemOf(parameterType);
          if (problem) findings.push({ where, type: checker.typeToString(parameterType), problem });
          walkStruct(parameterType, where);
        }
      }
    }
  }
  return { findings, checked: [...checked].sort() };
}

const { findings, checked } = publicApiFindings();

test('the walk reaches the props and the structs they hold (so an empty finding list means something)', () => {
  expect(checked).toEqual(
    expect.arrayContaining([
      'LookerGatewayProps',
      'GatewayFleetProps',
      'MachineClient',
      'MachineRoutes',
      'MappingRuleSet',
      'MappingRule',
      'IdentityProviderSettings',
      'GatewayAppSettings',
      'ClientCertificateAuthorityPemOptions',
      'LookerOidcSettings',
      'LookerOidcConfigurationProps',
      'LookerGroupRoles',
      'LookerUserAttributeMapping',
    ]),
  );
});

test('no public prop or property is union-typed, function-typed or a readonly array (jsii)', () => {
  expect(findings).toEqual([]);
});
