-- First-time misses for bench/download.py: every request names a symbol never asked for
-- before, the way a stack walker asks (GET with code_file and code_id), so each one is a
-- storage lookup, a not-found entry written to the cache, a guard claim and a recorded miss.
--
--   wrk -t2 -c16 -d5s -s bench/first_miss.lua http://127.0.0.1:PORT -- TOKEN DEBUGID
--
-- TOKEN must differ between wrk runs (the cache and the database outlive a server
-- process); each wrk thread adds its own number and a counter.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  token = args[1] or "run"
  debugid = args[2] or "44E4EC8C2F41492B9369D6B9A059577C2"
  counter = 0
end

function request()
  counter = counter + 1
  local name = string.format("first-%s-%d-%d", token, thread_no or 0, counter)
  local path = string.format(
    "/%s.pdb/%s/%s.sym?code_file=%s.dll&code_id=5F3C0A1B%d", name, debugid, name, name, counter
  )
  return wrk.format("GET", path)
end
