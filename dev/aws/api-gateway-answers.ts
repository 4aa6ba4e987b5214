/**
 * The answers API Gateway (REST API, Lambda proxy integration) gives on its own, without the
 * function's answer, as AWS documents them:
 * - throttled: 429 {"message":"Too Many Requests"} ("Throttle requests to your REST APIs for
 *   better throughput in API Gateway", https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html;
 *   the THROTTLED gateway response, default template {"message":$context.error.messageString},
 *   https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html);
 * - the function failed or answered in the wrong format: 502, and Lambda refusing the
 *   invocation: 500, both {"message": "Internal server error"} ("Handling Lambda errors with an
 *   API Gateway API", https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html);
 * - the integration outlasted 29 s: 504 {"message": "Endpoint request timed out"} (the
 *   INTEGRATION_TIMEOUT gateway response).
 * Each carries `x-amzn-ErrorType`, the header API Gateway fills with the error's type (the
 * AWS SDKs read the error type from it); the auth service never sets it.
 */
export interface ApiGatewayAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

function answer(status: number, errorType: string, message: string): ApiGatewayAnswer {
  return { status, headers: { 'content-type': 'application/json', 'x-amzn-ErrorType': errorType }, body: JSON.stringify({ message }) };
}

export const API_GATEWAY_ANSWERS = {
  throttled: answer(429, 'ThrottlingException', 'Too Many Requests'),
  invocationRefused: answer(500, 'InternalServerErrorException', 'Internal server error'),
  functionFailed: answer(502, 'InternalServerErrorException', 'Internal server error'),
  integrationTimedOut: answer(504, 'InternalServerErrorException', 'Endpoint request timed out'),
} as const;
