/**
 * The Lua scripts of RedisStateStore, one per operation that must be atomic or must be one
 * round trip. Registered with ioredis `defineCommand` (EVALSHA, EVAL on NOSCRIPT).
 *
 * Every script that needs the time reads it with `redis.call('TIME')`: replicas whose own clocks are
 * skewed still agree on when a lease, a node record or an open circuit expires. (Redis ≥ 5
 * replicates script effects, so TIME before a write is allowed.) Scores and PX values are
 * whole milliseconds; Lua prints numbers with 14 significant digits, enough for epoch ms.
 *
 * ACQUIRE_FN, RELEASE_FN (run through SLOT_OPS) and the circuit rules transcribe acquire-plan.ts and
 * circuit-record.ts: change them together (the contract suite runs on both stores).
 */

import { ACQUIRE_LUA, CALL_LUA, OP_KIND, RELEASE_LUA } from './slot-ops-codec.ts';

const A = ACQUIRE_LUA.arg;
const K = ACQUIRE_LUA.key;
const R = RELEASE_LUA.arg;

const NOW_MS = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * Slots keys outlive their newest lease by ≥ 0.5 × lease (table in redis-keys.ts); never
 * shortened. The upkeep — the key's expiry back to 2 × lease, expired leases pruned — runs
 * only once the key has less than 1.5 × lease left, i.e. about once per lease/2 per node
 * rather than on every acquire: two fewer Redis commands per request. Expired
 * leases left in between are never counted: every count is ZCOUNT over live scores.
 */
const KEEP_SLOTS_KEY = `
-- Keys whose upkeep ran in this call (for this lease length): one PTTL per node per call.
local keptSlotsKeys = {}
local function keepSlotsKey(key, leaseMs)
  if keptSlotsKeys[key] == leaseMs then return end
  keptSlotsKeys[key] = leaseMs
  if redis.call('PTTL', key) < 1.5 * leaseMs then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. now)
    redis.call('PEXPIRE', key, 2 * leaseMs)
  end
end
`;

/**
 * KEYS: node, nodeIndex. ARGV: json, ttlMs, nodeId, fleetChangedChannel, keepMs, scan.
 * The stored record is the NodeState JSON with `freshUntilMs` (Redis time) and `scan`
 * appended as its last members; the key and its index score live for TTL + keep.
 */
export const PUT_NODE = `${NOW_MS}
local ttl = tonumber(ARGV[2])
local life = ttl + tonumber(ARGV[5])
local record = string.sub(ARGV[1], 1, -2) .. ',"freshUntilMs":' .. string.format('%d', now + ttl) .. ',"scan":' .. ARGV[6] .. '}'
redis.call('SET', KEYS[1], record, 'PX', life)
redis.call('ZADD', KEYS[2], now + life, ARGV[3])
-- The index outlives its longest member only: an abandoned prefix cleans itself up.
if redis.call('PTTL', KEYS[2]) < life then redis.call('PEXPIRE', KEYS[2], life) end
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1
`;

/**
 * KEYS: node. ARGV: error, checkedAtMs, nodeId, fleetChangedChannel.
 * Redis' cjson encodes an empty array as {} — the two array fields of NodeState are put
 * back to []. (A quote inside a string value is escaped, so the pattern only ever
 * matches a real key.)
 */
export const MARK_NODE_UNHEALTHY = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local state = cjson.decode(raw)
state.healthy = false
state.error = ARGV[1]
state.checkedAtMs = tonumber(ARGV[2])
local out = cjson.encode(state)
out = string.gsub(out, '"models":{}', '"models":[]')
out = string.gsub(out, '"loadedModels":{}', '"loadedModels":[]')
redis.call('SET', KEYS[1], out, 'KEEPTTL')
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1
`;

/**
 * KEYS: nodeIndex, scans, monitorLease. Drops index members whose record has expired
 * (score = expiry), returns { now, [id, score, …], completed scan, its monitor, its time,
 * lease holder, lease since, lease PTTL }. The records themselves are read with one MGET.
 */
export const LIST_FLEET = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local scan = redis.call('HMGET', KEYS[2], 'completed', 'completedBy', 'completedAt')
local lease = redis.call('HMGET', KEYS[3], 'monitorId', 'since')
return { now, ids, scan[1], scan[2], scan[3], lease[1], lease[2], redis.call('PTTL', KEYS[3]) }
`;

/**
 * KEYS: monitorLease. ARGV: monitorId, leaseMs. Takes a free lease, renews one's own,
 * leaves another's. Returns { holder, since, PTTL, now }.
 */
