-- wrk script: signed Runflow POSTs, each request a distinct pre-signed body.
-- Usage: wrk ... -s bench/lib/post.lua URL -- <pool file> <threads>
-- The pool file has one "hexsig body" per line (bench/lib/common.mjs writePool);
-- thread k of n takes lines k, k+n, k+2n, ... so no two threads send the same
-- body. When a thread runs out it starts over (counted as "wrapped": those
-- requests hit hookrelay's duplicate path instead of a journal write).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  local path = wrk.path
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid then
      local sp = line:find(" ", 1, true)
      local sig = line:sub(1, sp - 1)
      local body = line:sub(sp + 1)
      reqs[#reqs + 1] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["Runflow-Signature"] = sig,
      }, body)
    end
    i = i + 1
  end
  n = #reqs
  idx = 0
  wrapped = 0
end

function request()
  idx = idx + 1
  if idx > n then
    idx = 1
    wrapped = wrapped + 1
  end
  return reqs[idx]
end

function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + (t:get("wrapped") or 0) end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, w))
end
