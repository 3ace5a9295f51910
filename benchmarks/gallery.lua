-- wrk script: GET a list of URLs round-robin (a gallery: many distinct objects, each asked for
-- about once a second or less). Each thread starts at its own offset in the list.
-- usage: wrk ... http://127.0.0.1:PORT -s gallery.lua -- URL_LIST_FILE
local paths = {}
local i = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", threads)
end

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line:gsub("^https?://[^/]+", "")
  end
  -- offset is set by setup() in this thread's interpreter; spread the threads over the list
  i = math.floor(((offset or 1) - 1) * #paths / 2)
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