export const CLAIM_MONITOR_LEASE = `${NOW_MS}
local holder = redis.call('HGET', KEYS[1], 'monitorId')
if not holder then
  redis.call('HSET', KEYS[1], 'monitorId', ARGV[1], 'since', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local lease = redis.call('HMGET', KEYS[1], 'monitorId', 'since')
return { lease[1], lease[2], redis.call('PTTL', KEYS[1]), now }
`;

/** KEYS: monitorLease. ARGV: monitorId. Deletes the lease only when monitorId holds it. */
export const RELEASE_MONITOR_LEASE = `
if redis.call('HGET', KEYS[1], 'monitorId') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** KEYS: scans. ARGV: keyTtlMs. The next scan number. */
export const BEGIN_SCAN = `
local scan = redis.call('HINCRBY', KEYS[1], 'next', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return scan
`;

/**
 * KEYS: scans. ARGV: scan, monitorId, keyTtlMs, fleetChangedChannel. Raises the completed
 * scan (never lowers it), and `next` with it: after Redis restarted empty mid-scan, the
 * next number handed out must still be above the one completed.
 */
export const COMPLETE_SCAN = `${NOW_MS}
local scan = tonumber(ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'next') or '0') < scan then redis.call('HSET', KEYS[1], 'next', scan) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if tonumber(redis.call('HGET', KEYS[1], 'completed') or '0') >= scan then return 0 end
redis.call('HSET', KEYS[1], 'completed', scan, 'completedBy', ARGV[2], 'completedAt', now)
redis.call('PUBLISH', ARGV[4], 'scan')
return 1
`;

/**
 * The fleet-wide queue of AcquireSlotRequest.queue (rules: freeSlots / mayTakeSlot in
 * acquire-plan.ts, queueLetsThrough in the memory store). Needs: n, nodes, maxconn,
 * inflight, now, and queueKey/queueExpiryKey/ticket/ticketTtl/join set by the caller.
 */
const QUEUE_GATE = `
local function prunedQueueLength()
  local expired = redis.call('ZRANGEBYSCORE', queueExpiryKey, '-inf', '(' .. now, 'LIMIT', 0, 100)
  if #expired > 0 then
    redis.call('ZREM', queueExpiryKey, unpack(expired))
    redis.call('ZREM', queueKey, unpack(expired))
  end
  return redis.call('ZCARD', queueKey)
end

local function keepQueueKeys()
  for _, key in ipairs({ queueKey, queueExpiryKey }) do
    if redis.call('PTTL', key) < 2 * ticketTtl then redis.call('PEXPIRE', key, 2 * ticketTtl) end
  end
end

-- A ticket already in line keeps its place; a new one goes to the back (ties: +1 ms).
local function joinQueue()
  if not redis.call('ZSCORE', queueKey, ticket) then
    local last = redis.call('ZRANGE', queueKey, -1, -1, 'WITHSCORES')
    local score = now
    if last[2] and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
    redis.call('ZADD', queueKey, score, ticket)
  end
  redis.call('ZADD', queueExpiryKey, now + ticketTtl, ticket)
  keepQueueKeys()
end

local function gateOf(i)
  local circuit = redis.call('HMGET', ${K.circuit('i')}, 'openUntil', 'probeUntil')
  local openUntil = tonumber(circuit[1]) or 0
  local probeUntil = tonumber(circuit[2]) or 0
  if openUntil == 0 then return 'pass' end
  if openUntil > now or probeUntil > now then return 'blocked' end
  return 'probe'
end

-- true: the tickets ahead of this request leave it a free slot (or there is no line).
local function queueLetsThrough(length)
  if length == 0 then return true end
  local gates, anyOpen = {}, false
  for i = 1, n do
    gates[i] = gateOf(i)
    if gates[i] ~= 'blocked' then anyOpen = true end
  end
  if not anyOpen then return true end
  local rank = redis.call('ZRANK', queueKey, ticket)
  local ahead = rank or length
  local free = 0
  for i = 1, n do
    if gates[i] ~= 'blocked' then
      local room = math.huge
      if maxconn[i] > 0 then room = math.max(0, maxconn[i] - inflight[i]) end
      if gates[i] == 'probe' then room = math.min(1, room) end
      free = free + room
    end
  end
  if ahead < free then return true end
  if rank or join then joinQueue() end
  return false
