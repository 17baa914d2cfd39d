-- wrk script for bench_intake: every request is a new report (unique idempotency key, random
-- point in the benchmark box, one of the benchmark's categories); done() prints one JSON line
-- with the figures bench_intake.py reads.
local counter = 0
local threads = {}
local categories = {"E0103", "E0102", "E0104", "P0120", "P0101"}
local texts = {"路面有油污", "垃圾堆放", "路灯不亮", "井盖破损"}
local box = {24.9301, 60.1601, 24.9659, 60.1779}  -- replaced by wrk's arguments: x0 y0 x1 y1

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  if #args >= 4 then
    box = {tonumber(args[1]), tonumber(args[2]), tonumber(args[3]), tonumber(args[4])}
  end
  math.randomseed(tid * 7919 + os.time())
  wrk.headers["Content-Type"] = "application/json"
  run = tostring(os.time())
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"idempotency_key":"b%s-%d-%d","category":"%s","lon":%.7f,"lat":%.7f,' ..
    '"description":"%s","source":"grid_worker","reporter":"W%d"}',
    run, tid, counter, categories[math.random(#categories)],
    box[1] + math.random() * (box[3] - box[1]), box[2] + math.random() * (box[4] - box[2]),
    texts[math.random(#texts)], math.random(50))
  return wrk.format("POST", nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
