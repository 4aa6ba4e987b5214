/**
 * The gateway's Lua: the inline-refresh action and the revocation poll. HAProxy loads it
 * with `lua-load`, so one Lua state (one single-flight table, one revocation list) is
 * shared by every thread of a process. Both talk to the auth service through the config's
 * internal relay socket, which reuses the `auth_service` backend (TLS, CA verification,
 * SNI, Host header, path prefix): the Lua code speaks plain HTTP on a local socket and
 * never needs TLS settings of its own.
 */
import { AUTH_PATHS, HEADERS, REFRESH_COOKIE } from '../session-contract';

/** How many Set-Cookie headers of a refresh answer are passed to the browser. */
export const MAX_REFRESH_SET_COOKIES = 4;

/** Transaction variables shared by haproxy.cfg and the Lua code. */
export const REFRESH_VARS = {
  /** In: SHA-256 (hex) of the refresh cookie, the single-flight key. */
  key: 'txn.refresh_key',
  /** In: the refresh cookie value. */
  cookie: 'txn.refresh_cookie',
  /** In: the request id sent as X-Request-Id. */
  requestId: 'txn.request_id',
  /**
   * Out: refreshed | refused (the auth service said 401/403) | failed (timeout, error, bad
   * answer) | busy (the single-flight table is full of running refreshes). haproxy.cfg
   * itself sets rate-limited (before the action) and mismatch (after it).
   */
  result: 'txn.refresh_result',
  /** Out: the new session token (the same variable the cookie path fills). */
  token: 'txn.session_token',
  /** Out: the new upstream assertion when the answer has one (the same variable the cookie fills); unset otherwise. */
  assertion: 'txn.assertion_token',
  /** Out: `txn.refresh_set_cookie_<n>`, n = 1..MAX_REFRESH_SET_COOKIES. */
  setCookiePrefix: 'txn.refresh_set_cookie_',
} as const;

/** Values of {@link REFRESH_VARS.result}. */
export const REFRESH_RESULTS = {
  refreshed: 'refreshed',
  refused: 'refused',
  failed: 'failed',
  busy: 'busy',
  rateLimited: 'rate-limited',
  mismatch: 'mismatch',
} as const;

/** `http-request lua.<name>`: refresh the session inline (single flight). */
export const REFRESH_ACTION = 'lg_refresh_session';
/** Sample fetch `lua.<name>`: true when a refresh for this cookie is running or its outcome is still reused. */
export const REFRESH_JOINS_FETCH = 'lg_refresh_joins_flight';

/** Admin-socket command: the inline refreshes the Lua code tracks, `{"tracked":n,"running":n,"max":n}`. */
export const REFRESH_FLIGHTS_CLI = ['show', 'lg-refresh-flights'] as const;

/** Events the Lua code writes to the log (one JSON object per line, field `event`). */
export const LUA_LOG_EVENTS = {
  revocationPoll: 'revocation-poll',
} as const;

export interface GatewayLuaOptions {
  /** `unix@/path` of the relay listener. */
  readonly relayAddress: string;
  readonly timeoutSeconds: number;
  readonly graceSeconds: number;
  readonly maxTrackedRefreshes: number;
  /** Absolute path of the revoked-session map (as haproxy.cfg names it). */
  readonly revokedSessionMap: string;
  readonly revocationPollSeconds: number;
}

function luaString(value: string): string {
  return JSON.stringify(value);
}