end
`;

/**
 * acquire(ko, ao), one op of SLOT_OPS: ko keys and ao args of the call come before its
 * own, which it reads in place through the readers of slot-ops-codec.ts (A: args, K: keys;
 * copying them into tables of their own costs Redis time on every op); `now` is the call's.
 * Returns: { node | false, probe 1/0, reason, inflight per candidate } (decodeAcquireReply).
 */
const ACQUIRE_FN = `
local function acquire(ko, ao)
local n = tonumber(${A.candidateCount})
local order = ${A.order}
local leaseMs = tonumber(${A.leaseMs})
local stickyTtlMs = tonumber(${A.stickyTtlMs})
local maxconn, inflight, idx = {}, {}, {}
for i = 1, n do
  maxconn[i] = tonumber(${A.maxconn('i')})
  -- Live leases (score ≥ now) are counted without a write; expired ones are pruned by
  -- keepSlotsKey: every command here is paid per request.
  inflight[i] = redis.call('ZCOUNT', ${K.slots('i')}, now, '+inf')
  idx[i] = i
end

${ACQUIRE_LUA.optionalKeys}
local ticket = ${A.ticket}
local ticketTtl = tonumber(${A.ticketTtlMs})
local join = ${A.join} == '1'
${QUEUE_GATE}
if queueKey and not queueLetsThrough(prunedQueueLength()) then
  return { false, 0, 'capacity', inflight }
end

if rotateKey then
  local start = (redis.call('INCR', rotateKey) - 1) % n
  redis.call('PEXPIRE', rotateKey, tonumber(${A.rotateTtlMs}))
  for k = 0, n - 1 do idx[k + 1] = ((start + k) % n) + 1 end
elseif order == 'least_loaded' then
  -- Stable insertion sort on (busy, tier, load) (ties keep the given order): n is a handful
  -- of nodes, and it allocates no comparator closure per call as table.sort would.
  local busy, tier, load = {}, {}, {}
  for i = 1, n do
    local total = inflight[i] + tonumber(${A.extraLoad('i')})
    local slots = tonumber(${A.slots('i')})
    local capacity = maxconn[i]
    if capacity == 0 then capacity = slots end
    if slots > 0 and total >= slots then busy[i] = 1 else busy[i] = 0 end
    tier[i] = tonumber(${A.tier('i')})
    if capacity > 0 then load[i] = total / capacity else load[i] = total end
  end
  for k = 2, n do
    local i, j = idx[k], k - 1
    while j >= 1 do
      local a = idx[j]
      local later
      if busy[a] ~= busy[i] then later = busy[a] > busy[i]
      elseif tier[a] ~= tier[i] then later = tier[a] > tier[i]
      else later = load[a] > load[i] end
      if not later then break end
      idx[j + 1] = a
      j = j - 1
    end
    idx[j + 1] = i
  end
end

if stickyKey then
  local target = redis.call('GET', stickyKey)
  if target then
    for k = 2, n do
      if ${A.node('idx[k]')} == target then
        table.insert(idx, 1, table.remove(idx, k))
        break
      end
    end
  end
end

local sawFull = false
for _, i in ipairs(idx) do
  local gate = gateOf(i)
  if gate ~= 'blocked' then
    if maxconn[i] == 0 or inflight[i] < maxconn[i] then
      local slotsKey = ${K.slots('i')}
      redis.call('ZADD', slotsKey, now + leaseMs, ${A.leaseId})
      keepSlotsKey(slotsKey, leaseMs)
      inflight[i] = inflight[i] + 1
      local probe = 0
      if gate == 'probe' then
        local circuitKey = ${K.circuit('i')}
        redis.call('HSET', circuitKey, 'probeUntil', now + tonumber(${A.probeLeaseMs}))
        redis.call('PEXPIRE', circuitKey, tonumber(${A.circuitTtlMs}))
        probe = 1
      end
      if stickyKey then redis.call('SET', stickyKey, ${A.node('i')}, 'PX', stickyTtlMs) end
      if queueKey then
        redis.call('ZREM', queueKey, ticket)
        redis.call('ZREM', queueExpiryKey, ticket)
      end
      return { ${A.node('i')}, probe, 'ok', inflight }
    end
    sawFull = true
  end
end
if sawFull then
  if queueKey and join then joinQueue() end
  return { false, 0, 'capacity', inflight }
