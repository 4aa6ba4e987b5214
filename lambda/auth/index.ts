/**
 * Lambda entry of the auth service. The configuration is parsed when the container
 * starts (module init), once; secrets are read on first use and cached.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { SecretsManagerSource } from '../shared/secrets';
import { createAuthService } from './service';

const service = createAuthService(process.env, { secretSource: new SecretsManagerSource() });

export async function handler(event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> {
  return service.handle(event, context);
}
