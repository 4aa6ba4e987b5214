/**
 * The inline-refresh Lua action. HAProxy loads it with `lua-load`, so one Lua state (and
 * so one single-flight table) is shared by every thread. It calls the auth service
 * through the config's internal relay socket, which reuses the `auth_service` backend
 * (TLS, CA verification, SNI, Host header, path prefix): the Lua code speaks plain HTTP
 * on a local socket and never needs TLS settings of its own.
 */
import { AUTH_PATHS, HEADERS, REFRESH_COOKIE } from '../session-contract';

/** How many Set-Cookie headers of a refresh answer are passed to the browser. */
export const MAX_REFRESH_SET_COOKIES = 4;

/** Transaction variables shared by haproxy.cfg and the Lua action. */
export const REFRESH_VARS = {
  /** In: SHA-256 (hex) of the refresh cookie, the single-flight key. */
  key: 'txn.refresh_key',
  /** In: the refresh cookie value. */
  cookie: 'txn.refresh_cookie',
  /** In: the request id sent as X-Request-Id. */
  requestId: 'txn.request_id',
  /** Out: refreshed | refused (the auth service said 401/403) | failed (timeout, error, bad answer). */
  result: 'txn.refresh_result',
  /** Out: the new session token (the same variable the cookie path fills). */
  token: 'txn.session_token',
  /** Out: `txn.refresh_set_cookie_<n>`, n = 1..MAX_REFRESH_SET_COOKIES. */
  setCookiePrefix: 'txn.refresh_set_cookie_',
} as const;

export const REFRESH_ACTION = 'lg_refresh_session';

export interface RefreshLuaOptions {
  /** `unix@/path` of the relay listener. */
  readonly relayAddress: string;
  readonly timeoutSeconds: number;
  readonly graceSeconds: number;
}

function luaString(value: string): string {
  return JSON.stringify(value);
}

export function renderRefreshLua(options: RefreshLuaOptions): string {
  const timeoutMs = options.timeoutSeconds * 1000;
  return `-- Rendered by cdk-looker-gateway (lib/fleet/render-lua.ts). Do not edit: re-render.
--
-- Inline session refresh with single flight. Called by haproxy.cfg when a session has a
-- good signature but has expired (or expires soon) and a refresh cookie is present.
-- Concurrent requests carrying the same refresh cookie wait for the first refresh and
-- reuse its outcome for GRACE_SECONDS, because the browser keeps sending the old
-- cookies until the first response lands, and IdPs that rotate refresh tokens would
-- refuse a second redemption. haproxy.cfg verifies the new token itself.

local RELAY_ADDRESS = ${luaString(options.relayAddress)}
local SESSION_PATH = ${luaString(AUTH_PATHS.session)}
local REFRESH_COOKIE = ${luaString(REFRESH_COOKIE)}
local REQUEST_ID_HEADER = ${luaString(HEADERS.requestId.toLowerCase())}
local TIMEOUT_MS = ${timeoutMs}
local GRACE_SECONDS = ${options.graceSeconds}
local MAX_SET_COOKIES = ${MAX_REFRESH_SET_COOKIES}
local WAIT_STEP_MS = 10
-- A flight older than this was abandoned (its stream died): start a new one.
local ABANDONED_AFTER_SECONDS = TIMEOUT_MS / 1000 + 2

local flights = {}

local function now_seconds()
  local now = core.now()
  return now.sec + now.usec / 1000000
end

local function forget_old_flights(now)
  for key, flight in pairs(flights) do
    if (flight.done and now - flight.finished > GRACE_SECONDS) or (not flight.done and now - flight.started > ABANDONED_AFTER_SECONDS) then
      flights[key] = nil
    end
  end
end

-- Header values in HAProxy's Lua API are tables indexed from 0.
local function header_values(headers, name)
  local values = {}
  local field = headers and headers[name]
  if type(field) == "string" then
    values[1] = field
  elseif type(field) == "table" then
    for index = 0, 63 do
      if field[index] ~= nil then values[#values + 1] = field[index] end
    end
  end
  return values
end

local function redeem(cookie, request_id)
  local client = core.httpclient()
  local response = client:post{
    url = "http://auth-service-relay" .. SESSION_PATH,
    dst = RELAY_ADDRESS,
    headers = {
      ["cookie"] = { REFRESH_COOKIE .. "=" .. cookie },
      [REQUEST_ID_HEADER] = { request_id },
      ["accept"] = { "application/json" },
      ["content-type"] = { "application/json" },
    },
    body = "{}",
    timeout = TIMEOUT_MS,
  }
  if response == nil or response.status == nil or response.status == 0 then
    return { result = "failed" }
  end
  if response.status == 401 or response.status == 403 then
    return { result = "refused" }
  end
  if response.status ~= 200 then
    return { result = "failed" }
  end
  -- The body is {"session":"<compact JWS>","expiresAt":<epoch s>}; a compact JWS is
  -- base64url segments joined by dots, so this pattern cannot cut a valid token short.
  local token = string.match(response.body or "", '"session"%s*:%s*"([%w%-_%.]+)"')
  if token == nil then
    return { result = "failed" }
  end
  return { result = "refreshed", token = token, cookies = header_values(response.headers, "set-cookie") }
end

local function apply(txn, outcome)
  txn:set_var(${luaString(REFRESH_VARS.result)}, outcome.result)
  if outcome.result ~= "refreshed" then return end
  txn:set_var(${luaString(REFRESH_VARS.token)}, outcome.token)
  for index, value in ipairs(outcome.cookies) do
    if index > MAX_SET_COOKIES then break end
    txn:set_var(${luaString(REFRESH_VARS.setCookiePrefix)} .. index, value)
  end
end

core.register_action(${luaString(REFRESH_ACTION)}, { "http-req" }, function(txn)
  local key = txn:get_var(${luaString(REFRESH_VARS.key)})
  local cookie = txn:get_var(${luaString(REFRESH_VARS.cookie)})
  if key == nil or cookie == nil then
    txn:set_var(${luaString(REFRESH_VARS.result)}, "refused")
    return
  end
  local now = now_seconds()
  forget_old_flights(now)
  local flight = flights[key]
  if flight == nil then
    flight = { done = false, started = now }
    flights[key] = flight
    local ok, outcome = pcall(redeem, cookie, txn:get_var(${luaString(REFRESH_VARS.requestId)}) or "")
    if not ok then outcome = { result = "failed" } end
    flight.outcome = outcome
    flight.finished = now_seconds()
    flight.done = true
    apply(txn, outcome)
    return
  end
  local waited = 0
  while not flight.done and waited < TIMEOUT_MS + 1000 do
    core.msleep(WAIT_STEP_MS)
    waited = waited + WAIT_STEP_MS
  end
  if flight.done then
    apply(txn, flight.outcome)
  else
    apply(txn, { result = "failed" })
  end
end, 0)
`;
}
