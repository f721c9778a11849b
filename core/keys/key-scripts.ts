// Lua scripts for the access keys. Each runs atomically inside Redis, so any number of processes
// can rotate, verify and count on one server without read-modify-write races.

/**
 * Rotates the key. KEYS: current, previous, history, lastSlot.
 * ARGV: candidate1, candidate2 (distinct, so one differs from the current key), nowMs, nowIso,
 * by, actor, mode ('force' | 'init' | 'ifversion' | 'slot'), slotMs (or the expected version),
 * historyMax, channel. 'init' only creates a key when none exists; 'ifversion' rotates only if
 * the current version is still the expected one (no double rotation by racing starters); 'slot' rotates at most once per scheduled instant
 * (slotMs must exceed the last handled slot, and a key made at or after the slot needs no rotation).
 * Returns {rotated 0|1, version}.
 */
export const ROTATE_LUA = `
local cur = redis.call('HMGET', KEYS[1], 'key', 'version', 'createdAt', 'createdAtMs')
local mode = ARGV[7]
if mode == 'init' and cur[2] then return {0, tonumber(cur[2])} end
if mode == 'ifversion' and tonumber(cur[2] or '0') ~= tonumber(ARGV[8]) then return {0, tonumber(cur[2] or '0')} end
if mode == 'slot' then
  local slot = tonumber(ARGV[8])
  local last = tonumber(redis.call('GET', KEYS[4]) or '0')
  if slot <= last then return {0, tonumber(cur[2] or '0')} end
  redis.call('SET', KEYS[4], ARGV[8])
  if cur[4] and tonumber(cur[4]) >= slot then return {0, tonumber(cur[2])} end
end
local newKey = ARGV[1]
if cur[1] == newKey then newKey = ARGV[2] end
local version = tonumber(cur[2] or '0') + 1
if cur[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'key', cur[1], 'version', cur[2], 'createdAt', cur[3], 'retiredAt', ARGV[4], 'retiredAtMs', ARGV[3])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'key', newKey, 'version', version, 'createdAt', ARGV[4], 'createdAtMs', ARGV[3], 'by', ARGV[5], 'actor', ARGV[6])
local entry = {version = version, key = newKey, createdAt = ARGV[4], by = ARGV[5]}
if ARGV[6] ~= '' then entry.actor = ARGV[6] end
if mode == 'slot' then entry.slot = tonumber(ARGV[8]) end
redis.call('LPUSH', KEYS[3], cjson.encode(entry))
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[9]) - 1)
redis.call('PUBLISH', ARGV[10], cjson.encode({type = 'rotated', version = version, at = ARGV[4], by = ARGV[5]}))
return {1, version}
`;

/**
 * One verification's bookkeeping, after Node compared digests in constant time.
 * KEYS: current, previous, user, fails, lock, newFailHour, newFailPrevHour, failTotal, failHour.
 * ARGV: nowMs, cachedStamp ('version:createdAtMs' of the key Node compared against), matchVersion (0 = no match), graceMs, maxAttempts, lockoutMs,
 * breakerLimit (0 = off), prevHourWeight, hourTtlMs, userTtlMs (how long an idle user's
 * authorisation record is kept).
 * Returns {'locked', ttlMs} | {'stale'} | {'breaker', estimate} | {'ok', version, graceEndMs}
 *       | {'wrong', attemptsLeft} | {'lockednow', lockoutMs}.
 * The lock is checked before the outcome is used, so a locked user learns nothing from a guess.
 */
export const VERIFY_LUA = `
local ttl = redis.call('PTTL', KEYS[5])
if ttl > 0 then return {'locked', ttl} end
local cur = redis.call('HMGET', KEYS[1], 'version', 'createdAtMs')
if (cur[1] or '0') .. ':' .. (cur[2] or '') ~= ARGV[2] then return {'stale'} end
local curV = tonumber(cur[1] or '0')
local known = redis.call('HEXISTS', KEYS[3], 'known') == 1
local limit = tonumber(ARGV[7])
if limit > 0 and not known then
  local est = tonumber(redis.call('GET', KEYS[6]) or '0') + tonumber(redis.call('GET', KEYS[7]) or '0') * tonumber(ARGV[8])
  if est >= limit then return {'breaker', tostring(est)} end
end
local match = tonumber(ARGV[3])
local now = tonumber(ARGV[1])
if match > 0 then
  local ok = match == curV
  local graceEnd = 0
  if not ok then
    local prev = redis.call('HMGET', KEYS[2], 'version', 'retiredAtMs')
    graceEnd = tonumber(prev[2] or '0') + tonumber(ARGV[4])
    ok = tonumber(prev[1] or '-1') == match and now < graceEnd
  end
  if ok then
    redis.call('HSET', KEYS[3], 'v', match, 'at', ARGV[1], 'known', '1')
    redis.call('PEXPIRE', KEYS[3], ARGV[10])
    redis.call('DEL', KEYS[4])
    return {'ok', match, tostring(graceEnd)}
  end
end
local hourTtl = tonumber(ARGV[9])
redis.call('INCR', KEYS[8])
redis.call('INCR', KEYS[9])
redis.call('PEXPIRE', KEYS[9], hourTtl)
if not known then
  redis.call('INCR', KEYS[6])
  redis.call('PEXPIRE', KEYS[6], 7200000)
end
local lockout = tonumber(ARGV[6])
local n = redis.call('INCR', KEYS[4])
if n == 1 then redis.call('PEXPIRE', KEYS[4], lockout) end
if n >= tonumber(ARGV[5]) then
  redis.call('SET', KEYS[5], '1', 'PX', lockout)
  redis.call('DEL', KEYS[4])
  return {'lockednow', lockout}
end
return {'wrong', tonumber(ARGV[5]) - n}
`;

/**
 * A user's authorisation state, read as one consistent snapshot (the bot asks on every message:
 * one script call instead of a four-command MULTI). KEYS: current, previous, user.
 * Returns {current version, previous version, previous retiredAtMs, user's version, user's at}
 * (nil where absent).
 */
export const AUTH_LUA = `
return {
  redis.call('HGET', KEYS[1], 'version'),
  redis.call('HGET', KEYS[2], 'version'),
  redis.call('HGET', KEYS[2], 'retiredAtMs'),
  redis.call('HGET', KEYS[3], 'v'),
  redis.call('HGET', KEYS[3], 'at'),
}
`;
