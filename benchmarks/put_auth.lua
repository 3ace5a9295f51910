-- wrk script: PUT a fixed 4 KiB body to Depot's /v1/assets/{path}, round-robin over N paths,
-- with a bearer token. Each 201/200 is durable (fsynced and committed) before it is sent.
-- usage: wrk ... http://127.0.0.1:PORT -s put_auth.lua -- TOKEN BODY_FILE N
local token, body, n, i = "", "", 1000, 0

function init(args)
  token = args[1]
  local f = assert(io.open(args[2], "rb"))
  body = f:read("*a")
  f:close()
  n = tonumber(args[3] or "1000")
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  i = math.random(n)
end

function request()
  i = i % n + 1
  return wrk.format("PUT", "/v1/assets/bench/small-put/" .. i,
    { ["Content-Type"] = "image/png", ["Authorization"] = "Bearer " .. token }, body)
end
