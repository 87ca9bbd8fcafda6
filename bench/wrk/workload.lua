-- wrk script shared by every workload of bench/run.sh.
--
-- The request is described by environment variables, so that run.sh can feed
-- curl (its pre-flight check) and wrk the very same headers and body files:
--   WL_METHOD        GET or POST
--   WL_PATH          request target, e.g. /products?category=shoes&page=2
--   WL_HEADERS_FILE  file with one "Name: value" header per line
--   WL_BODY_FILE     optional file whose bytes are sent as the request body
--   EXPECT_STATUS    status every response must have (200, or 403 for blocks)
--   EXPECT_BYTES     exact body size every response must have; -1 = any
--
-- Every response is checked, so that a proxy that answers without proxying
-- (an error page, a cached or truncated body) cannot post a great number.
-- done() prints one machine-readable "RESULT key=value ..." line that run.sh
-- parses.

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

wrk.method = os.getenv("WL_METHOD") or "GET"
wrk.path = os.getenv("WL_PATH") or "/"

local headers_file = os.getenv("WL_HEADERS_FILE")
if headers_file and headers_file ~= "" then
  for line in io.lines(headers_file) do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      wrk.headers[name] = value
    end
  end
end

local body_file = os.getenv("WL_BODY_FILE")
if body_file and body_file ~= "" then
  wrk.body = read_file(body_file)
end

local expect_status = tonumber(os.getenv("EXPECT_STATUS") or "200")
local expect_bytes = tonumber(os.getenv("EXPECT_BYTES") or "-1")

-- Per-thread counters: each wrk thread runs its own Lua state, and done()
-- reads them back with thread:get().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

n = 0            -- responses seen
ok = 0           -- responses with the expected status and size
bad_status = 0   -- responses with another status
bad_size = 0     -- expected status but wrong body size
bytes = 0        -- body bytes received
seen = ""        -- unexpected status codes, space separated, deduplicated

function response(status, headers, body)
  n = n + 1
  local len = body and #body or 0
  bytes = bytes + len
  if status ~= expect_status then
    bad_status = bad_status + 1
    local code = " " .. status .. " "
    if not (" " .. seen .. " "):find(code, 1, true) then
      seen = (seen == "" and tostring(status)) or (seen .. " " .. status)
    end
  elseif expect_bytes >= 0 and len ~= expect_bytes then
    bad_size = bad_size + 1
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local t = { n = 0, ok = 0, bad_status = 0, bad_size = 0, bytes = 0 }
  local codes = {}
  for _, thread in ipairs(threads) do
    for k in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
    local s = thread:get("seen") or ""
    for code in s:gmatch("%S+") do
      codes[code] = true
    end
  end
  local list = {}
  for code in pairs(codes) do
    table.insert(list, code)
  end
  table.sort(list)

  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d responses=%d ok=%d " ..
    "bad_status=%d bad_size=%d bytes_per_resp=%.1f err_connect=%d " ..
    "err_read=%d err_write=%d err_timeout=%d unexpected_codes=%s\n",
    summary.requests / secs,
    latency:percentile(50), latency:percentile(99),
    summary.requests, t.n, t.ok, t.bad_status, t.bad_size,
    t.n > 0 and t.bytes / t.n or 0,
    e.connect, e.read, e.write, e.timeout,
    #list > 0 and table.concat(list, ",") or "-"))
end
