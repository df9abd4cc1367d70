-- bench/load.py's request mix for wrk: each request is drawn from a weighted list of kinds,
-- then uniformly among that kind's requests (the list file load.py writes).
--
--   wrk -t64 -c64 -d60s --latency -s bench/load.lua http://127.0.0.1:8000 -- requests.tsv 0
--
-- Run it with as many threads as connections: a thread then has at most one request in
-- flight, so the answer wrk hands to response() belongs to the request request() made last.
-- That is how every answer is counted under its kind. A request that gets no answer
-- (timeout, socket error) is counted as sent and not answered. After wrk's own report, done()
-- prints one line per kind:
--   load.lua kind=<k> sent=<n> responses=<n> no_response=<n> cut_off=<n> p50_ms=<x> p99_ms=<x>
--     statuses=200:<n>,… page_cache=hit:<n>,miss:<n>
-- (cut_off: requests still waiting for their answer when the run's time was up; page_cache:
-- answers whose X-Page-Cache header said hit or miss, the site's whole-page cache).
-- Per-kind latency runs from request() to response() on a monotonic clock (LuaJIT's FFI),
-- kept in 2 %-wide buckets, so its percentiles are within 2 % (wrk's own are exact).
-- Then one line per WINDOW_S seconds of the run, counted from each thread's first request,
-- all kinds together: where in the run the slow answers were (after a cache flush, the
-- first seconds):
--   load.lua window_s=<start>-<end> responses=<n> p50_ms=<x> p99_ms=<x> at_run_p99=<n>
-- (at_run_p99: its answers as slow as the whole run's p99 or slower, within 2 %).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } load_timespec;
int clock_gettime(int clock_id, load_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local now_spec = ffi.new("load_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_spec)
  return tonumber(now_spec.tv_sec) * 1000000 + tonumber(now_spec.tv_nsec) / 1000
end

local function split_tabs(line)
  local cells = {}
  for cell in (line .. "\t"):gmatch("([^\t]*)\t") do
    cells[#cells + 1] = cell
  end
  return cells
end

-- Main thread: remember every thread so done() can read their counters.
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

-- Per thread. wrk's thread:get copies only scalars safely (its table copy swaps keys and
-- values), so every counter is a global number, and `load_keys` lists their names:
--   sent:<kind>, status:<kind>:<code>, cache:<kind>:<hit|miss>, latency:<kind>:<bucket>
-- Latency buckets are 2 % wide (bucket b holds [1.02^b, 1.02^(b+1)) microseconds).
load_keys = ""
in_flight = nil -- the kind of the request waiting for its answer
local LOG_STEP = math.log(1.02)
local WINDOW_S = 5
local first_us = nil -- this thread's first request: its windows count from there
local kinds, weights, entries, total_weight = {}, {}, {}, 0
local started_us, counter = 0, 0

local function bump(key)
  local value = _G[key]
  if value == nil then
    load_keys = load_keys .. key .. " "
    value = 0
  end
  _G[key] = value + 1
end

function init(args)
  local path, seed = args[1], tonumber(args[2] or "0")
  if path == nil then
    error("usage: wrk … -s bench/load.lua <url> -- <request list> [seed]")
  end
  for line in io.lines(path) do
    local cells = split_tabs(line)
    if cells[1] == "weight" then
      local kind, weight = cells[2], tonumber(cells[3])
      if not kind:match("^[a-z_]+$") or weight == nil or weight <= 0 then
        error("bad weight line in " .. path .. ": " .. line)
      end
      kinds[#kinds + 1] = kind
      weights[kind] = weight
      total_weight = total_weight + weight
      entries[kind] = {}
    elseif cells[1] == "request" then
      local kind, method, target, token, body = cells[2], cells[3], cells[4], cells[5], cells[6]
      if entries[kind] == nil then
        error("request of undeclared kind " .. kind .. " in " .. path)
      end
      local entry = { method = method, path = target, body = body, headers = {} }
      if token ~= "" then
        entry.headers["Authorization"] = "Token " .. token
      end
      if body ~= "" then
        entry.headers["Content-Type"] = "application/json"
      end
      table.insert(entries[kind], entry)
    elseif line ~= "" then
      error("cannot read line of " .. path .. ": " .. line)
    end
  end
  for _, kind in ipairs(kinds) do
    if #entries[kind] == 0 then
      error("no requests of kind " .. kind .. " in " .. path)
    end
  end
  math.randomseed(seed * 1000 + thread_number)
end

local function pick_kind()
  local roll = math.random() * total_weight
  for _, kind in ipairs(kinds) do
    roll = roll - weights[kind]
    if roll < 0 then
      return kind
    end
  end
  return kinds[#kinds]
end

local verified = false

function request()
  local kind = pick_kind()
  local list = entries[kind]
  local entry = list[math.random(#list)]
  counter = counter + 1
  local raw = entry.raw
  if raw == nil and entry.body == "" then
    -- the same bytes every time: made on first use (each thread holds thousands of entries)
    raw = wrk.format(entry.method, entry.path, entry.headers)
    entry.raw = raw
  elseif raw == nil then
    local body = entry.body:gsub("{n}", thread_number .. "-" .. counter)
    raw = wrk.format(entry.method, entry.path, entry.headers, body)
  end
  if thread_number == 1 and not verified then
    -- wrk calls request() once on the first thread, right after init, only to parse what
    -- it returns (script_verify_request): that one is never sent, so it is not counted.
    verified = true
    return raw
  end
  bump("sent:" .. kind)
  in_flight, started_us = kind, now_us()
  first_us = first_us or started_us
  return raw
end

function response(status, headers, body)
  local kind = in_flight
  if kind == nil then
    return
  end
  in_flight = nil
  local answered_us = now_us()
  local elapsed = math.max(answered_us - started_us, 1)
  bump("status:" .. kind .. ":" .. status)
  local cached = headers["X-Page-Cache"] -- neurons.pagecache: "hit" or "miss"
  if cached == "hit" or cached == "miss" then
    bump("cache:" .. kind .. ":" .. cached)
  end
  local bucket = math.floor(math.log(elapsed) / LOG_STEP)
  bump("latency:" .. kind .. ":" .. bucket)
  bump("window:" .. math.floor((answered_us - first_us) / (WINDOW_S * 1000000)) .. ":" .. bucket)
end

-- The bucket holding the `p`th percentile of `total` answers counted in `buckets`.
local function percentile_bucket(buckets, total, p)
  local rank = math.max(1, math.ceil(p / 100 * total))
  local order = {}
  for bucket, _ in pairs(buckets) do
    order[#order + 1] = bucket
  end
  table.sort(order)
  local seen = 0
  for _, bucket in ipairs(order) do
    seen = seen + buckets[bucket]
    if seen >= rank then
      return bucket
    end
  end
  return nil
end

local function percentile(buckets, total, p)
  local bucket = total > 0 and percentile_bucket(buckets, total, p) or nil
  if bucket == nil then
    return "nan"
  end
  -- the bucket's geometric middle, in milliseconds
  return string.format("%.2f", math.exp((bucket + 0.5) * LOG_STEP) / 1000)
end

-- One line per window: its answers, their p50 and p99, and how many were as slow as the
-- whole run's p99 or slower (within its 2 % bucket).
local function windows_report(windows)
  local all, total, order = {}, 0, {}
  for window, buckets in pairs(windows) do
    order[#order + 1] = window
    for bucket, n in pairs(buckets) do
      all[bucket] = (all[bucket] or 0) + n
      total = total + n
    end
  end
  if total == 0 then
    return
  end
  table.sort(order)
  local p99 = percentile_bucket(all, total, 99)
  for _, window in ipairs(order) do
    local buckets, responses, slow = windows[window], 0, 0
    for bucket, n in pairs(buckets) do
      responses = responses + n
      if bucket >= p99 then
        slow = slow + n
      end
    end
    io.write(string.format(
      "load.lua window_s=%d-%d responses=%d p50_ms=%s p99_ms=%s at_run_p99=%d\n",
      window * WINDOW_S, (window + 1) * WINDOW_S, responses, percentile(buckets, responses, 50),
      percentile(buckets, responses, 99), slow
    ))
  end
end

function done(summary, latency, requests)
  local totals, order, windows = {}, {}, {}
  local function total_of(kind)
    local total = totals[kind]
    if total == nil then
      total = { sent = 0, responses = 0, in_flight = 0, statuses = {}, buckets = {}, cache = {} }
      totals[kind] = total
      order[#order + 1] = kind
    end
    return total
  end
  local function count(key, value)
    local window, bucket = key:match("^window:(%d+):(%-?%d+)$")
    if window ~= nil then
      window, bucket = tonumber(window), tonumber(bucket)
      windows[window] = windows[window] or {}
      windows[window][bucket] = (windows[window][bucket] or 0) + value
      return
    end
    local what, kind, detail = key:match("^(%a+):([a-z_]+):?(%w*)$")
    local total = total_of(kind)
    if what == "sent" then
      total.sent = total.sent + value
    elseif what == "cache" then
      total.cache[detail] = (total.cache[detail] or 0) + value
    elseif what == "status" then
      local code = tonumber(detail)
      total.statuses[code] = (total.statuses[code] or 0) + value
      total.responses = total.responses + value
    else
      local latency_bucket = tonumber(detail)
      total.buckets[latency_bucket] = (total.buckets[latency_bucket] or 0) + value
    end
  end
  for _, thread in ipairs(threads) do
    for key in thread:get("load_keys"):gmatch("%S+") do
      count(key, thread:get(key))
    end
    local cut_off = thread:get("in_flight")
    if cut_off ~= nil then
      total_of(cut_off).in_flight = total_of(cut_off).in_flight + 1 -- ended by the clock
    end
  end
  table.sort(order)
  for _, kind in ipairs(order) do
    local total = totals[kind]
    local codes = {}
    for code, _ in pairs(total.statuses) do
      codes[#codes + 1] = code
    end
    table.sort(codes)
    local parts = {}
    for _, code in ipairs(codes) do
      parts[#parts + 1] = code .. ":" .. total.statuses[code]
    end
    io.write(string.format(
      "load.lua kind=%s sent=%d responses=%d no_response=%d cut_off=%d p50_ms=%s p99_ms=%s"
        .. " statuses=%s page_cache=hit:%d,miss:%d\n",
      kind, total.sent, total.responses, total.sent - total.responses - total.in_flight,
      total.in_flight,
      percentile(total.buckets, total.responses, 50),
      percentile(total.buckets, total.responses, 99),
      table.concat(parts, ","), total.cache["hit"] or 0, total.cache["miss"] or 0
    ))
  end
  windows_report(windows)
end
