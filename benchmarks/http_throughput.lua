-- wrk script for benchmarks/http_throughput.py: one connection per thread (-tN -cN).
-- Args: <dir> <mode>. Thread i sends the paths in <dir>/paths-<i>.txt, in order:
-- "cycle" repeats them, "once" sends each at most once (pre-signed, single-use requests)
-- and stops the thread when they run out (reported as exhausted: the run is void).
-- done() prints "@@ <name> <values>" lines that the benchmark parses.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local requests, count, index, mode = {}, 0, 0, "cycle"
made, non2xx, exhausted, sample = 0, 0, 0, ""

function init(args)
  mode = args[2]
  for line in io.lines(args[1] .. "/paths-" .. id .. ".txt") do
    count = count + 1
    requests[count] = wrk.format("GET", line)
  end
end

function request()
  if index >= count then
    if mode == "once" then
      exhausted = 1
      wrk.thread:stop()
      return wrk.format("GET", "/")
    end
    index = 0
  end
  index = index + 1
  made = index
  return requests[index]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if sample == "" then
      sample = status .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, _)
  local e = summary.errors
  local made_list, bad, out, first = {}, 0, 0, ""
  for _, thread in ipairs(threads) do
    table.insert(made_list, thread:get("made"))
    bad = bad + thread:get("non2xx")
    out = out + thread:get("exhausted")
    if first == "" then first = thread:get("sample") end
  end
  io.write(string.format("@@ requests %d\n@@ duration_us %d\n", summary.requests, summary.duration))
  io.write(string.format("@@ p50_us %d\n@@ p99_us %d\n", latency:percentile(50), latency:percentile(99)))
  io.write(string.format("@@ errors %d %d %d %d %d\n", e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("@@ non2xx %d\n@@ exhausted %d\n", bad, out))
  io.write("@@ made " .. table.concat(made_list, " ") .. "\n")
  io.write("@@ sample " .. string.gsub(first, "[\r\n]", " ") .. "\n")
end
