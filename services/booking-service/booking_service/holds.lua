-- Seat holds of ONE showtime, all or nothing, in one atomic step.
-- Every key carries the showtime's hash tag {<showtime_id>}, so they share one
-- Redis Cluster slot and the script stays atomic on a cluster too.
--
-- KEYS[1]    the showtime's hold index: a sorted set, seat id -> hold expiry (ms)
-- KEYS[2..]  one lock key per seat; ARGV[4..] are the seat ids in the same order
-- ARGV[1]    'hold' | 'release' | 'list'
-- ARGV[2]    the hold token (random per booking attempt)
-- ARGV[3]    hold time in milliseconds
--
-- hold:    if any seat key exists, return the taken seat ids and write nothing;
--          otherwise SET every key to the token with PX, and return {}.
-- release: delete only the keys that still hold this token (compare-and-delete);
--          returns how many were released.
-- list:    the seat ids with a live hold (stale index entries are pruned).
local op, token, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

if op == 'hold' then
  local taken = {}
  for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then
      taken[#taken + 1] = ARGV[i + 2]
    end
  end
  if #taken > 0 then
    return taken
  end
  for i = 2, #KEYS do
    redis.call('SET', KEYS[i], token, 'PX', ttl)
    redis.call('ZADD', KEYS[1], now_ms + ttl, ARGV[i + 2])
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  return taken
elseif op == 'release' then
  local released = 0
  for i = 2, #KEYS do
    if redis.call('GET', KEYS[i]) == token then
      redis.call('DEL', KEYS[i])
      redis.call('ZREM', KEYS[1], ARGV[i + 2])
      released = released + 1
    end
  end
  return released
elseif op == 'list' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
  return redis.call('ZRANGE', KEYS[1], 0, -1)
end
return redis.error_reply('unknown hold operation: ' .. tostring(op))
