-- wrk script for bench_tailord.py. MODE (environment) picks the request: text, item, compose,
-- session or mix (all four in turn at random). TEXTS and IDS name files of query texts and item
-- ids, one per line. Each thread counts responses by status class; done() prints them as
-- "status 2xx=N 4xx=N 5xx=N", which bench_tailord.py asserts on.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local mode, texts, ids = os.getenv("MODE"), {}, {}
local session, session_turns, creating = nil, 0, false
c2xx, c4xx, c5xx, cother = 0, 0, 0, 0
local headers = {["Content-Type"] = "application/json"}

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function pick(list) return list[math.random(#list)] end

local function post(path, body) return wrk.format("POST", path, headers, body) end

local builders
builders = {
  text = function()
    return post("/v1/search", '{"text": ' .. quote(pick(texts)) .. ', "limit": 10}')
  end,
  item = function()
    return post("/v1/search", '{"item_id": ' .. pick(ids) .. ', "limit": 10}')
  end,
  compose = function()
    return post("/v1/search", '{"item_id": ' .. pick(ids) .. ', "text": ' ..
                quote(pick(texts)) .. ', "limit": 10}')
  end,
  -- A chain of up to 8 turns per session; the first turn has a reference. Then a new session.
  -- The connections of a thread share its session. Finished sessions are never deleted (a
  -- delete raced the thread's turns still in flight): the store's count bound evicts them, least
  -- recently used first. One create at a time: meanwhile other connections search.
  session = function()
    if session and session_turns >= 8 then session, session_turns = nil, 0 end
    if not session then
      if creating then return builders.text() end
      creating = true
      return post("/v1/sessions", "{}")
    end
    session_turns = session_turns + 1
    local ref = session_turns == 1 and (', "reference_item_id": ' .. pick(ids)) or ""
    return post("/v1/sessions/" .. session .. "/turns",
                '{"text": ' .. quote(pick(texts)) .. ref .. ', "limit": 10}')
  end,
}
local kinds = {"text", "item", "compose", "session"}

function init(args)
  math.randomseed(os.time() * 100 + id)
  for line in io.lines(os.getenv("TEXTS")) do texts[#texts + 1] = line end
  for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
end

function request()
  local kind = mode == "mix" and pick(kinds) or mode
  -- Until a session exists, "session" requests create one; mix keeps one per thread too.
  return builders[kind]()
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then c2xx = c2xx + 1
  elseif status >= 400 and status < 500 then c4xx = c4xx + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else cother = cother + 1 end
  local sid = body and body:match('"session_id":%s*"([^"]+)"')
  if sid and not session then session, creating = sid, false end
  if status == 404 and body and body:find("session") then session = nil end
end

function done(summary, latency, requests)
  local t = {c2xx = 0, c4xx = 0, c5xx = 0, cother = 0}
  for _, thread in ipairs(threads) do
    for k in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format("status 2xx=%d 4xx=%d 5xx=%d other=%d\n", t.c2xx, t.c4xx, t.c5xx,
                         t.cother))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("latency p%s=%.3f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("errors connect=%d read=%d write=%d status=%d timeout=%d\n",
                         summary.errors.connect, summary.errors.read, summary.errors.write,
                         summary.errors.status, summary.errors.timeout))
end