end
return { false, 0, 'circuit', inflight }
end
`;

/**
 * KEYS: queue, queue-ttl per ticket. ARGV: ttlMs, ticket per pair. Only a ticket that is
 * still live is extended: an expired one lost its place in line and must not come back.
 */
export const RENEW_QUEUE_TICKETS = `${NOW_MS}
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS / 2 do
  local queueKey, queueTtlKey, ticket = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i + 1]
  local score = redis.call('ZSCORE', queueTtlKey, ticket)
  if score and tonumber(score) >= now then
    redis.call('ZADD', queueTtlKey, 'XX', now + ttl, ticket)
    for _, key in ipairs({ queueKey, queueTtlKey }) do
      if redis.call('PTTL', key) < 2 * ttl then redis.call('PEXPIRE', key, 2 * ttl) end
    end
  end
end
return 1
`;

/**
 * release(ko, ao), one op of SLOT_OPS, its keys and args read as for acquire (R: args).
 * Success deletes the circuit hash: closed with 0 failures is what "no record" means. A
 * circuit this op opened, or closed by its probe, is announced once per call (gateways
 * place uncapped attempts by their cached circuits).
 */
const RELEASE_FN = `
local circuitChanged = false
local function release(ko, ao)
local slotsKey, circuitKey = ${RELEASE_LUA.key.slots}, ${RELEASE_LUA.key.circuit}
redis.call('ZREM', slotsKey, ${R.leaseId})
-- The ZREM may have emptied, so deleted, the key: its next ZADD needs its expiry set again.
keptSlotsKeys[slotsKey] = nil
local outcome = ${R.outcome}
local probe = ${R.probe} == '1'
if outcome == 'success' then
  redis.call('DEL', circuitKey)
  if probe then circuitChanged = true end
elseif outcome == 'failure' then
  local failures = redis.call('HINCRBY', circuitKey, 'failures', 1)
  if failures >= tonumber(${R.threshold}) or probe then
    redis.call('HSET', circuitKey, 'openUntil', now + tonumber(${R.openMs}))
    circuitChanged = true
  end
  if probe then redis.call('HSET', circuitKey, 'probeUntil', 0) end
  redis.call('PEXPIRE', circuitKey, tonumber(${R.circuitTtlMs}))
elseif probe and redis.call('EXISTS', circuitKey) == 1 then
  redis.call('HSET', circuitKey, 'probeUntil', 0)
end
return 1
end
`;

/**
 * The hot path's one script: the acquires and releases one gateway process made in one
 * event-loop turn, run in their order in one EVALSHA, so a burst of requests costs Redis
 * and the client one call instead of one per request. Each op runs under pcall: a failing
 * op answers { '!', message } and the others are unaffected. One TIME for the call.
 * The layout of KEYS and ARGV (a call header, then per op a header and its args) is
 * slot-ops-codec.ts's. Returns one result per op. Each node a release freed is published
 * once on the call's slotFreedChannel, a circuit change once on its fleetChangedChannel.
 */
export const SLOT_OPS = `${NOW_MS}${KEEP_SLOTS_KEY}${ACQUIRE_FN}${RELEASE_FN}
local results, freed = {}, {}
local ko, h = 0, ${CALL_LUA.firstHeaderAfter}
for op = 1, tonumber(${CALL_LUA.arg.opCount}) do
  local kind, nk, na = ${CALL_LUA.header.kind}, tonumber(${CALL_LUA.header.keyCount}), tonumber(${CALL_LUA.header.argCount})
  -- The op reads its own keys and args in place, after these offsets (no copies per op).
  local ao = h + ${CALL_LUA.headerLength}
  local ok, result = pcall(kind == '${OP_KIND.acquire}' and acquire or release, ko, ao)
  if ok then
    results[op] = result
    if kind == '${OP_KIND.release}' then freed[${R.node}] = true end
  else
    if type(result) == 'table' then result = result.err end
    results[op] = { '!', tostring(result) }
  end
  ko, h = ko + nk, ao + na
end
for node in pairs(freed) do redis.call('PUBLISH', ${CALL_LUA.arg.slotFreedChannel}, node) end
if circuitChanged then redis.call('PUBLISH', ${CALL_LUA.arg.fleetChangedChannel}, 'circuit') end
return results
`;

/**
 * KEYS: slots per lease. ARGV: leaseMs, leaseId per lease. Only a lease that is still live
 * is extended: an expired one already gave its slot away and must not come back.
 */
export const RENEW_LEASES = `${NOW_MS}${KEEP_SLOTS_KEY}
local leaseMs = tonumber(ARGV[1])
for i = 1, #KEYS do
  local score = redis.call('ZSCORE', KEYS[i], ARGV[i + 1])
  if score and tonumber(score) >= now then
    redis.call('ZADD', KEYS[i], 'XX', now + leaseMs, ARGV[i + 1])
    keepSlotsKey(KEYS[i], leaseMs)
  end
