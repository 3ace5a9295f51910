-- wrk script: each connection waits PACE_MS after every answer before its next request, so that
-- two servers are loaded at the same request rate (about connections / (PACE_MS + latency) a
-- second, below either's throughput) and their latencies compare like for like. Closed-loop wrk
-- (no pause) measures each at its own saturation instead: the faster server answers more
-- requests in the same time, queued as deep.
-- usage: wrk ... URL -s paced.lua -- PACE_MS
local pace = 2

function init(args)
  pace = tonumber(args[1]) or pace
end

function delay()
  return pace
end
