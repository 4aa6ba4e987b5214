/**
 * An API Gateway REST proxy event (`{proxy+}` resource) for a GET, shaped as API Gateway
 * sends it to a Lambda proxy integration (AWS docs: "Input format of a Lambda function for
 * proxy integration"), for tests that invoke a handler directly.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';

export function apiGatewayGetEvent(path: string, headers: Record<string, string> = {}, extra: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: 'GET',
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: path.replace(/^\//, '') },
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId: 'apigw-req-1', stage: 'prod', path: `/prod${path}` } as APIGatewayProxyEvent['requestContext'],
    ...extra,
  };
}