end
return 1
`;

/**
 * KEYS: slots, circuit. ARGV: maxconn, keepFree, leaseMs, leaseId per slot wanted.
 * reserveGrant of slot-rules.ts: through a closed circuit only, as many as leave keepFree
 * free. Returns { granted, live count after }.
 */
export const RESERVE_SLOTS = `${NOW_MS}${KEEP_SLOTS_KEY}
local slotsKey, circuitKey = KEYS[1], KEYS[2]
local maxconn, keepFree, leaseMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local live = redis.call('ZCOUNT', slotsKey, now, '+inf')
if (tonumber(redis.call('HGET', circuitKey, 'openUntil')) or 0) ~= 0 then return { 0, live } end
local granted = math.min(#ARGV - 3, maxconn - keepFree - live)
if granted <= 0 then return { 0, live } end
local scored = {}
for i = 1, granted do
  scored[2 * i - 1] = now + leaseMs
  scored[2 * i] = ARGV[3 + i]
end
redis.call('ZADD', slotsKey, unpack(scored))
keepSlotsKey(slotsKey, leaseMs)
return { granted, live + granted }
`;

/**
 * KEYS: replicaInflight, replicaInflightExpiry, slots per node. ARGV: replicaId, countsJson,
 * ttlMs. With a replicaId, replaces that replica's report (countsJson '' = nothing in
 * flight: the report is deleted) for ttlMs; without ('') it only reads. Returns { live
 * lease count per node, [unexpired replica ids], [their reports] }: the caller sums.
 * Expired reports (a replica that died) are pruned, at most 100 per call.
 */
export const SHARE_INFLIGHT = `${NOW_MS}
local reports, expiry = KEYS[1], KEYS[2]
local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', '(' .. now, 'LIMIT', 0, 100)
if #expired > 0 then
  redis.call('ZREM', expiry, unpack(expired))
  redis.call('HDEL', reports, unpack(expired))
end
if ARGV[1] ~= '' then
  local ttl = tonumber(ARGV[3])
  if ARGV[2] == '' then
    redis.call('HDEL', reports, ARGV[1])
    redis.call('ZREM', expiry, ARGV[1])
  else
    redis.call('HSET', reports, ARGV[1], ARGV[2])
    redis.call('ZADD', expiry, now + ttl, ARGV[1])
    for _, key in ipairs({ reports, expiry }) do
      if redis.call('PTTL', key) < 2 * ttl then redis.call('PEXPIRE', key, 2 * ttl) end
    end
  end
end
local leases = {}
for i = 3, #KEYS do leases[i - 2] = redis.call('ZCOUNT', KEYS[i], now, '+inf') end
local fresh = redis.call('ZRANGEBYSCORE', expiry, now, '+inf')
local values = {}
if #fresh > 0 then values = redis.call('HMGET', reports, unpack(fresh)) end
return { leases, fresh, values }
`;

/**
 * KEYS: circuit per node. ARGV: threshold, openMs, circuitTtlMs, fleetChangedChannel, then
 * per node leadingFailures, succeeded (1/0), trailingFailures. circuitAfterOutcomes in
 * slot-rules.ts, transcribed: only a closed circuit (openUntil 0) moves. Publishes one
 * fleet change when it opened any.
 */
export const RECORD_OUTCOMES = `${NOW_MS}
local threshold, openMs, circuitTtl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local opened = false
for i = 1, #KEYS do
  local key = KEYS[i]
  local leading, succeeded, trailing = tonumber(ARGV[2 + 3 * i]), ARGV[3 + 3 * i] == '1', tonumber(ARGV[4 + 3 * i])
  local circuit = redis.call('HMGET', key, 'failures', 'openUntil')
  if (tonumber(circuit[2]) or 0) == 0 then
    local failures = (tonumber(circuit[1]) or 0) + leading
    if failures < threshold and succeeded then failures = trailing end
    if failures >= threshold then
      redis.call('HSET', key, 'failures', failures, 'openUntil', now + openMs)
      redis.call('PEXPIRE', key, circuitTtl)
      opened = true
    elseif failures == 0 then
      redis.call('DEL', key)
    else
      redis.call('HSET', key, 'failures', failures)
      redis.call('PEXPIRE', key, circuitTtl)
    end
  end
end
if opened then redis.call('PUBLISH', ARGV[4], 'circuit') end
return 1
`;
