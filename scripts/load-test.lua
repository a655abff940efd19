-- wrk script for scripts/load-test.sh: a mix of reads, writes and progress
-- reports from external workers, over runs and stories made beforehand.
--
--   wrk ... -s scripts/load-test.lua URL -- IDS_FILE
--
-- IDS_FILE holds one "story_id run_id" pair per line. Every answer is
-- checked: 5xx and DATABASE_BUSY ("database is locked") are counted apart
-- from other non-2xx answers, per thread, and summed in done().

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

local pairs_ = {}
local progress = {}
local n = 0

function init(args)
   local file = assert(io.open(args[1], "r"), "usage: -- IDS_FILE")
   for line in file:lines() do
      local story, run = line:match("^(%S+)%s+(%S+)$")
      if story then
         table.insert(pairs_, { story = story, run = run })
      end
   end
   file:close()
   assert(#pairs_ > 0, "no ids in " .. args[1])
   math.randomseed(os.time() + id)
   server_errors, busy, other_errors, answered = 0, 0, 0, 0
end

local json = { ["Content-Type"] = "application/json" }

-- Weights out of 100: reads 45, progress reports 35, writes 20.
function request()
   n = n + 1
   local pick = pairs_[math.random(#pairs_)]
   local roll = math.random(100)
   if roll <= 15 then
      return wrk.format("GET", "/api/runs/" .. pick.run)
   elseif roll <= 25 then
      return wrk.format("GET", "/api/stories/" .. pick.story)
   elseif roll <= 35 then
      return wrk.format("GET", "/api/stories?limit=20")
   elseif roll <= 40 then
      return wrk.format("GET", "/api/runs?status=running&limit=20")
   elseif roll <= 45 then
      return wrk.format("GET", "/api/health")
   elseif roll <= 80 then
      -- Each thread reports ever higher counts; the stale ones of other
      -- threads are skipped by the server, as they should be.
      local done = math.min((progress[pick.run] or 0) + 1, 999)
      progress[pick.run] = done
      local body = string.format('{"chapters_done": %d, "step": "chapter %d/1000"}', done, done)
      return wrk.format("POST", "/api/runs/" .. pick.run .. "/progress", json, body)
   elseif roll <= 90 then
      local body = string.format('{"title": "Load %d-%d", "premise": "Written under load."}', id, n)
      return wrk.format("POST", "/api/stories", json, body)
   else
      local body = string.format('{"premise": "Revised %d-%d"}', id, n)
      return wrk.format("PATCH", "/api/stories/" .. pick.story, json, body)
   end
end

function response(status, headers, body)
   answered = answered + 1
   if status >= 500 then
      server_errors = server_errors + 1
   elseif status >= 300 then
      other_errors = other_errors + 1
   end
   if body and (body:find("DATABASE_BUSY", 1, true) or body:find("database is locked", 1, true)) then
      busy = busy + 1
   end
end

function done(summary, latency, requests)
   local s, b, o, a = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      s = s + thread:get("server_errors")
      b = b + thread:get("busy")
      o = o + thread:get("other_errors")
      a = a + thread:get("answered")
   end
   local seconds = summary.duration / 1e6
   io.write("load-test figures:\n")
   io.write(string.format("  requests: %d in %.1f s, %.0f requests/s\n", summary.requests, seconds, summary.requests / seconds))
   io.write(string.format("  latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
   io.write(string.format("  answers checked: %d; 5xx: %d; DATABASE_BUSY/database is locked: %d; other non-2xx: %d\n", a, s, b, o))
   io.write(string.format("  socket errors: connect %d, read %d, write %d, timeout %d\n",
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
   io.write(string.format("LOADTEST %d %.0f %.2f %d %d %d %d\n", summary.requests, summary.requests / seconds,
      latency:percentile(99) / 1000, s, b, o,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