export function renderGatewayLua(options: GatewayLuaOptions): string {
  const timeoutMs = options.timeoutSeconds * 1000;
  return `-- Rendered by cdk-looker-gateway (core/haproxy/lua.ts). Do not edit: re-render.

local RELAY_ADDRESS = ${luaString(options.relayAddress)}
local REQUEST_ID_HEADER = ${luaString(HEADERS.requestId.toLowerCase())}
local TIMEOUT_MS = ${timeoutMs}

-- A request id for calls the gateway makes on its own (the relay logs it, the auth service audits it).
local function new_request_id()
  local hex = "0123456789abcdef"
  return (string.gsub("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", "[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.sub(hex, v + 1, v + 1)
  end))
end

local function json_string(value)
  return '"' .. string.gsub(tostring(value), '[%c"\\\\]', function(c) return string.format("\\\\u%04x", string.byte(c)) end) .. '"'
end

-- One JSON line in HAProxy's log (the log-format of requests does not apply to Lua).
local function log_event(level, fields)
  local parts = {}
  for _, pair in ipairs(fields) do
    local value = pair[2]
    parts[#parts + 1] = json_string(pair[1]) .. ":" .. (type(value) == "number" and tostring(value) or json_string(value))
  end
  core.log(level, "{" .. table.concat(parts, ",") .. "}")
end

local function now_seconds()
  local now = core.now()
  return now.sec + now.usec / 1000000
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

----------------------------------------------------------------------------------------
-- Inline session refresh with single flight. Called by haproxy.cfg when a session has a
-- good signature but has expired (or expires soon), within the allowed time after its
-- exp, not revoked, within the rate limits, and a refresh cookie is present. Concurrent
-- requests carrying the same refresh cookie wait for the first refresh and reuse its
-- outcome for GRACE_SECONDS, because the browser keeps sending the old cookies until the
-- first response lands, and IdPs that rotate refresh tokens would refuse a second
-- redemption. haproxy.cfg verifies the new token itself (and that it has the same sub and
-- sid as the one it replaces).

local SESSION_PATH = ${luaString(AUTH_PATHS.session)}
local REFRESH_COOKIE = ${luaString(REFRESH_COOKIE)}
local GRACE_SECONDS = ${options.graceSeconds}
local MAX_SET_COOKIES = ${MAX_REFRESH_SET_COOKIES}
local MAX_FLIGHTS = ${options.maxTrackedRefreshes}
local WAIT_STEP_MS = 10
-- A flight older than this was abandoned (its stream died): start a new one.
local ABANDONED_AFTER_SECONDS = TIMEOUT_MS / 1000 + 2
-- How often finished flights are dropped: every grace period (at least every second).
local SWEEP_MS = math.max(1000, GRACE_SECONDS * 1000)

local flights = {}
local flight_count = 0

-- A flight that can still be joined: running, or finished less than GRACE_SECONDS ago.
local function is_live(flight, now)
  if flight.done then return now - flight.finished <= GRACE_SECONDS end
  return now - flight.started <= ABANDONED_AFTER_SECONDS
end

local function forget(key)
  if flights[key] ~= nil then
    flights[key] = nil
    flight_count = flight_count - 1
  end
end

-- Finished flights hold their answer (the new session, its assertion, the cookies): drop them
-- once they can no longer be joined, rather than when the table fills. Swept only when full,
-- they piled up to MAX_FLIGHTS (10,000 answers, tens of MB of HAProxy's memory) and kept
-- tokens in memory long after their use.
local function sweep(now)
  for key, flight in pairs(flights) do
    if not is_live(flight, now) then forget(key) end
  end
end

-- The table is bounded: when it is full, dead flights go first, then the oldest finished
-- one. Running flights are never dropped (their waiters hold them): if every entry is
-- running, there is no room and the caller refuses the refresh.
local function make_room(now)
  if flight_count < MAX_FLIGHTS then return true end
  sweep(now)
  if flight_count < MAX_FLIGHTS then return true end
  local oldest_key, oldest_finished
  for key, flight in pairs(flights) do
    if flight.done and (oldest_finished == nil or flight.finished < oldest_finished) then
      oldest_key, oldest_finished = key, flight.finished
    end
  end
  if oldest_key == nil then return false end
  forget(oldest_key)
  return true
end

core.register_task(function()
  while true do
    core.msleep(SWEEP_MS)
    sweep(now_seconds())
  end
end)

-- On the admin socket: ${REFRESH_FLIGHTS_CLI.join(' ')} prints the table's size as one JSON line.
core.register_cli({ ${REFRESH_FLIGHTS_CLI.map(luaString).join(', ')} }, "${REFRESH_FLIGHTS_CLI.join(' ')} : the inline refreshes tracked (running and finished)", function(applet)
  local running = 0
  for _, flight in pairs(flights) do
    if not flight.done then running = running + 1 end
  end
  applet:send('{"tracked":' .. flight_count .. ',"running":' .. running .. ',"max":' .. MAX_FLIGHTS .. '}\\n')
end)

local function live_flight(key, now)
  local flight = flights[key]
  if flight == nil then return nil end
  if is_live(flight, now) then return flight end
  forget(key)
  return nil
end

-- The body is {"session":"<compact JWS>","expiresAt":<epoch s>[,"assertion":"<compact JWS>"]};
-- a compact JWS is base64url segments joined by dots, so this pattern cannot cut one short.
local function token_field(body, name)
  return string.match(body, '"' .. name .. '"%s*:%s*"([%w%-_%.]+)"')
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
    return { result = ${luaString(REFRESH_RESULTS.failed)} }
  end
  if response.status == 401 or response.status == 403 then
    return { result = ${luaString(REFRESH_RESULTS.refused)} }
  end
  if response.status ~= 200 then
    return { result = ${luaString(REFRESH_RESULTS.failed)} }
  end
  local body = response.body or ""
  local token = token_field(body, "session")
  if token == nil then
    return { result = ${luaString(REFRESH_RESULTS.failed)} }
  end
  return {
    result = ${luaString(REFRESH_RESULTS.refreshed)},
    token = token,
    assertion = token_field(body, "assertion"),
    cookies = header_values(response.headers, "set-cookie"),
  }
end

local function apply(txn, outcome)
  txn:set_var(${luaString(REFRESH_VARS.result)}, outcome.result)
  if outcome.result ~= ${luaString(REFRESH_RESULTS.refreshed)} then return end
  txn:set_var(${luaString(REFRESH_VARS.token)}, outcome.token)
  -- The old assertion belongs to the old token: keep none rather than a stale one.
  if outcome.assertion ~= nil then
    txn:set_var(${luaString(REFRESH_VARS.assertion)}, outcome.assertion)
  else
    txn:unset_var(${luaString(REFRESH_VARS.assertion)})
  end
  for index, value in ipairs(outcome.cookies) do
    if index > MAX_SET_COOKIES then break end
    txn:set_var(${luaString(REFRESH_VARS.setCookiePrefix)} .. index, value)
  end
end

-- haproxy.cfg counts a refresh against the rate limits only when it starts a flight.
core.register_fetches(${luaString(REFRESH_JOINS_FETCH)}, function(txn)
  local key = txn:get_var(${luaString(REFRESH_VARS.key)})
  return key ~= nil and live_flight(key, now_seconds()) ~= nil
end)

core.register_action(${luaString(REFRESH_ACTION)}, { "http-req" }, function(txn)
  local key = txn:get_var(${luaString(REFRESH_VARS.key)})
  local cookie = txn:get_var(${luaString(REFRESH_VARS.cookie)})
  if key == nil or cookie == nil then
    txn:set_var(${luaString(REFRESH_VARS.result)}, ${luaString(REFRESH_RESULTS.refused)})
    return
  end
  local now = now_seconds()
  local flight = live_flight(key, now)
  if flight == nil then
    if not make_room(now) then
      txn:set_var(${luaString(REFRESH_VARS.result)}, ${luaString(REFRESH_RESULTS.busy)})
      return
    end
    flight = { done = false, started = now }
    flights[key] = flight
    flight_count = flight_count + 1
    local ok, outcome = pcall(redeem, cookie, txn:get_var(${luaString(REFRESH_VARS.requestId)}) or new_request_id())
    if not ok then outcome = { result = ${luaString(REFRESH_RESULTS.failed)} } end
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
    apply(txn, { result = ${luaString(REFRESH_RESULTS.failed)} })
  end
end, 0)

----------------------------------------------------------------------------------------
-- Revocation: every POLL_MS this process fetches the complete list of revoked session ids
-- ({"revoked":[{"sid":"...","until":<epoch s>}],"asOf":<epoch s>}) and mirrors it into the
-- revoked-session map that haproxy.cfg looks every session's sid up in. No reload: the map
-- lives in memory (core.set_map / core.del_map). A new process (start, reload) polls at
-- once. A failed poll keeps the map as it was and logs; entries still leave at their
-- "until", when no token with that sid can be valid any more.

local REVOCATIONS_PATH = ${luaString(AUTH_PATHS.revocations)}
local REVOKED_MAP = ${luaString(options.revokedSessionMap)}
local POLL_MS = ${options.revocationPollSeconds * 1000}
-- Session ids are opaque strings of the auth service; anything else cannot match a session
-- (and could not be a map key), so such entries are skipped and counted.
local SID_PATTERN = "^[%w%-_%.:~+/=]+$"

local revoked = {}

local function parse_revocations(body)
  local array = string.match(body, '"revoked"%s*:%s*(%b[])')
  if array == nil then return nil, "the answer has no revoked array" end
  local list, skipped = {}, 0
  for entry in string.gmatch(array, "%b{}") do
    local sid = string.match(entry, '"sid"%s*:%s*"([^"\\\\]*)"')
    local until_seconds = tonumber(string.match(entry, '"until"%s*:%s*(%d+)'))
    if sid ~= nil and until_seconds ~= nil and string.match(sid, SID_PATTERN) then
      list[sid] = until_seconds
    else
      skipped = skipped + 1
    end
  end
  return list, skipped
end

local function forget_expired(now)
  for sid, until_seconds in pairs(revoked) do
    if until_seconds <= now then
      core.del_map(REVOKED_MAP, sid)
      revoked[sid] = nil
    end
  end
end

local function apply_revocations(list, now)
  local added, removed = 0, 0
  for sid in pairs(revoked) do
    if list[sid] == nil or list[sid] <= now then
      core.del_map(REVOKED_MAP, sid)
      revoked[sid] = nil
      removed = removed + 1
    end
  end
  for sid, until_seconds in pairs(list) do
    if until_seconds > now and revoked[sid] ~= until_seconds then
      if revoked[sid] == nil then added = added + 1 end
      core.set_map(REVOKED_MAP, sid, tostring(until_seconds))
      revoked[sid] = until_seconds
    end
  end
  return added, removed
end

-- core.httpclient, not a Lua socket: a socket's receive never returns once an answer spans
-- more than one buffer (measured on 3.0.11: 22 kB arrived, 45 kB hung the task), while the
-- HTTP client read a 379 kB list. Its internal proxy writes one (non-JSON) log line per poll.
local function relay_get(path, request_id)
  local client = core.httpclient()
  local response = client:get{
    url = "http://auth-service-relay" .. path,
    dst = RELAY_ADDRESS,
    headers = { [REQUEST_ID_HEADER] = { request_id }, ["accept"] = { "application/json" } },
    timeout = TIMEOUT_MS,
  }
  if response == nil or response.status == nil or response.status == 0 then return 0, nil, "no answer from the relay socket" end
  return response.status, response.body or ""
end

local function poll_revocations()
  local request_id = new_request_id()
  local status, body, problem = relay_get(REVOCATIONS_PATH, request_id)
  local now = now_seconds()
  forget_expired(now)
  if status ~= 200 then
    return false, problem or ("the auth service answered " .. tostring(status)), status, request_id
  end
  local list, skipped = parse_revocations(body)
  if list == nil then return false, skipped, status, request_id end
  local added, removed = apply_revocations(list, now)
  local total = 0
  for _ in pairs(revoked) do total = total + 1 end
  if added > 0 or removed > 0 or skipped > 0 then
    log_event(core.info, { { "event", ${luaString(LUA_LOG_EVENTS.revocationPoll)} }, { "outcome", "changed" }, { "revoked", total }, { "added", added }, { "removed", removed }, { "skipped", skipped }, { "request_id", request_id } })
  end
  return true
end

core.register_task(function()
  while true do
    local ok, done, reason, status, request_id = pcall(poll_revocations)
    if not ok then
      reason, status = tostring(done), 0
    end
    if not ok or not done then
      log_event(core.warning, { { "event", ${luaString(LUA_LOG_EVENTS.revocationPoll)} }, { "outcome", "failure" }, { "reason", reason }, { "status", status or 0 }, { "request_id", request_id or "" } })
    end
    core.msleep(POLL_MS)
  end
end)
`;
}
